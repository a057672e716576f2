"""`trdstage cohort synth | stage | report` as a user runs them, and bad input: a clear message
and exit code 2, or a counted exclusion; never a crash with partial output."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from builders import History
from trdstage.cli import app
from trdstage.cohort.writer import write_patients

runner = CliRunner()
AS_OF = "2026-01-01"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "cdm.duckdb"
    result = runner.invoke(app, ["cohort", "synth", "--persons", "3000", "--out", str(path),
                                 "--seed", "7"])
    assert result.exit_code == 0, result.output
    return path


def test_synth_is_deterministic(tmp_path: Path, synthetic: Path) -> None:
    again = tmp_path / "again.duckdb"
    assert runner.invoke(app, ["cohort", "synth", "-n", "3000", "-o", str(again),
                               "--seed", "7"]).exit_code == 0
    q = ("SELECT count(*), sum(CAST(person_id AS BIGINT) * drug_concept_id), sum(quantity) "
         "FROM drug_exposure")  # (INTEGER ids, as the official DDL declares them)
    a = duckdb.connect(str(synthetic), read_only=True).execute(q).fetchone()
    b = duckdb.connect(str(again), read_only=True).execute(q).fetchone()
    assert a == b


def test_synth_follows_star_d_shape(synthetic: Path) -> None:
    con = duckdb.connect(str(synthetic), read_only=True)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert {"person", "observation_period", "drug_exposure", "drug_strength",
            "condition_occurrence", "procedure_occurrence", "observation", "concept",
            "concept_ancestor"} <= tables
    # quantities and supplies present for most fills; a few without (dose unknown)
    missing = con.execute("SELECT avg((quantity IS NULL)::INT) FROM drug_exposure").fetchone()
    assert missing is not None and 0.02 < missing[0] < 0.2
    assert con.execute("SELECT count(*) FROM procedure_occurrence WHERE "
                       "procedure_concept_id = 4030840").fetchone()[0] > 0  # type: ignore[index]


def test_stage_and_report(tmp_path: Path, synthetic: Path) -> None:
    out = tmp_path / "results.parquet"
    summary = tmp_path / "summary.json"
    result = runner.invoke(app, ["cohort", "stage", "--omop", str(synthetic), "--out", str(out),
                                 "--as-of", AS_OF, "--summary-json", str(summary)])
    assert result.exit_code == 0, result.output
    assert "persons staged" in result.output
    table = pq.read_table(out)
    cols = set(table.column_names)
    assert "episode" not in cols  # (the current episode is the last: n_episodes is its number)
    assert {"person_id", "n_episodes", "thase_rush_stage", "mgh_score", "maudsley_score",
            "maudsley_band", "european_category", "regulatory_met", "regulatory_first_met",
            "failed_trials"} <= cols
    facts = json.loads(summary.read_text())
    assert facts["persons"] == 3000
    assert facts["staged"] == table.num_rows
    assert facts["excluded_persons"]["no MDD diagnosis"] > 0  # the distractors
    stages = set(table.column("thase_rush_stage").to_pylist())
    assert {0, 1, 2, 3} <= stages
    report = tmp_path / "report"
    result = runner.invoke(app, ["cohort", "report", "--results", str(out), "--out",
                                 str(report), "--min-count", "10"])
    assert result.exit_code == 0, result.output
    page = (report / "index.html").read_text()
    for name in ("stages", "concordance", "incidence", "age_sex"):
        assert (report / f"{name}.png").stat().st_size > 1000
        assert (report / f"{name}.svg").is_file()
    assert "weighted kappa" in page and "[s]" in page  # hidden counts


def test_both_engines_write_the_same_results(tmp_path: Path, synthetic: Path) -> None:
    """`--engine scan` (the DuckDB default, also in 5 batches) and `--engine expression` write
    identical tables and the same summary counts; an unknown engine and a batch count below 1
    are refused before anything is written."""
    tables, facts = {}, {}
    for name, options in (("scan", ["--engine", "scan"]),
                          ("batches", ["--engine", "scan", "--batches", "5"]),
                          ("expression", ["--engine", "expression"])):
        out, summary = tmp_path / f"{name}.parquet", tmp_path / f"{name}.json"
        result = runner.invoke(app, ["cohort", "stage", "--omop", str(synthetic), "--out",
                                     str(out), "--as-of", AS_OF, *options,
                                     "--summary-json", str(summary)])
        assert result.exit_code == 0, result.output
        tables[name] = pq.read_table(out)
        facts[name] = {k: v for k, v in json.loads(summary.read_text()).items()
                       if k not in ("seconds", "engine", "output")}
    assert tables["scan"].equals(tables["expression"])
    assert tables["batches"].equals(tables["expression"])
    assert facts["scan"] == facts["expression"] == facts["batches"]
    bad = tmp_path / "bad.parquet"
    for options in (["--engine", "turbo"], ["--batches", "0"]):
        result = runner.invoke(app, ["cohort", "stage", "--omop", str(synthetic), "--out",
                                     str(bad), *options])
        assert result.exit_code == 2 and options[0] in result.output and not bad.exists()


def test_results_schema_in_duckdb(tmp_path: Path) -> None:
    db = tmp_path / "cdm.duckdb"
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=8, outcome=None)
    h.trial("venlafaxine", 150, weeks=8, outcome=None)
    h.trial("mirtazapine", 30, weeks=8, outcome=None)
    write_patients(db, [h.patient()], date(2026, 1, 1))
    result = runner.invoke(app, ["cohort", "stage", "--omop", f"duckdb://{db}",
                                 "--results-schema", "results", "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    row = duckdb.connect(str(db), read_only=True).execute(
        "SELECT thase_rush_stage, regulatory_met, failed_trials "
        "FROM results.trdstage_cohort").fetchone()
    assert row == (2, True, 2)


def _db(tmp_path: Path) -> Path:
    db = tmp_path / "cdm.duckdb"
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=8, outcome=None)
    h.trial("venlafaxine", 150, weeks=8, outcome=None)
    write_patients(db, [h.patient(), History().patient()], date(2026, 1, 1))
    return db


@pytest.mark.parametrize(("sql", "message"), [
    ("DROP TABLE drug_exposure", "table drug_exposure: missing"),
    ("ALTER TABLE drug_exposure DROP COLUMN days_supply", "drug_exposure.days_supply: missing"),
    ("ALTER TABLE drug_exposure ALTER drug_concept_id TYPE VARCHAR",
     "drug_exposure.drug_concept_id: has type string"),
    ("ALTER TABLE person ALTER person_id TYPE DOUBLE", "person.person_id: has type float64"),
])
def test_bad_database_exits_2_without_output(tmp_path: Path, sql: str, message: str) -> None:
    db = _db(tmp_path)
    con = duckdb.connect(str(db))
    con.execute(sql)
    con.close()
    out = tmp_path / "results.parquet"
    result = runner.invoke(app, ["cohort", "stage", "--omop", str(db), "--out", str(out),
                                 "--as-of", AS_OF])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()
    assert not list(tmp_path.glob(".results*"))


def test_missing_database_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cohort", "stage", "--omop", str(tmp_path / "nope.duckdb"),
                                 "--out", str(tmp_path / "r.parquet")])
    assert result.exit_code == 2
    assert "no such DuckDB file" in result.output


@pytest.mark.parametrize("engine", ["scan", "expression"])
def test_bad_rows_are_counted_not_fatal(tmp_path: Path, engine: str) -> None:
    db = _db(tmp_path)
    con = duckdb.connect(str(db))
    con.execute("UPDATE drug_exposure SET days_supply = -30 WHERE drug_exposure_id = 1")
    con.execute("UPDATE drug_exposure SET drug_exposure_end_date = DATE '2000-01-01' "
                "WHERE drug_exposure_id = 2")
    con.execute("INSERT INTO person (person_id, gender_concept_id, year_of_birth) "
                "VALUES (99, 0, 1980)")  # a person with no rows at all
    con.execute("INSERT INTO observation (observation_id, person_id, observation_concept_id, "
                "observation_date, value_as_number) VALUES (999, 1, 3042932, DATE '2024-01-05', "
                "-3)")
    con.close()
    summary = tmp_path / "s.json"
    result = runner.invoke(app, ["cohort", "stage", "--omop", str(db), "--out",
                                 str(tmp_path / "r.parquet"), "--as-of", AS_OF,
                                 "--summary-json", str(summary), "--engine", engine])
    assert result.exit_code == 0, result.output
    facts = json.loads(summary.read_text())
    assert facts["engine"] == engine
    assert facts["excluded_rows"] == {"drug_exposure: negative days_supply": 1,
                                      "drug_exposure: end before start": 1,
                                      "observation: PHQ-9 value out of range": 1}
    assert facts["persons"] == 3
    assert facts["excluded_persons"]["no MDD diagnosis"] == 1


def test_report_refuses_a_foreign_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    result = runner.invoke(app, ["cohort", "report", "--results", str(bad), "--out",
                                 str(tmp_path / "rep")])
    assert result.exit_code == 2
    assert not (tmp_path / "rep").exists()
