"""Databases as OHDSI's tools and real ETLs write them: `trdstage cohort synth` creates every
table with the official OMOP CDM 5.4 DuckDB DDL (columns, types, NOT NULL), and both engines stage
a CDM built with that DDL (on PostgreSQL: tests/test_cohort_postgres.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from trdstage.cli import app
from trdstage.cohort import run
from trdstage.cohort.cdm_ddl import cdm_tables
from trdstage.knowledge import load_policy

AS_OF = date(2026, 1, 1)
runner = CliRunner()


@pytest.fixture(scope="module")
def synth_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("official") / "cdm.duckdb"
    result = runner.invoke(app, ["cohort", "synth", "--persons", "400", "--seed", "5",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_synth_writes_every_official_table_and_constraint(synth_db: Path) -> None:
    con = duckdb.connect(str(synth_db), read_only=True)
    try:
        rows = con.execute("SELECT table_name, column_name, data_type, is_nullable FROM "
                           "information_schema.columns ORDER BY table_name, ordinal_position"
                           ).fetchall()
        n_concept = con.execute("SELECT count(*) FROM concept WHERE valid_start_date IS NULL "
                                "OR concept_class_id IS NULL").fetchone()
    finally:
        con.close()
    got: dict[str, list[tuple[str, bool]]] = {}
    for table, column, _type, nullable in rows:
        got.setdefault(table, []).append((column, nullable == "NO"))
    official = cdm_tables()
    assert len(official) == 39
    assert set(got) == set(official)
    for table, columns in official.items():
        assert got[table] == [(c.name, c.not_null) for c in columns], table
    concept = [c for c, _ in got["concept"]]
    assert len(concept) == 10 and "invalid_reason" in concept  # what Circe reads
    assert n_concept == (0,)


def test_both_engines_stage_the_official_ddl_database(synth_db: Path) -> None:
    scan, s1 = run.stage_cohort(str(synth_db), AS_OF, load_policy("claims"), engine="scan")
    expr, s2 = run.stage_cohort(str(synth_db), AS_OF, load_policy("claims"),
                                engine="expression")
    assert scan.num_rows > 250
    assert scan.to_pylist() == expr.to_pylist()
    assert s1.excluded_persons == s2.excluded_persons
