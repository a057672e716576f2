"""OMOP as real ETLs write it (ETL-Synthea and others): a quantity of 0 is an unknown quantity,
not no drug; NaN readings are refused and counted. Every rule is checked on the three paths
(the per-person adapter with `engine.assess`, the expression, the DuckDB scan)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from test_cohort_equivalence import assert_same, cohort, reference
from trdstage.cohort import run
from trdstage.cohort.omop_io import write_duckdb
from trdstage.cohort.reference import normalise
from trdstage.cohort.writer import OmopWriter
from trdstage.domain import DoseStep, Episode, MedicationRegimen, Patient, RatingReading
from trdstage.knowledge import load_policy

AS_OF = date(2026, 1, 1)


def _sertraline(pid: int, weeks: int = 12) -> Patient:
    start = date(2024, 1, 10)
    return Patient(id=str(pid), sex="female", episodes=[Episode(
        id="e", onset=date(2024, 1, 1),
        medications=[MedicationRegimen(agent="sertraline", steps=[DoseStep(
            start=start, end=date.fromordinal(start.toordinal() + 7 * weeks),
            daily_dose_mg=100)])],
        ratings=[RatingReading(scale="PHQ-9", total=20, date=date(2024, 1, 5)),
                 RatingReading(scale="PHQ-9", total=18, date=date(2024, 3, 20))])])


def _database(path: Path, patients: list[Patient], edit: Any = None,
              official: bool = True) -> str:
    """The patients as OMOP rows (tests/omop_cases' writer), edited, in a DuckDB file made by
    OHDSI's DDL (`official`) or typed as the Arrow tables are (DOUBLE values: NaN fits)."""
    writer = OmopWriter(AS_OF)
    for pid, patient in enumerate(patients, start=1):
        writer.add_patient(pid, patient)
    tables = writer.tables()
    if edit is not None:
        edit(tables)
    write_duckdb(path, tables, official=official)
    return str(path)


def _every_path(url: str, policy: str) -> dict[int, dict[str, Any]]:
    """The reference result per person, after checking both cohort engines give it too."""
    want = reference(url, AS_OF, policy)
    for engine in ("expression", "scan"):
        assert_same(cohort(url, AS_OF, policy, engine), want)
    native, _ = run.stage_cohort(url, AS_OF, load_policy(policy))  # DuckDB's own SQL
    assert_same({r["person_id"]: normalise(r) for r in native.to_pylist()}, want)
    return {pid: row for pid, row in want.items() if row is not None}


def _set(tables: dict[str, pa.Table], table: str, column: str, value: Any) -> None:
    t = tables[table]
    i = t.schema.get_field_index(column)
    tables[table] = t.set_column(i, column, pa.array([value] * t.num_rows,
                                                     type=t.schema.field(i).type))


def test_quantity_zero_is_unknown_not_no_drug(tmp_path: Path) -> None:
    """ETL-Synthea writes quantity 0 on every prescription: the dose is unknown, so under the
    claims policy the 12-week trial is adequate on duration alone (flagged), not inadequate."""
    url = _database(tmp_path / "q0.duckdb", [_sertraline(1)],
                    lambda t: _set(t, "drug_exposure", "quantity", 0.0))
    got = _every_path(url, "claims")
    assert got[1]["adequate_trials"] == 1 and got[1]["duration_only_trials"] == 1
    assert got[1]["failed_trials"] == 1  # PHQ-9 20 -> 18: non-response
    strict = _every_path(url, "default")
    assert strict[1]["adequate_trials"] == 0 and strict[1]["failed_trials"] == 0


def test_nan_quantity_and_nan_phq9_are_refused(tmp_path: Path) -> None:
    """(A NUMERIC column cannot hold NaN; a DOUBLE one, as in Parquet exports, can.)"""
    def edit(t: dict[str, pa.Table]) -> None:
        _set(t, "drug_exposure", "quantity", float("nan"))
        obs = t["observation"]
        i = obs.schema.get_field_index("value_as_number")
        values = pc.if_else(pc.equal(obs["value_as_number"], 18.0), float("nan"),
                            obs["value_as_number"])
        t["observation"] = obs.set_column(i, "value_as_number", values)

    url = _database(tmp_path / "nan.duckdb", [_sertraline(1)], edit, official=False)
    got = _every_path(url, "claims")
    assert got[1]["duration_only_trials"] == 1
    assert got[1]["failed_trials"] == 0  # no endpoint reading: the outcome is unknown
    for engine in ("scan", "expression"):
        _, summary = run.stage_cohort(url, AS_OF, load_policy("claims"), engine=engine)
        assert summary.excluded_rows["observation: PHQ-9 value out of range"] == 1
