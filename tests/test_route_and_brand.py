"""Route and indication: oral selegiline (Parkinson's doses) is not an MAOI antidepressant trial,
only the transdermal system counts; no route recorded: counted, with a caveat. A trial recorded
as Zyban (the smoking-cessation brand) counts as bupropion, with a caveat. Read from the native
file, FHIR (dosage.route, Medication.form, the medication's name) and OMOP (route_concept_id,
the drug concept's name)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from builders import AS_OF, History
from fhir_builders import bundle, condition, dosage, patient, statement
from trdstage.adapters.fhir import read_fhir_data
from trdstage.adapters.native import resolve_agents
from trdstage.adapters.omop import open_omop, read_patient
from trdstage.cohort.writer import write_patients
from trdstage.domain import Patient
from trdstage.engine import assess
from trdstage.knowledge import load_knowledge

MDD = condition("c1", "icd10cm", "F33.1", onset="2024-01-01")


def with_route(agent: str, dose: float, route: str | None) -> Patient:
    h = History(onset="2025-01-01")
    h.trial(agent, dose, weeks=8)
    p = h.patient()
    med = p.episodes[0].medications[0].model_copy(update={"route": route})
    return p.model_copy(update={"episodes": [p.episodes[0].model_copy(
        update={"medications": [med]})]})


def test_oral_selegiline_is_not_an_antidepressant_trial_and_is_named() -> None:
    result = assess(with_route("selegiline", 10, "oral"), AS_OF)
    assert result.trials == []
    notice = next(n for n in result.warnings if n.code == "route_not_antidepressant")
    assert "transdermal" in notice.message and "selegiline" in notice.message


def test_transdermal_selegiline_counts_without_a_route_caveat() -> None:
    trial = assess(with_route("selegiline", 6, "Transdermal System"), AS_OF).trials[0]
    assert trial.adequate and not any("route" in r for r in trial.reasons)


def test_selegiline_without_a_route_counts_with_a_caveat() -> None:
    trial = assess(with_route("selegiline", 6, None), AS_OF).trials[0]
    assert trial.adequate
    assert any("route of selegiline not recorded" in r for r in trial.reasons)
    unknown = assess(with_route("selegiline", 6, "intravesical"), AS_OF).trials[0]
    assert any("'intravesical'" in r for r in unknown.reasons)


def test_route_is_not_read_for_agents_without_a_route_restriction() -> None:
    trial = assess(with_route("sertraline", 100, "oral"), AS_OF).trials[0]
    assert trial.adequate and not any("route" in r for r in trial.reasons)


def test_zyban_counts_as_bupropion_with_a_caveat() -> None:
    h = History(onset="2025-01-01")
    h.trial("Zyban", 300, weeks=8)
    resolved = resolve_agents(h.patient(), "t.yaml", load_knowledge())
    med = resolved.episodes[0].medications[0]
    assert (med.agent, med.recorded_as) == ("bupropion", "Zyban")
    trial = assess(resolved, AS_OF).trials[0]
    assert trial.agents == ["bupropion"] and trial.adequate and trial.failed
    assert any("smoking cessation" in r for r in trial.reasons)
    wellbutrin = History(onset="2025-01-01")
    wellbutrin.trial("Wellbutrin", 300, weeks=8)
    plain = assess(resolve_agents(wellbutrin.patient(), "t.yaml", load_knowledge()), AS_OF)
    assert not any("smoking" in r for r in plain.trials[0].reasons)


def fhir(*resources: dict[str, Any]) -> Any:
    return read_fhir_data(bundle(patient(), MDD, *resources), "t.json")


def test_fhir_dosage_route_oral_selegiline_is_not_counted() -> None:
    dose = dosage(10)
    dose["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": "26643006",
                                 "display": "Oral route"}]}
    got = fhir(statement("s1", "selegiline", "2024-02-01", "2024-04-01", dose=[dose]))
    result = assess(got.patient, AS_OF)
    assert result.trials == []
    assert any(n.code == "route_not_antidepressant" for n in result.warnings)


def test_fhir_dose_form_in_the_medication_name_is_read() -> None:
    got = fhir(statement("s1", "24 HR selegiline 0.25 MG/HR Transdermal System", "2024-02-01",
                         "2024-04-01", dose=[dosage(6)]))
    med = got.patient.episodes[0].medications[0]
    assert med.route == "24 HR selegiline 0.25 MG/HR Transdermal System"
    oral = fhir(statement("s1", "selegiline hydrochloride 5 MG Oral Capsule", "2024-02-01",
                          "2024-04-01", dose=[dosage(10)]))
    assert assess(oral.patient, AS_OF).trials == []


def test_fhir_zyban_is_recorded_as_the_brand() -> None:
    got = fhir(statement("s1", "Zyban 150 MG Extended Release Oral Tablet", "2024-02-01",
                         "2024-04-01", dose=[dosage(150, per_day=2)]))
    med = got.patient.episodes[0].medications[0]
    assert (med.agent, med.recorded_as) == ("bupropion", "Zyban")


def _omop(tmp_path: Path, name: str, route_name: str | None) -> Patient | None:
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=8, start="2024-01-15")
    db = tmp_path / "cdm.duckdb"
    write_patients(db, [h.patient()], date(2026, 1, 1))
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO concept (concept_id, concept_name, domain_id, vocabulary_id, "
                "concept_class_id, standard_concept, concept_code) VALUES "
                "(2100000101, ?, 'Drug', 'RxNorm', 'Clinical Drug', 'S', 'x1')", [name])
    if route_name:
        con.execute("INSERT INTO concept (concept_id, concept_name, domain_id, vocabulary_id, "
                    "concept_class_id, standard_concept, concept_code) VALUES "
                    "(2100000102, ?, 'Route', 'SNOMED', 'Qualifier Value', 'S', 'x2')",
                    [route_name])
    con.execute("INSERT INTO concept_ancestor VALUES (766209, 2100000101, 1, 1)")
    con.execute("INSERT INTO drug_strength VALUES (2100000101, 766209, 5, 8576)")
    con.execute("INSERT INTO drug_exposure VALUES (50, 1, 2100000101, DATE '2024-04-01', NULL, "
                "0, 60, 30, ?)", [2100000102 if route_name else None])
    for i in range(1, 3):
        con.execute("INSERT INTO drug_exposure VALUES (?, 1, 2100000101, "
                    "DATE '2024-04-01' + to_days(CAST(? AS INTEGER)), NULL, 0, 60, 30, ?)",
                    [50 + i, 30 * i, 2100000102 if route_name else None])
    con.close()
    return read_patient(open_omop(db), 1, date(2026, 1, 1)).patient


def test_omop_oral_dose_form_in_the_drug_concept_name(tmp_path: Path) -> None:
    p = _omop(tmp_path, "selegiline hydrochloride 5 MG Oral Capsule", None)
    assert p is not None
    sel = [m for m in p.episodes[0].medications if m.agent == "selegiline"]
    assert sel and sel[0].route == "selegiline hydrochloride 5 MG Oral Capsule"
    result = assess(p, date(2026, 1, 1))
    assert not any("selegiline" in t.agents for t in result.trials)


def test_omop_route_concept_wins_over_the_name(tmp_path: Path) -> None:
    p = _omop(tmp_path, "selegiline (synthetic product)", "Transdermal")
    assert p is not None
    sel = [m for m in p.episodes[0].medications if m.agent == "selegiline"]
    assert sel and {m.route for m in sel} == {"Transdermal"}
