"""The OMOP adapter's rules, one by one: each reads as the researcher's definition it checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from builders import History
from trdstage.adapters.omop import open_omop, read_patient, unit_dose
from trdstage.cohort.report import suppress, weighted_kappa
from trdstage.cohort.writer import write_patients
from trdstage.engine import assess

AS_OF = date(2026, 1, 1)


def _read(tmp_path: Path, h: History, sql: list[str] | None = None):  # type: ignore[no-untyped-def]
    db = tmp_path / "cdm.duckdb"
    write_patients(db, [h.patient()], AS_OF)
    if sql:
        con = duckdb.connect(str(db))
        for s in sql:
            con.execute(s)
        con.close()
    return read_patient(open_omop(db), 1, AS_OF)


def test_daily_dose_from_strength_quantity_and_supply(tmp_path: Path) -> None:
    h = History(onset="2024-01-01")
    h.trial("sertraline", 150, weeks=8)
    patient = _read(tmp_path, h).patient
    doses = {s.daily_dose_mg for m in patient.episodes[0].medications for s in m.steps}
    assert doses == {150.0}
    assert unit_dose([(25.0, 8576)], {8576: 1.0}, 60, 30) == 50.0
    assert unit_dose([(25.0, 8576)], {8576: 1.0}, None, 30) is None
    assert unit_dose([(25.0, 8576)], {8576: 1.0}, 60, 0) is None
    assert unit_dose([(0.5, 8504)], {8504: 1000.0}, 30, 30) == 500.0


def test_without_concept_ancestor_products_are_not_recognised(tmp_path: Path) -> None:
    """Fallback: only drug_concept_ids equal to a formulary ingredient id are read."""
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=8)
    result = _read(tmp_path, h, ["DROP TABLE concept_ancestor",
                                 "UPDATE drug_exposure SET drug_concept_id = 739138 "
                                 "WHERE drug_exposure_id = 1"])
    meds = result.patient.episodes[0].medications
    assert [m.agent for m in meds] == ["sertraline"]
    assert meds[0].steps[0].daily_dose_mg is None  # no strength row for the ingredient


def test_new_episode_after_180_days_without_antidepressant(tmp_path: Path) -> None:
    h = History(onset="2022-01-01")
    h.trial("sertraline", 100, weeks=8, start="2022-01-15")
    h.trial("citalopram", 20, weeks=8, start="2023-01-15")  # 300 days later
    result = _read(tmp_path, h)
    assert result.n_episodes == 2
    onsets = [e.onset for e in result.patient.episodes]
    assert onsets[1] == date(2023, 1, 15)
    staged = assess(result.patient, AS_OF, policy="claims")
    assert [t.in_scope for t in staged.trials] == [False, True]


def test_mdd_diagnosis_is_required_and_opens_an_episode(tmp_path: Path) -> None:
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=8)
    result = _read(tmp_path, h, ["DELETE FROM condition_occurrence"])
    assert result.patient is None and result.excluded == "no MDD diagnosis"
    result = _read(tmp_path, History(onset="2024-03-01"))
    assert result.patient is not None and result.patient.episodes[0].onset == date(2024, 3, 1)


def test_augmenter_refills_are_one_addition(tmp_path: Path) -> None:
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=20, outcome=None, added=[("aripiprazole", 5, 2, 16)])
    meds = _read(tmp_path, h).patient.episodes[0].medications
    aripiprazole = [m for m in meds if m.agent == "aripiprazole"]
    assert len(aripiprazole) == 1 and len(aripiprazole[0].steps) == 4


def test_ect_sessions_form_a_course_and_phq9_gives_severity(tmp_path: Path) -> None:
    h = History(onset="2024-01-01")
    h.rating("PHQ-9", "2024-01-02", 22)
    h.ect(sessions=9, weeks=3, start="2024-02-01")
    episode = _read(tmp_path, h).patient.episodes[0]
    assert [(c.start, c.sessions) for c in episode.ect] == [(date(2024, 2, 1), 9)]
    assert episode.severity is not None and episode.severity.value == "severe"


def test_report_helpers() -> None:
    assert suppress(3, 5) == "<5" and suppress(0, 5) == "0" and suppress(12, 5) == "12"
    assert weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3], 4) == 1.0
    kappa = weighted_kappa([0, 0, 3, 3], [3, 3, 0, 0], 4)
    assert kappa is not None and kappa < 0
