"""FHIR R4 resources for tests, one small function per resource, plus a native Patient -> Bundle
converter for the round-trip test. Synthetic data only."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from trdstage.adapters.fhir.codes import load_fhir_codes
from trdstage.domain import Patient
from trdstage.knowledge import load_knowledge

SYS = load_fhir_codes().urls
EXT = load_fhir_codes().extension
SUBJECT = {"reference": "Patient/p1"}


def cc(system: str | None = None, code: str | None = None, display: str | None = None,
       text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if system is not None:
        coding: dict[str, Any] = {"system": SYS.get(system, system), "code": code}
        if display:
            coding["display"] = display
        out["coding"] = [coding]
    if text:
        out["text"] = text
    return out


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"fullUrl": f"urn:uuid:{r.get('id', i)}", "resource": r}
                      for i, r in enumerate(resources)]}


def patient(pid: str = "p1", birth: str = "1980-02-03", gender: str = "female") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def condition(rid: str, system: str = "icd10cm", code: str = "F33.1", onset: str | None =
              "2024-01-01", abatement: str | None = None, clinical: str | None = "active",
              severity: str | None = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Condition", "id": rid, "subject": SUBJECT,
                           "code": cc(system, code)}
    if onset:
        res["onsetDateTime"] = onset
    if abatement:
        res["abatementDateTime"] = abatement
    if clinical:
        res["clinicalStatus"] = cc("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   clinical)
    if severity:
        res["severity"] = cc("snomed", severity)
    res.update(extra)
    return res


def _exts(outcome: str | None, adherence: str | None) -> list[dict[str, Any]]:
    out = []
    if outcome:
        out.append({"url": EXT("treatment-outcome"), "valueCode": outcome})
    if adherence:
        out.append({"url": EXT("adherence"), "valueCode": adherence})
    return out


def dosage(value: float, unit: str = "mg", per_day: float | None = 1,
           period_unit: str = "d") -> dict[str, Any]:
    out: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}
    if per_day is not None:
        out["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": period_unit}}
    return out


def statement(rid: str, medication: dict[str, Any] | str, start: str,
              end: str | None = None, dose: list[dict[str, Any]] | None = None,
              status: str = "completed", outcome: str | None = None,
              adherence: str | None = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "MedicationStatement", "id": rid, "status": status,
                           "subject": SUBJECT}
    if isinstance(medication, str):
        res["medicationCodeableConcept"] = {"text": medication}
    else:
        res.update(medication)
    if end is not None:
        res["effectivePeriod"] = {"start": start, "end": end}
    elif start:
        res["effectiveDateTime"] = start
    if dose:
        res["dosage"] = dose
    if _exts(outcome, adherence):
        res["extension"] = _exts(outcome, adherence)
    res.update(extra)
    return res


def request(rid: str, medication: str, authored: str, supply_days: float | None = 30,
            dose: list[dict[str, Any]] | None = None, status: str = "completed",
            intent: str = "order", **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "MedicationRequest", "id": rid, "status": status,
                           "intent": intent, "subject": SUBJECT,
                           "medicationCodeableConcept": {"text": medication},
                           "authoredOn": authored}
    if supply_days is not None:
        res["dispenseRequest"] = {"expectedSupplyDuration": {
            "value": supply_days, "unit": "days", "system": "http://unitsofmeasure.org",
            "code": "d"}}
    if dose:
        res["dosageInstruction"] = dose
    res.update(extra)
    return res


def dispense(rid: str, medication: str, handed: str, quantity: float, days: float,
             unit: str = "tablet", **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "MedicationDispense", "id": rid,
                           "status": "completed", "subject": SUBJECT,
                           "medicationCodeableConcept": {"text": medication},
                           "whenHandedOver": handed, "quantity": {"value": quantity,
                                                                  "unit": unit},
                           "daysSupply": {"value": days, "unit": "day", "code": "d"}}
    res.update(extra)
    return res


def procedure(rid: str, system: str | None, code: str | None, when: str,
              end: str | None = None, count: int | None = None, text: str | None = None,
              site: str | None = None, outcome: str | None = None,
              status: str = "completed") -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Procedure", "id": rid, "status": status,
                           "subject": SUBJECT, "code": cc(system, code, text=text)}
    if end:
        res["performedPeriod"] = {"start": when, "end": end}
    else:
        res["performedDateTime"] = when
    exts = _exts(outcome, None)
    if count is not None:
        exts.append({"url": EXT("session-count"), "valueInteger": count})
    if exts:
        res["extension"] = exts
    if site:
        res["bodySite"] = [{"text": site}]
    return res


def observation(rid: str, system: str | None, code: str | None, when: str,
                value: float | None, text: str | None = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation", "id": rid, "status": "final",
                           "subject": SUBJECT, "code": cc(system, code, text=text),
                           "effectiveDateTime": when}
    if value is not None:
        res["valueQuantity"] = {"value": value, "unit": "{score}"}
    res.update(extra)
    return res


ICD_SEVERITY = {"mild": "0", "moderate": "1", "severe": "2"}


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def patient_to_bundle(p: Patient) -> dict[str, Any]:
    """A native history as the FHIR an EHR would send: one MedicationStatement per dose step
    (added agents as their own statements), ECT as a Procedure with a period and a session
    count, courses as procedures or esketamine statements, ratings as Observations."""
    k = load_knowledge()
    out: list[dict[str, Any]] = [patient("p1", _iso(p.birth_date) or "1980-01-01",
                                         p.sex.value)]
    scale_code = {"PHQ-9": ("loinc", "44261-6"), "HAM-D17": ("project", "HAM-D17"),
                  "MADRS": ("project", "MADRS"), "QIDS-SR16": ("project", "QIDS-SR16")}
    n = 0

    def nid(prefix: str) -> str:
        nonlocal n
        n += 1
        return f"{prefix}{n}"

    for e_i, ep in enumerate(p.episodes):
        code = "F33." + ("3" if ep.psychotic_features else ICD_SEVERITY.get(
            ep.severity.value if ep.severity else "", "9"))
        out.append(condition(f"mdd{e_i}", "icd10cm", code, onset=ep.onset.isoformat(),
                             abatement=_iso(ep.end),
                             clinical="resolved" if ep.end else "active"))
        for reg in ep.medications:
            groups = [(reg.agent, reg.steps, reg.outcome, reg.adherence.value)] + [
                (a.agent, a.steps, a.outcome or reg.outcome,
                 (a.adherence or reg.adherence).value) for a in reg.added]
            for agent, steps, outcome, adherence in groups:
                match = k.resolve(agent)
                assert match is not None
                for step in steps:
                    dose = [dosage(step.daily_dose_mg)] if step.daily_dose_mg else None
                    out.append(statement(
                        nid("ms"), match.name, step.start.isoformat(), _iso(step.end),
                        dose=dose, status="active" if step.end is None else "completed",
                        outcome=outcome.value if outcome else None,
                        adherence=adherence if adherence != "unknown" else None))
                    if step.end is None:
                        del out[-1]["effectiveDateTime"]
                        out[-1]["effectivePeriod"] = {"start": step.start.isoformat()}
        for course in ep.ect:
            out.append(procedure(nid("ect"), "snomed", "23835007", course.start.isoformat(),
                                 end=_iso(course.end or course.start + timedelta(days=1)),
                                 count=course.sessions,
                                 site=course.laterality.value
                                 if course.laterality.value != "unknown" else None,
                                 outcome=course.outcome.value if course.outcome else None))
        for tc in ep.courses:
            if tc.kind.value in ("esketamine", "ketamine"):
                out.append(statement(nid("ms"), tc.kind.value, tc.start.isoformat(),
                                     _iso(tc.end),
                                     outcome=tc.outcome.value if tc.outcome else None))
            elif tc.kind.value in ("rtms", "itbs"):
                out.append(procedure(nid("tms"), None, None, tc.start.isoformat(),
                                     end=_iso(tc.end), count=tc.sessions,
                                     text="rTMS" if tc.kind.value == "rtms" else "iTBS",
                                     outcome=tc.outcome.value if tc.outcome else None))
        for r in ep.ratings:
            system, code = scale_code[r.scale.value]
            out.append(observation(nid("obs"), system, code, r.date.isoformat(), r.total))
    return bundle(*out)
