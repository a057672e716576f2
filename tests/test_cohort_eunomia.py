"""A real producer's OMOP database: OHDSI's Eunomia Synthea27Nj (ETL-Synthea output, CDM 5.4;
tests/fixtures/eunomia/README.md), loaded into tables created by the official DDL. It stages
without error on both engines, every row left out is counted, and the empty vocabulary tables
are named in warnings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from trdstage.adapters.omop import open_omop, read_patient, resolve_concepts
from trdstage.cohort import run
from trdstage.cohort.cdm_ddl import ddl_text
from trdstage.knowledge import load_policy

FIXTURE = Path(__file__).parent / "fixtures" / "eunomia" / "synthea27nj"
AS_OF = date(2023, 1, 1)


@pytest.fixture(scope="module")
def eunomia(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("eunomia") / "synthea27nj.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(ddl_text())
        for csv in sorted(FIXTURE.glob("*.csv.gz")):
            table = csv.name.removesuffix(".csv.gz")
            con.execute(f"INSERT INTO {table} BY NAME "  # noqa: S608 - the fixture's names
                        "SELECT * FROM read_csv(?, header = true)", [str(csv)])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return str(path)


def test_eunomia_stages_and_names_what_it_leaves_out(eunomia: str) -> None:
    summaries = []
    for engine in ("scan", "expression"):
        table, summary = run.stage_cohort(eunomia, AS_OF, load_policy("claims"), engine=engine)
        summaries.append(summary)
        assert summary.persons == 28
        # no depression diagnosis and no antidepressant in this dataset: nobody is staged
        assert table.num_rows == 0 and summary.excluded_persons["no MDD diagnosis"] == 28
        text = "\n".join(summary.warnings)
        assert "concept_ancestor: missing or empty" in text
        assert "drug_strength: missing or empty" in text
        assert "no person was staged of 28" in text
        # its PHQ-9 totals carry no value (ETL-Synthea): counted, not silently unused
        assert summary.excluded_rows == {"observation: PHQ-9 total without value_as_number": 15}
    assert summaries[0].excluded_rows == summaries[1].excluded_rows
    assert summaries[0].warnings == summaries[1].warnings


def test_eunomia_before_its_last_year_counts_the_later_rows(eunomia: str) -> None:
    _, summary = run.stage_cohort(eunomia, date(2015, 1, 1), load_policy("claims"))
    assert summary.excluded_rows["drug_exposure: dated after the as-of date"] > 0
    assert summary.excluded_rows["condition_occurrence: dated after the as-of date"] > 0


def test_eunomia_persons_read_one_by_one(eunomia: str) -> None:
    source = open_omop(eunomia)
    concepts = resolve_concepts(source)
    reasons = {read_patient(source, pid, AS_OF, concepts).excluded for pid in range(1, 29)}
    assert reasons == {"no MDD diagnosis"}
