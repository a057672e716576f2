"""FHIR R4 in: each mapping rule on a bundle built here, the round trip against the native
files, and bad input answered with a message that names the resource."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fhir_builders import (
    bundle,
    cc,
    condition,
    dispense,
    dosage,
    observation,
    patient,
    patient_to_bundle,
    procedure,
    request,
    statement,
)
from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir import is_fhir_json, read_fhir_data, read_fhir_file
from trdstage.adapters.native import read_patient_file
from trdstage.domain import Patient
from trdstage.engine import assess

AS_OF = date(2026, 1, 1)
EXAMPLES = Path(__file__).parents[1] / "src" / "trdstage" / "examples"
MDD = condition("c1", "icd10cm", "F33.1", onset="2024-01-01")


def read(*resources: dict[str, Any]) -> tuple[Patient, list[Any]]:
    got = read_fhir_data(bundle(patient(), *resources), "t.json")
    return got.patient, got.notices


def meds(p: Patient) -> list[tuple[str, float | None, date, date | None]]:
    return [(m.agent, m.steps[0].daily_dose_mg, m.steps[0].start, m.steps[0].end)
            for e in p.episodes for m in e.medications]


def codes(notices: list[Any]) -> set[str]:
    return {n.code for n in notices}


# ---- episodes and flags --------------------------------------------------------------------

def test_icd10_severity_and_psychotic_features() -> None:
    p, _ = read(condition("c1", "icd10cm", "F32.3", onset="2024-03-01"))
    ep = p.episodes[0]
    assert (ep.onset, ep.severity, ep.psychotic_features) == (date(2024, 3, 1), "severe", True)
    assert ep.id == "Condition/c1"
    p, _ = read(condition("c1", "icd10cm", "F330", onset="2024-03-01"))
    assert p.episodes[0].severity == "mild"


def test_snomed_mdd_with_severity_qualifier() -> None:
    p, _ = read(condition("c1", "snomed", "370143000", onset="2024-03-01", severity="24484000"))
    assert p.episodes[0].severity == "severe"


def test_resolved_condition_is_a_past_episode_and_active_one_is_current() -> None:
    p, _ = read(condition("old", "icd10cm", "F32.1", onset="2019-01-01", abatement="2019-09-01",
                          clinical="resolved"),
                condition("now", "icd10cm", "F33.2", onset="2024-05-01"))
    assert [(e.id, e.onset, e.end) for e in p.episodes] == [
        ("Condition/old", date(2019, 1, 1), date(2019, 9, 1)),
        ("Condition/now", date(2024, 5, 1), None)]
    assert p.current_episode(AS_OF).severity == "severe"


def test_several_active_mdd_conditions_are_one_episode_from_the_earliest_onset() -> None:
    p, notices = read(condition("a", "icd10cm", "F33.1", onset="2024-01-01"),
                      condition("b", "snomed", "370143000", onset="2024-06-01"))
    assert len(p.episodes) == 1 and p.episodes[0].onset == date(2024, 1, 1)
    assert "episodes_merged" in codes(notices)


def test_other_conditions_become_flags_and_unknown_ones_warnings() -> None:
    p, notices = read(MDD, condition("bp", "snomed", "13746004"),
                      condition("th", "icd10cm", "E03.9"), condition("al", "icd10cm", "F10.20"),
                      condition("ht", "icd10cm", "I10"))
    assert p.flags == ["bipolar_features", "hypothyroidism", "substance_use_disorder"]
    warned = [n for n in notices if n.code == "condition_not_used"]
    assert warned and warned[0].where == "Condition/ht" and "I10" in warned[0].message
    result = assess(p, as_of=AS_OF)
    assert "bipolar_features" in result.episode.flags


def test_no_mdd_condition_starts_the_episode_at_the_first_treatment_with_a_warning() -> None:
    p, notices = read(statement("s1", "sertraline 100 MG Oral Tablet", "2024-02-01",
                                "2024-04-01", dose=[dosage(1, "tablet")]))
    assert p.episodes[0].onset == date(2024, 2, 1)
    assert "no_mdd_condition" in codes(notices)


# ---- medications --------------------------------------------------------------------------

def test_clinical_drug_text_gives_ingredient_and_strength() -> None:
    p, _ = read(MDD, statement("s1", "sertraline 50 MG Oral Tablet", "2024-02-01", "2024-04-01",
                               dose=[dosage(2, "tablet", per_day=1)]))
    assert meds(p) == [("sertraline", 100, date(2024, 2, 1), date(2024, 4, 1))]
    assert p.episodes[0].medications[0].id == "MedicationStatement/s1"


def test_brand_name_and_frequency_per_period() -> None:
    p, _ = read(MDD, statement("s1", "Zoloft 50 MG Oral Tablet", "2024-02-01", "2024-04-01",
                               dose=[dosage(1, "{tbl}", per_day=3)]))
    assert meds(p)[0][:2] == ("sertraline", 150)


def test_rxnorm_ingredient_code_and_dose_in_mg() -> None:
    res = statement("s1", {"medicationCodeableConcept": cc("rxnorm", "39786")}, "2024-02-01",
                    "2024-04-01", dose=[dosage(75, "mg", per_day=2)])
    p, _ = read(MDD, res)
    assert meds(p)[0][:2] == ("venlafaxine", 150)


def test_rxnorm_clinical_drug_code_falls_back_to_its_display() -> None:
    res = statement("s1", {"medicationCodeableConcept": cc(
        "rxnorm", "312940", display="sertraline 50 MG Oral Tablet")}, "2024-02-01", "2024-04-01",
        dose=[dosage(1, "tablet")])
    p, _ = read(MDD, res)
    assert meds(p)[0][:2] == ("sertraline", 50)


def test_atc_code() -> None:
    res = statement("s1", {"medicationCodeableConcept": cc("atc", "N06AX11")}, "2024-02-01",
                    "2024-04-01", dose=[dosage(30)])
    p, _ = read(MDD, res)
    assert meds(p)[0][:2] == ("mirtazapine", 30)


def test_contained_and_referenced_medication_with_ingredient_strength() -> None:
    contained = statement("s1", {"medicationReference": {"reference": "#m"}, "contained": [
        {"resourceType": "Medication", "id": "m", "code": {"text": "Escitalopram tablet"},
         "ingredient": [{"itemCodeableConcept": {"text": "escitalopram"}, "strength": {
             "numerator": {"value": 10, "unit": "mg"},
             "denominator": {"value": 1, "unit": "tablet"}}}]}]},
        "2024-02-01", "2024-04-01", dose=[dosage(2, "tablet")])
    med = {"resourceType": "Medication", "id": "m2",
           "code": cc("rxnorm", "2556", display="citalopram 20 MG Oral Tablet")}
    referenced = statement("s2", {"medicationReference": {"reference": "Medication/m2"}},
                           "2024-05-01", "2024-07-01", dose=[dosage(1, "tablet")])
    p, _ = read(MDD, contained, med, referenced)
    assert [m[:2] for m in meds(p)] == [("escitalopram", 20), ("citalopram", 20)]


def test_combination_product_gives_two_agents() -> None:
    p, _ = read(MDD, statement("s1", "olanzapine 6 MG / fluoxetine 25 MG Oral Capsule",
                               "2024-02-01", "2024-04-01", dose=[dosage(1, "capsule")]))
    assert sorted(m[:2] for m in meds(p)) == [("fluoxetine", 25), ("olanzapine", 6)]


def test_request_dates_from_authored_on_plus_supply_and_dispense_dose_from_quantity() -> None:
    p, _ = read(MDD, request("r1", "sertraline 100 MG Oral Tablet", "2024-02-01", 30,
                             dose=[dosage(1, "tablet")]),
                dispense("d1", "sertraline 100 MG Oral Tablet", "2024-03-02", 60, 30))
    assert meds(p) == [("sertraline", 100, date(2024, 2, 1), date(2024, 3, 2)),
                       ("sertraline", 200, date(2024, 3, 2), date(2024, 4, 1))]


def test_consecutive_records_become_one_trial_with_dose_steps() -> None:
    p, _ = read(MDD,
                dispense("d1", "venlafaxine 75 MG Extended Release Oral Capsule", "2024-02-01",
                         30, 30),
                dispense("d2", "venlafaxine 75 MG Extended Release Oral Capsule", "2024-03-02",
                         60, 30),
                dispense("d3", "venlafaxine 150 MG Extended Release Oral Capsule", "2024-04-10",
                         30, 30))
    result = assess(p, as_of=AS_OF)
    assert len(result.trials) == 1
    trial = result.trials[0]
    assert trial.records == ["MedicationDispense/d1", "MedicationDispense/d2",
                             "MedicationDispense/d3"]
    assert trial.max_daily_dose_mg == 150 and trial.start == date(2024, 2, 1)


def test_liquid_strength_per_ml_and_timing_code() -> None:
    res = statement("s1", "sertraline 20 MG/ML Oral Solution", "2024-02-01", "2024-04-01",
                    dose=[{"doseAndRate": [{"doseQuantity": {"value": 2.5, "unit": "mL"}}],
                           "timing": {"code": {"coding": [{"code": "BID"}]}}}])
    p, _ = read(MDD, res)
    assert meds(p)[0][:2] == ("sertraline", 100)


def test_augmenter_is_read_and_counted_as_augmentation() -> None:
    p, _ = read(MDD, statement("s1", "sertraline 100 MG Oral Tablet", "2024-02-01", "2024-05-01",
                               dose=[dosage(1, "tablet")], outcome="non_response"),
                statement("s2", "lithium carbonate 300 MG Oral Capsule", "2024-03-01",
                          "2024-05-01", dose=[dosage(1, "capsule", per_day=2)]))
    assert ("lithium", 600.0, date(2024, 3, 1), date(2024, 5, 1)) in meds(p)
    trial = assess(p, as_of=AS_OF).trials[0]
    assert [(c.agent, c.role) for c in trial.concurrent] == [("lithium", "augmentation")]


def test_esketamine_becomes_a_course() -> None:
    p, _ = read(MDD, statement("s1", "esketamine 28 MG/ACTUAT Nasal Spray", "2024-06-01",
                               "2024-07-01"),
                statement("s2", "esketamine 28 MG/ACTUAT Nasal Spray", "2024-07-10",
                          "2024-08-01"))
    courses = p.episodes[0].courses
    assert [(c.kind, c.start, c.end) for c in courses] == [
        ("esketamine", date(2024, 6, 1), date(2024, 8, 1))]
    assert not p.episodes[0].medications


def test_unknown_medication_and_cancelled_records_are_warnings_naming_them() -> None:
    _, notices = read(MDD, statement("s1", "atorvastatin 20 MG Oral Tablet", "2024-02-01",
                                     "2024-04-01"),
                      statement("s2", "sertraline 50 MG Oral Tablet", "2024-02-01", "2024-04-01",
                                status="entered-in-error"),
                      request("r1", "sertraline 50 MG Oral Tablet", "2024-02-01",
                              intent="proposal"))
    where: dict[str, list[str]] = {}
    for n in notices:
        where.setdefault(n.code, []).append(n.where)
    assert where["medication_not_recognised"] == ["MedicationStatement/s1"]
    assert sorted(where["status_not_counted"]) == ["MedicationRequest/r1",
                                                   "MedicationStatement/s2"]
    assert any("intent 'proposal'" in n.message for n in notices)


def test_active_statement_without_end_runs_to_the_as_of_date() -> None:
    p, _ = read(MDD, statement("s1", "sertraline 100 MG Oral Tablet", "2025-10-01",
                               status="active", dose=[dosage(1, "tablet")]))
    assert meds(p)[0][3] is None
    assert assess(p, as_of=AS_OF).trials[0].ongoing


# ---- procedures ---------------------------------------------------------------------------

def test_ect_sessions_become_courses_split_by_30_day_gaps() -> None:
    first = [procedure(f"e{i}", "cpt", "90870", f"2024-03-{1 + 3 * i:02d}", site="bilateral",
                       outcome="non_response") for i in range(8)]
    second = [procedure(f"f{i}", "snomed", "23835007", f"2024-07-{1 + 2 * i:02d}")
              for i in range(3)]
    p, _ = read(MDD, *first, *second)
    ect = p.episodes[0].ect
    assert [(c.start, c.end, c.sessions, c.laterality) for c in ect] == [
        (date(2024, 3, 1), date(2024, 3, 22), 8, "bilateral"),
        (date(2024, 7, 1), date(2024, 7, 5), 3, "unknown")]
    result = assess(p, as_of=AS_OF)
    assert result.ect[0].failed and result.ect[0].id == "Procedure/e0"


def test_ect_procedure_with_period_and_count_is_a_course() -> None:
    p, notices = read(MDD, procedure("e1", "snomed", "23835007", "2024-03-01", end="2024-04-01",
                                     count=10, site="right unilateral"),
                      procedure("e2", "snomed", "23835007", "2024-08-01", end="2024-08-20"))
    ect = p.episodes[0].ect
    assert [(c.sessions, c.laterality) for c in ect] == [(10, "unilateral"), (None, "unknown")]
    assert "sessions_unknown" in codes(notices)


def test_rtms_by_cpt_and_itbs_by_text_unknown_procedure_warned() -> None:
    p, notices = read(MDD, *[procedure(f"t{i}", "cpt", "90868", f"2024-04-{1 + i:02d}")
                             for i in range(5)],
                      procedure("i1", None, None, "2024-09-01", text="iTBS session"),
                      procedure("x1", "cpt", "99213", "2024-09-01"))
    kinds = [(c.kind, c.sessions) for c in p.episodes[0].courses]
    assert kinds == [("rtms", 5), ("itbs", 1)]
    assert [n.where for n in notices if n.code == "procedure_not_used"] == ["Procedure/x1"]


# ---- observations -------------------------------------------------------------------------

def test_phq9_total_and_other_scales_by_text_and_project_code() -> None:
    p, notices = read(MDD, observation("o1", "loinc", "44261-6", "2024-02-01", 18),
                      observation("o2", None, None, "2024-02-02", 24,
                                  text="Hamilton Depression Rating Scale (HAM-D17) total"),
                      observation("o3", None, None, "2024-02-03", 30, text="MADRS total score"),
                      observation("o4", "project", "QIDS-SR16", "2024-02-04", 15),
                      observation("o5", None, None, "2024-02-05", 20, text="HAM-D 21 item"),
                      observation("o6", "loinc", "8480-6", "2024-02-06", 120,
                                  text="Systolic blood pressure"))
    got = [(r.scale, r.total) for r in p.episodes[0].ratings]
    assert got == [("PHQ-9", 18), ("HAM-D17", 24), ("MADRS", 30), ("QIDS-SR16", 15)]
    unused = [n.where for n in notices if n.code == "observation_not_used"]
    assert sorted(unused) == ["Observation/o5", "Observation/o6"]


def test_phq9_panel_with_item_components_and_members() -> None:
    items = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
             "44253-3", "44260-8"]
    answers = ["LA6571-9", "LA6570-1", "LA6569-3", "LA6568-5"]
    components = [{"code": cc("loinc", code), "valueCodeableConcept": cc(
        "loinc", answers[i % 4])} for i, code in enumerate(items)]
    panel = observation("p1", "loinc", "44249-1", "2024-02-01", None, component=components)
    members = [observation(f"m{i}", "loinc", code, "2024-03-01", 2) for i, code in
               enumerate(items)]
    panel2 = observation("p2", "loinc", "44249-1", "2024-03-01", None,
                         hasMember=[{"reference": f"Observation/m{i}"} for i in range(9)])
    p, notices = read(MDD, panel, panel2, *members)
    readings = p.episodes[0].ratings
    assert [(r.total, r.items) for r in readings] == [
        (15, [3, 2, 1, 0, 3, 2, 1, 0, 3]), (18, [2] * 9)]
    assert "item_alone" not in codes(notices)


def test_unrelated_resource_types_are_listed_not_read() -> None:
    _, notices = read(MDD, {"resourceType": "Encounter", "id": "enc1", "status": "finished",
                            "class": {"code": "AMB"}})
    assert any(n.code == "resource_not_read" and n.where == "Encounter/enc1" for n in notices)


def test_resources_of_another_patient_are_not_read() -> None:
    other = statement("s1", "sertraline 50 MG Oral Tablet", "2024-02-01", "2024-04-01",
                      subject={"reference": "Patient/someone-else"})
    p, notices = read(MDD, other)
    assert not meds(p) and "other_patient" in codes(notices)


# ---- round trip ---------------------------------------------------------------------------

def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if k not in ("id", "records", "counted", "roles", "reasons", "caveats")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_round_trip_native_and_bundle_stage_the_same(name: str) -> None:
    native = read_patient_file(EXAMPLES / name)
    got = read_fhir_data(patient_to_bundle(native), name)
    a = assess(native, as_of=AS_OF)
    b = assess(got.patient, as_of=AS_OF)
    assert _strip(b.staging.model_dump()) == _strip(a.staging.model_dump())
    assert _strip([t.model_dump() for t in b.trials]) == _strip([t.model_dump()
                                                                for t in a.trials])
    assert _strip([e.model_dump() for e in b.ect]) == _strip([e.model_dump() for e in a.ect])
    kept = [c for c in a.courses if c.kind in ("esketamine", "ketamine", "rtms", "itbs")]
    assert _strip([c.model_dump() for c in b.courses]) == _strip([c.model_dump() for c in kept])


# ---- bad and hostile input ----------------------------------------------------------------

def _error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(InputError) as info:
        read_fhir_file(path)
    return str(info.value)


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    assert "bad.json:1:" in _error(tmp_path, '{"resourceType": "Bundle", "type": ')


def test_wrong_resource_type(tmp_path: Path) -> None:
    message = _error(tmp_path, json.dumps(patient()))
    assert "expected a Bundle, got 'Patient'" in message


def test_unparseable_resource_names_type_id_and_field(tmp_path: Path) -> None:
    bad = statement("s9", "sertraline 50 MG Oral Tablet", "2024-02-01", "2024-04-01")
    del bad["status"]
    message = _error(tmp_path, json.dumps(bundle(bad)))
    assert "MedicationStatement/s9" in message and "status" in message


def test_missing_dates_name_the_resource_and_element(tmp_path: Path) -> None:
    message = _error(tmp_path, json.dumps(bundle(MDD, statement(
        "s1", "sertraline 50 MG Oral Tablet", ""))))
    assert "MedicationStatement/s1" in message and "effective[x]" in message
    message = _error(tmp_path, json.dumps(bundle(condition("c9", onset=None))))
    assert "Condition/c9" in message and "onset" in message
    message = _error(tmp_path, json.dumps(bundle(MDD, observation(
        "o1", "loinc", "44261-6", "2024-01-01", 10) | {"effectiveDateTime": None})))
    assert "Observation/o1" in message


def test_bundle_over_the_size_limit_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    filler = [observation(f"o{i}", "loinc", "8480-6", "2024-01-01", 120, text="x" * 500)
              for i in range(1)]
    head = json.dumps(bundle(MDD, *filler))[:-2]
    with path.open("w") as fh:
        fh.write(head)
        chunk = ", " + json.dumps({"resource": filler[0]})
        while fh.tell() < 50 * 1024 * 1024:
            fh.write(chunk * 1000)
        fh.write("]}")
    with pytest.raises(InputError) as info:
        read_fhir_file(path)
    assert "larger than the 32 MB limit" in str(info.value)


def test_non_utf8_and_unknown_resource_type(tmp_path: Path) -> None:
    assert "not UTF-8" in _error(tmp_path, b'{"resourceType": "Bundle\xff"}')
    message = _error(tmp_path, json.dumps(bundle({"resourceType": "NotAThing", "id": "x"})))
    assert "unknown resourceType 'NotAThing'" in message


def test_is_fhir_json(tmp_path: Path) -> None:
    fhir = tmp_path / "a.json"
    fhir.write_text(json.dumps(bundle(MDD)))
    native = tmp_path / "b.json"
    native.write_text(json.dumps({"episodes": []}))
    assert is_fhir_json(fhir) and not is_fhir_json(native)
