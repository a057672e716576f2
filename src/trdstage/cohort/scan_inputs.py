"""What the scan engine reads: each table once, filtered and sorted, as Arrow tables.

Two readers fill `ScanInputs`: `read_scan_inputs` through the Ibis row helpers of `engine.py`
(any database Ibis reaches), and `cohort/duckdb_native.py` straight through DuckDB's own SQL (the
default path on one machine, which spares the Ibis start-up). Tests hold the two to the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import pyarrow as pa  # type: ignore[import-untyped]

from trdstage.adapters.omop import Concepts
from trdstage.cohort.rules import BAD_END, BAD_SUPPLY
from trdstage.domain import Policy


class DrugRows(Protocol):
    """The drug rows read a range of persons at a time (the scan stages persons in batches)."""

    def between(self, first: int, last: int) -> pa.Table:
        """The rows of persons with first <= person_id <= last."""

    def without_person(self) -> pa.Table:
        """The rows whose person_id is null (counted among the exclusions, staged for no one)."""

    def done(self) -> None:
        """No more reads: the reader may let its database go (the scan calls it after its last
        read, while it stages the last persons)."""


# The drug rows left out, by the code of their `bad` column: (the expression engine's column
# that marks them, the reason counted in the report). A row is marked by its first reason.
KEPT = 0
LEFT_OUT = {1: ("bad_supply", BAD_SUPPLY), 2: ("bad_end", BAD_END)}


@dataclass
class ScanInputs:
    """The rows the scan needs, every table sorted as stated.

    - drugs: person_id int64, drug_exposure_id int64, agent_index int32 (place in
      `rules.agent_names`), is_ad bool, start int32 and end int32 (days since 1970; the period
      [start, end) clipped to the as-of date), dose float64 (mg/day; null or NaN when unknown),
      bad int8 (`KEPT`, or the code in `LEFT_OUT` of why the row is left out); in any order
      (the scan sorts them in its compiled pass, in linear time, where a database sort on five
      keys costs twice the read). Either the table of every row or a `DrugRows` that reads them
      a range of persons at a time.
    - people: person_id int64, gender_concept_id int64, year_of_birth int32 (any order).
    - diagnoses: per concept set (mdd, bipolar, psychosis): person_id int64, d date32 (any order).
    - readings: PHQ-9 totals (None when the policy or database has none): person_id int64,
      r_date date32, r_id int64, r_value float64; ordered by person_id, r_date, r_id.
    - procedures: per concept set (ect, rtms; None when absent): person_id int64, s date32;
      ordered by person_id, s.
    """

    drugs: pa.Table | DrugRows
    people: pa.Table
    diagnoses: dict[str, pa.Table]
    readings: pa.Table | None
    procedures: dict[str, pa.Table | None]


def read_scan_inputs(tables: dict[str, Any], concepts: Concepts, as_of: date, policy: Policy,
                     rules: Any) -> ScanInputs:
    """The scan's rows through the Ibis helpers shared with the expression engine."""
    import ibis  # type: ignore[import-untyped]

    from trdstage.cohort.engine import (
        diagnosis_rows,
        drug_map_table,
        drug_rows,
        phq9_rows,
        procedure_rows,
    )

    rx = drug_rows(tables, concepts, drug_map_table(concepts), as_of, rules, day_numbers=True)
    bad = ibis.cases(*((rx[column], code) for code, (column, _) in LEFT_OUT.items()),
                     else_=KEPT).cast("int8")
    rx = rx.select("person_id", "drug_exposure_id", "agent_index", "is_ad", "start", "end",
                   "dose", bad=bad)
    drugs = rx.to_pyarrow()
    from trdstage.cohort.row_audit import plausible_persons_ibis

    people = plausible_persons_ibis(tables["person"], as_of, rules).select(
        "person_id", "gender_concept_id", "year_of_birth").to_pyarrow()
    diagnoses = {name: diagnosis_rows(tables, concepts, name, as_of).to_pyarrow()
                 for name in ("mdd", "bipolar", "psychosis")}
    phq9 = phq9_rows(tables, concepts, as_of, policy)
    readings = None if phq9 is None else phq9.order_by(
        ["person_id", "r_date", "r_id"]).to_pyarrow()
    procedures: dict[str, pa.Table | None] = {}
    for name in ("ect", "rtms"):
        po = procedure_rows(tables, concepts, name, as_of)
        procedures[name] = None if po is None else po.order_by(["person_id", "s"]).to_pyarrow()
    return ScanInputs(drugs=drugs, people=people, diagnoses=diagnoses, readings=readings,
                      procedures=procedures)


__all__ = ["KEPT", "LEFT_OUT", "DrugRows", "ScanInputs", "read_scan_inputs"]
