"""The FHIR results Bundle of an assessment with a Provenance: its targets are the result
Observations, its agent trdstage (version, policy), its entities (role `derivation`) the input
resources the result was derived from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from trdstage.adapters.fhir.write import NAMESPACE, assessment_to_bundle
from trdstage.domain.results import Assessment

PROVENANCE_ACTIVITY = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def results_bundle(result: Assessment, sources: dict[str, list[str]],
                   inputs: list[str]) -> dict[str, Any]:
    """`assessment_to_bundle` plus a Provenance (validated as R4B)."""
    from trdstage.service.store import knowledge_version, trdstage_version

    bundle = assessment_to_bundle(result, sources)
    targets = [{"reference": e["fullUrl"]} for e in bundle["entry"]]
    pid = str(uuid.uuid5(NAMESPACE, f"{result.patient_id}|{result.as_of}|{result.policy}|"
                                    "provenance"))
    provenance: dict[str, Any] = {
        "resourceType": "Provenance", "id": pid, "target": targets,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "activity": {"coding": [{"system": PROVENANCE_ACTIVITY, "code": "CREATE",
                                 "display": "create"}]},
        "agent": [{"type": {"coding": [{"system": AGENT_TYPE, "code": "assembler",
                                        "display": "Assembler"}]},
                   "who": {"display": f"trdstage {trdstage_version()} (knowledge "
                                      f"{knowledge_version()}, policy {result.policy})"}}],
        "reason": [{"text": "Decision support, not a medical device."}],
    }
    if inputs:
        provenance["entity"] = [{"role": "derivation", "what": {"reference": ref}}
                                for ref in inputs]
    bundle["entry"].append({"fullUrl": f"urn:uuid:{pid}", "resource": provenance})
    Bundle.model_validate(bundle)
    return bundle
