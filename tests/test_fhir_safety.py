"""Issue 15, safety and real records on the FHIR and native paths: a positive PHQ-9 item 9 always
alerts, answer codes never make a total, nothing clinical vanishes without a warning, deceased
patients are not advised as if alive, diagnoses by the published eCQM value sets, dispenses
without a dose, and FHIR input errors that name resource and field. Synthetic data only."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from builders import AS_OF, History
from fhir_builders import (
    EXT,
    bundle,
    cc,
    condition,
    dispense,
    dosage,
    observation,
    patient,
    procedure,
    statement,
)
from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.read import FhirRead, read_fhir_data
from trdstage.adapters.native import patient_from_mapping
from trdstage.advice import advise
from trdstage.domain import ItemReading, Patient
from trdstage.domain.advice import AlertSeverity
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge.value_sets import load_value_sets

ITEMS = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3",
         "44260-8"]
ITEM9 = ITEMS[8]
ON = "2025-11-20"
AS = date(2026, 1, 1)


def read(*resources: dict[str, Any]) -> FhirRead:
    return read_fhir_data(bundle(patient(), condition("c1"),
                                 statement("m1", "sertraline 100 MG Oral Tablet", "2025-09-01",
                                           dose=[dosage(100)], status="active"), *resources))


def advised(p: Patient, as_of: date = AS) -> Assessment:
    return advise(p, assess(p, as_of=as_of))


def codes(result: FhirRead) -> set[str]:
    return {n.code for n in result.notices}


def item9_alerts(a: Assessment) -> list[Any]:
    return [x for x in a.alerts if x.code == "phq9_item9_positive"]


def answer(code: str) -> dict[str, Any]:
    return {"valueCodeableConcept": cc("http://loinc.org", code)}


def item(rid: str, code: str, value: int) -> dict[str, Any]:
    return observation(rid, "loinc", code, ON, value)


# ---- 1. a positive item 9 always alerts ---------------------------------------------------
def test_lone_item9_observation_raises_the_urgent_alert() -> None:
    result = read(item("i9", ITEM9, 2))
    assert result.patient.episodes[-1].item_readings == [
        ItemReading(scale="PHQ-9", date=date.fromisoformat(ON), item=9, score=2)]
    assert not result.patient.episodes[-1].ratings  # no total from one item
    assert "item_alone" in codes(result)
    alerts = item9_alerts(advised(result.patient))
    assert [a.severity for a in alerts] == [AlertSeverity.urgent]


def test_lone_item9_answer_code_and_zero() -> None:
    coded = observation("i9", "loinc", ITEM9, ON, None, **answer("LA6571-9"))
    assert item9_alerts(advised(read(coded).patient))[0].severity is AlertSeverity.urgent
    assert item9_alerts(advised(read(item("i9", ITEM9, 0)).patient)) == []


def test_item9_as_a_component_of_a_total() -> None:
    total = observation("t1", "loinc", "44261-6", ON, 14, component=[
        {"code": cc("loinc", ITEM9), **answer("LA6570-1")}])
    result = read(total)
    ep = result.patient.episodes[-1]
    assert [r.total for r in ep.ratings] == [14]
    assert [(i.item, i.score) for i in ep.item_readings] == [(9, 2)]
    assert item9_alerts(advised(result.patient))[0].severity is AlertSeverity.urgent


def test_item9_in_an_incomplete_panel_of_eight_items() -> None:
    members = [item(f"i{n}", code, 1) for n, code in enumerate(ITEMS) if n != 2]
    panel = observation("p1", "loinc", "44249-1", ON, None,
                        hasMember=[{"reference": f"Observation/i{n}"}
                                   for n in range(9) if n != 2])
    result = read(panel, *members)
    ep = result.patient.episodes[-1]
    assert ep.ratings == []  # the total needs all nine items
    assert {i.item for i in ep.item_readings} == {1, 2, 4, 5, 6, 7, 8, 9}
    assert "items_incomplete" in codes(result)
    assert item9_alerts(advised(result.patient))[0].severity is AlertSeverity.urgent


def test_item9_in_a_panel_with_another_item_out_of_range() -> None:
    scores = [1, 1, 7, 1, 1, 1, 1, 1, 3]
    panel = observation("p1", "loinc", "44249-1", ON, None, component=[
        {"code": cc("loinc", code), "valueInteger": v} for code, v in zip(ITEMS, scores,
                                                                        strict=True)])
    result = read(panel)
    ep = result.patient.episodes[-1]
    assert ep.ratings == []
    assert 3 not in {i.item for i in ep.item_readings}
    assert "items_out_of_range" in codes(result)
    alerts = item9_alerts(advised(result.patient))
    assert alerts and alerts[0].severity is AlertSeverity.urgent
    assert "scored 3" in alerts[0].message


def test_earlier_positive_item9_is_a_warning_when_a_later_answer_is_zero() -> None:
    later = observation("i9b", "loinc", ITEM9, "2025-12-20", 0)
    alerts = item9_alerts(advised(read(item("i9", ITEM9, 2), later).patient))
    assert [a.severity for a in alerts] == [AlertSeverity.warning]


def test_native_file_item_reading_raises_the_alert() -> None:
    raw = {"episodes": [{"onset": "2025-01-01", "item_readings": [
        {"scale": "PHQ-9", "date": ON, "item": 9, "score": 1}]}]}
    p = patient_from_mapping(raw, "p.yaml", today=AS)
    assert item9_alerts(advised(p))[0].severity is AlertSeverity.urgent
    bad = {"episodes": [{"onset": "2025-01-01", "item_readings": [
        {"scale": "PHQ-9", "date": ON, "item": 10, "score": 1}]}]}
    with pytest.raises(InputError, match=r"item_readings\[0\]\.item"):
        patient_from_mapping(bad, "p.yaml", today=AS)


# ---- 2. answer codes are never totals -----------------------------------------------------
def test_total_with_an_item_answer_code_is_not_a_total_of_three() -> None:
    total = observation("t1", "loinc", "44261-6", ON, None, **answer("LA6571-9"))
    result = read(total)
    assert result.patient.episodes[-1].ratings == []
    assert "total_answer_code" in codes(result)


# ---- 3. nothing clinical vanishes ----------------------------------------------------------
def test_search_mode_outcome_entry_that_is_not_an_operation_outcome_is_read() -> None:
    b = bundle(patient(), condition("c1"),
               statement("m1", "sertraline 100 MG Oral Tablet", "2025-09-01",
                         dose=[dosage(100)], status="active"), kind="searchset")
    b["entry"][2]["search"] = {"mode": "outcome"}
    b["entry"].append({"search": {"mode": "outcome"}, "resource": {
        "resourceType": "OperationOutcome", "issue": [{"severity": "information",
                                                       "code": "informational"}]}})
    result = read_fhir_data(b)
    assert [m.agent for m in result.patient.episodes[-1].medications] == ["sertraline"]
    notice = next(n for n in result.notices if n.code == "search_mode_outcome")
    assert notice.where == "MedicationStatement/m1"


def test_esketamine_regimen_keeps_its_added_antidepressant() -> None:
    raw = {"episodes": [{"onset": "2025-01-01", "medications": [
        {"agent": "sertraline", "steps": [{"start": "2025-01-10", "end": "2025-03-10",
                                           "dose": "150 mg"}], "outcome": "non_response"},
        {"agent": "escitalopram", "steps": [{"start": "2025-03-20", "end": "2025-05-20",
                                             "dose": "20 mg"}], "outcome": "non_response"},
        {"id": "spravato", "agent": "Spravato", "steps": [{"start": "2025-06-01"}],
         "added": [{"agent": "venlafaxine", "steps": [{"start": "2025-06-01",
                                                        "dose": "150 mg"}]}]}]}]}
    p = patient_from_mapping(raw, "p.yaml", today=AS)
    a = advised(p)
    venlafaxine = [t for t in a.trials if t.agents == ["venlafaxine"]]
    assert venlafaxine and venlafaxine[0].ongoing
    assert [c.kind.value for c in a.courses] == ["esketamine"]
    for rec in a.recommendations:
        for line in rec.rationale:
            if line.startswith("candidates:"):
                names = line.removeprefix("candidates:").replace(",", " ").split()
                assert "venlafaxine" not in names, rec.intervention


def test_augmenter_overlapping_no_antidepressant_trial_is_named() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8)
    h.trial("lithium", 800, weeks=8, outcome=None, start="2025-06-01")
    a = h.assess()
    notice = next(n for n in a.warnings if n.code == "augmenter_without_trial")
    assert "lithium" in notice.message


def test_courses_and_ratings_after_the_as_of_date_are_named() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8)
    h.course("esketamine", weeks=4)
    h.rating("PHQ-9", "2026-03-01", 12)
    a = h.assess(as_of=h.courses[0].start - timedelta(days=1))
    later = [n for n in a.warnings if n.code == "after_as_of"]
    assert any("esketamine course" in n.message for n in later)
    assert any("rating" in n.message and "2026-03-01" in n.message for n in later)


@pytest.mark.parametrize(("given", "antidepressant", "code"), [
    ("Ultram", "sertraline", "serotonergic_other_serotonergic"),
    ("Tramadol 50 mg", "sertraline", "serotonergic_other_serotonergic"),
    ("Zyvox", "sertraline", "serotonergic_linezolid_methylene_blue"),
    ("linezolid 600 mg tablet", "sertraline", "serotonergic_linezolid_methylene_blue"),
    ("Ultram 50 MG Oral Tablet", "phenelzine", "maoi_forbidden_serotonergic"),
])
def test_other_medications_by_brand_or_strength_raise_their_interaction(
        given: str, antidepressant: str, code: str) -> None:
    h = History()
    h.trial(antidepressant, 60 if antidepressant == "phenelzine" else 100, weeks=8,
            ongoing=True, outcome=None)
    p = h.patient().model_copy(update={"other_medications": [given]})
    a = advise(p, assess(p, as_of=AS_OF))
    assert code in {x.code for x in a.alerts}
    assert "other_medication_not_recognised" not in {x.code for x in a.alerts}


def test_unrecognised_other_medication_is_named() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8, ongoing=True, outcome=None)
    p = h.patient().model_copy(update={"other_medications": ["Frobnitol 5 mg"]})
    a = advise(p, assess(p, as_of=AS_OF))
    alert = next(x for x in a.alerts if x.code == "other_medication_not_recognised")
    assert "Frobnitol 5 mg" in alert.message


# ---- 4. deceased patients -------------------------------------------------------------------
def _died(**fields: Any) -> FhirRead:
    pat = patient(birth="1950-02-03") | fields
    return read_fhir_data(bundle(
        pat, condition("c1", onset="1990-01-01"),
        statement("m1", "sertraline 100 MG Oral Tablet", "1990-02-01", dose=[dosage(100)],
                  status="active")))


def test_deceased_date_ends_the_history_and_gives_no_advice() -> None:
    result = _died(deceasedDateTime="1992-05-01")
    assert result.patient.death_date == date(1992, 5, 1) and result.patient.deceased
    a = advised(result.patient, as_of=AS)
    assert a.deceased and a.as_of == date(1992, 5, 1)
    trial = a.trials[0]
    assert not trial.ongoing and trial.end == date(1992, 5, 1)
    assert trial.weeks < 120  # not 1,900 weeks to 2026
    notice = next(n for n in a.warnings if n.code == "deceased")
    assert "1992-05-01" in notice.message and "m1" in notice.message
    assert a.recommendations == [] and a.reassessment == []
    assert [x.code for x in a.alerts] == ["patient_deceased"]


def test_deceased_boolean_without_a_date_gives_no_advice() -> None:
    a = advised(_died(deceasedBoolean=True).patient)
    assert a.deceased and a.death_date is None
    assert any(n.code == "deceased" for n in a.warnings)
    assert a.recommendations == [] and [x.code for x in a.alerts] == ["patient_deceased"]


def test_native_death_date() -> None:
    raw = {"death_date": "2025-03-01", "episodes": [{"onset": "2025-01-01", "medications": [
        {"agent": "sertraline", "steps": [{"start": "2025-01-10", "dose": "100 mg"}]}]}]}
    p = patient_from_mapping(raw, "p.yaml", today=AS)
    a = advised(p)
    assert a.as_of == date(2025, 3, 1) and not a.trials[0].ongoing
    assert a.recommendations == []
    with pytest.raises(InputError, match="death_date"):
        patient_from_mapping({**raw, "death_date": "2027-01-01"}, "p.yaml", today=AS)


# ---- 5. diagnoses by published value set ------------------------------------------------------
@pytest.mark.parametrize("code", ["15193003", "191611001", "268621008"])
def test_snomed_major_depression_codes_of_the_vsac_value_set(code: str) -> None:
    result = read_fhir_data(bundle(patient(), condition("c1", system="snomed", code=code)))
    assert result.patient.episodes[0].id == "Condition/c1"
    assert "no_mdd_condition" not in codes(result)


@pytest.mark.parametrize(("system", "code", "flag"), [
    ("snomed", "10981006", "bipolar_features"),
    ("snomed", "371596008", "bipolar_features"),
    ("icd10cm", "F31.81", "bipolar_features"),
    ("http://hl7.org/fhir/sid/icd-10", "F31.3", "bipolar_features"),
    ("icd10cm", "F20.0", "psychotic_disorder"),
    ("http://hl7.org/fhir/sid/icd-10", "F25.1", "psychotic_disorder"),
])
def test_exclusion_diagnoses_set_their_flag(system: str, code: str, flag: str) -> None:
    result = read(condition("x1", system=system, code=code))
    assert flag in result.patient.flags


@pytest.mark.parametrize(("code", "severity"), [("F32.2", "severe"), ("F33.0", "mild")])
def test_who_icd10_depressive_episode(code: str, severity: str) -> None:
    result = read_fhir_data(bundle(patient(), condition(
        "c1", system="http://hl7.org/fhir/sid/icd-10", code=code)))
    assert result.patient.episodes[0].severity == severity


def test_value_sets_carry_their_oid_version_and_codes() -> None:
    sets = load_value_sets()
    mdd = sets["major-depression-including-remission"]
    assert mdd.oid == "2.16.840.1.113883.3.67.1.101.3.2444" and mdd.means == "mdd"
    assert mdd.has("snomed", "370143000") and mdd.has("icd10cm", "F33.42")
    assert sets["bipolar-disorder"].has("snomed", "10981006")
    assert not mdd.has("icd10cm", "F31.9")


# ---- 7. dispenses with a days supply and no dose ----------------------------------------------
def test_dispense_without_quantity_duration_known_dose_not() -> None:
    d = dispense("d1", "sertraline 50 MG Oral Tablet", "2025-09-01", 60, 60)
    del d["quantity"]
    result = read_fhir_data(bundle(patient(), condition("c1"), d))
    assert "dispense_dose_unknown" in codes(result)
    default = assess(result.patient, as_of=AS)
    assert any("duration known" in r and "no dose recorded" in r
               for r in default.trials[0].reasons)
    claims = assess(result.patient, as_of=AS, policy="claims")
    assert claims.trials[0].adequate
    assert any("duration alone" in r for r in claims.trials[0].reasons)


# ---- 8. FHIR input errors name resource and field -----------------------------------------------
def _with_timing(repeat: dict[str, Any]) -> dict[str, Any]:
    return statement("m1", "sertraline 50 MG Oral Tablet", "2025-01-10", dose=[{
        "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}],
        "timing": {"repeat": repeat}}])


def _sessions(ext: dict[str, Any]) -> dict[str, Any]:
    proc = procedure("e1", "snomed", "23835007", "2025-02-01", end="2025-03-01")
    proc["extension"] = [{"url": EXT("session-count"), **ext}]
    return proc


def _contained() -> dict[str, Any]:
    res = statement("m1", {"medicationReference": {"reference": "#x"}}, "2025-01-10")
    res["contained"] = [{"resourceType": "NoSuchThing", "id": "x"}]
    return res


def _no_quantity_dispense(days: float) -> dict[str, Any]:
    return dispense("d1", "sertraline 50 MG Oral Tablet", "2025-01-10", 30, days)


@pytest.mark.parametrize(("resource", "place", "field"), [
    (statement("m1", "sertraline", "2025-01-10", dose=[dosage(-50)]), "MedicationStatement/m1",
     "dosage.doseAndRate.dose"),
    (_with_timing({"frequency": 1, "period": -1, "periodUnit": "d"}), "MedicationStatement/m1",
     "dosage.timing.repeat.period"),
    (dispense("d1", "sertraline 50 MG Oral Tablet", "2025-01-10", -30, 30),
     "MedicationDispense/d1", "quantity"),
    (_no_quantity_dispense(-30), "MedicationDispense/d1", "daysSupply"),
    (_no_quantity_dispense(1e12), "MedicationDispense/d1", "daysSupply"),
    (condition("c2", onset="2025-01-01", abatement="2024-01-01"), "Condition/c2",
     "abatement[x]"),
    (_sessions({"valueString": "twelve"}), "Procedure/e1", "extension(session-count)"),
    (_sessions({"valueInteger": -3}), "Procedure/e1", "extension(session-count)"),
    (_contained(), "MedicationStatement/m1", "contained[0].resourceType"),
])
def test_fhir_input_errors_name_resource_and_field(resource: dict[str, Any], place: str,
                                                   field: str) -> None:
    with pytest.raises(InputError) as info:
        read_fhir_data(bundle(patient(), condition("c1"), resource), "b.json")
    assert place in info.value.where
    assert str(info.value.message).startswith(field)

