"""Assessment -> a FHIR R4 Bundle (type collection) of one Observation per staging model.

No standard codes exist for the staging models, so Observation.code uses the project CodeSystem
(fhir_codes.yaml project_base). `derivedFrom` lists the input resources that counted; the
disclaimer and every model's reasons travel in `note`. The Bundle is validated with
`fhir.resources.R4B` before it is returned.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from trdstage.adapters.fhir.codes import load_fhir_codes
from trdstage.domain.results import Assessment, ModelResult

CATEGORY = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "survey", "display": "Survey"}]}
NAMESPACE = uuid.UUID("6f1c3c1e-8d2a-4c55-9a57-0b5f3f8f2d10")  # stable ids for the same result


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _references(result: Assessment, model: ModelResult,
                sources: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """The input resources behind the trials and ECT courses the model counted, and the
    current episode's Condition(s)."""
    by_trial = {t.id: t.records for t in result.trials}
    refs: list[str] = []
    for counted in model.counted:
        records = by_trial.get(counted, [counted])
        for record in records:
            base = record.split(".added[")[0]
            refs.extend(sources.get(base, [base] if "/" in base or base.startswith("urn:")
                                    else []))
    if result.episode.id:
        refs.extend(sources.get(result.episode.id, [result.episode.id]))
    return [{"reference": r} for r in dict.fromkeys(refs)]


def _value(result: Assessment, key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    codes = load_fhir_codes()
    system = codes.model_system
    s = result.staging
    if key == "thase_rush":
        return {"valueInteger": s.thase_rush.stage}, [{
            "code": _concept(system, "thase-rush-stage-label", "Stage label"),
            "valueString": s.thase_rush.stage_label}]
    if key == "mgh":
        return {"valueQuantity": {"value": s.mgh.score, "unit": "{score}",
                                  "system": "http://unitsofmeasure.org",
                                  "code": "{score}"}}, []
    if key == "maudsley":
        if s.maudsley.score is None:
            return {"dataAbsentReason": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": "not-applicable"}], "text": "score not computable"}}, []
        comps: list[dict[str, Any]] = [{"code": _concept(system, "maudsley-band", "Maudsley band"),
                  "valueCodeableConcept": _concept(system, f"maudsley-{s.maudsley.band}",
                                                   str(s.maudsley.band))}]
        for part, points in (s.maudsley.components or {}).items():
            comps.append({"code": _concept(system, f"maudsley-{part}", f"Maudsley {part}"),
                          "valueInteger": points})
        return {"valueInteger": s.maudsley.score}, comps
    if key == "european":
        return {"valueCodeableConcept": _concept(system, f"european-{s.european.category}",
                                                 s.european.category)}, [{
            "code": _concept(system, "european-failed-trials", "Failed adequate trials"),
            "valueInteger": s.european.failed_trials}]
    met = s.regulatory.met
    return {"valueBoolean": met}, [{
        "code": _concept(system, "regulatory-failed-agents", "Failed agents"),
        "valueString": ", ".join(s.regulatory.failed_agents) or "none"}]


def assessment_to_bundle(result: Assessment, sources: Mapping[str, list[str]] | None = None,
                         subject: str | None = None) -> dict[str, Any]:
    """The Bundle as a JSON-ready dict. `sources` maps trial records, ECT and episode ids to
    FHIR references (the reader's `FhirRead.sources`); without it, ids that look like
    references ("Type/id") are used as they are."""
    sources = sources or {}
    codes = load_fhir_codes()
    system = codes.model_system
    subject_ref = subject or f"Patient/{result.patient_id}"
    entries = []
    for key in ("thase_rush", "mgh", "maudsley", "european", "regulatory"):
        model: ModelResult = getattr(result.staging, key)
        value, components = _value(result, key)
        oid = str(uuid.uuid5(NAMESPACE, f"{result.patient_id}|{result.as_of}|{result.policy}|"
                                        f"{key}"))
        notes = [{"text": result.disclaimer},
                 {"text": f"policy {result.policy}; reasons: " + "; ".join(model.reasons)}]
        if model.caveats:
            notes.append({"text": "caveats: " + "; ".join(model.caveats)})
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": oid, "status": "final",
            "category": [CATEGORY],
            "code": _concept(system, key.replace("_", "-"), model.name),
            "subject": {"reference": subject_ref},
            "effectiveDateTime": result.as_of.isoformat(),
            **value,
            "note": notes,
        }
        if components:
            obs["component"] = components
        refs = _references(result, model, sources)
        if refs:
            obs["derivedFrom"] = refs
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": obs})
    raw: dict[str, Any] = {"resourceType": "Bundle", "type": "collection",
                           "meta": {"tag": [{"system": codes.extension("tag"),
                                             "code": "decision-support",
                                             "display": "Decision support, not a medical "
                                             "device"}]},
                           "entry": entries}
    Bundle.model_validate(raw)  # fails loudly if the output is not valid R4B
    return raw


def render_fhir(result: Assessment, sources: Mapping[str, list[str]] | None = None) -> str:
    return json.dumps(assessment_to_bundle(result, sources), indent=2) + "\n"
