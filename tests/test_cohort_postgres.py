"""`trdstage cohort stage --omop postgresql://...` against a real PostgreSQL server started by the
tests (tests/pg_server.py): the person-level results equal DuckDB's on the same synthetic data,
with ibis-style and OHDSI-DDL column types, in the default schema and in named schemas; the
results schema is written in one transaction and replaced on a re-run; bad input exits 2 with a
clear message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from omop_cases import make_cohort, other_gender_map, reference_rows
from pg_server import READER_PASSWORD, PgServer, find_bin_dir, load_tables
from trdstage.adapters.errors import InputError
from trdstage.adapters.omop import open_omop, redact_url, resolve_concepts
from trdstage.cli import app
from trdstage.cohort import run
from trdstage.cohort.engine import build_plan
from trdstage.cohort.omop_io import write_duckdb
from trdstage.cohort.synth import synth_tables
from trdstage.cohort.writer import OmopWriter
from trdstage.knowledge import load_policy

AS_OF = date(2026, 1, 1)
VOCABULARY = ("concept", "concept_ancestor", "drug_strength")
runner = CliRunner()


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
                    "/usr/lib/postgresql/*/bin: install the Debian package postgresql "
                    "(scripts/system-deps.sh does)")
    server = PgServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def synthetic(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The synthesiser's cohort in PostgreSQL (public schema, ibis column types) and DuckDB."""
    tables = synth_tables(2000, seed=11)
    db = pg.create_database("synth")
    load_tables(pg, db, tables)
    duck = write_duckdb(tmp_path_factory.mktemp("pg") / "cdm.duckdb", tables)
    return {"url": pg.url(db), "duckdb": str(duck)}


def _with_bad_rows(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """One drug row with a negative days supply, one ending before it starts, one PHQ-9 of -3."""
    out = dict(tables)
    drugs = tables["drug_exposure"].to_pylist()
    drugs[0]["days_supply"] = -30
    drugs[1]["drug_exposure_end_date"] = date(2000, 1, 1)
    out["drug_exposure"] = pa.Table.from_pylist(drugs, schema=tables["drug_exposure"].schema)
    obs = tables["observation"].to_pylist()
    obs.append({"observation_id": 10**6, "person_id": 1, "observation_concept_id": 3042932,
                "observation_date": date(2024, 1, 5), "value_as_number": -3.0})
    out["observation"] = pa.Table.from_pylist(obs, schema=tables["observation"].schema)
    return out


@pytest.fixture(scope="module")
def ohdsi(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Random histories (every class, ECT, rTMS, PHQ-9, ...) with bad rows, loaded with the OHDSI
    PostgreSQL DDL's types (INTEGER ids, NUMERIC values) into schemas `cdm` and `vocab`, read by a
    role with a password."""
    writer = OmopWriter(AS_OF, fill_days=30)
    for pid, patient in enumerate(make_cohort(20260101, 150), start=1):
        writer.add_patient(pid, patient)
    tables = _with_bad_rows(writer.tables())
    db = pg.create_database("ohdsi")
    load_tables(pg, db, {n: t for n, t in tables.items() if n not in VOCABULARY},
                schema="cdm", types="ohdsi")
    load_tables(pg, db, {n: t for n, t in tables.items() if n in VOCABULARY},
                schema="vocab", types="ohdsi")
    pg.sql(db, "CREATE SCHEMA results AUTHORIZATION reader")  # no CREATE on the database
    duck = write_duckdb(tmp_path_factory.mktemp("pg") / "ohdsi.duckdb", tables)
    url = pg.url(db, user=f"reader:{READER_PASSWORD}", query="schema=cdm,vocab")
    return {"url": url, "duckdb": str(duck)}


def _same_rows(got: pa.Table, want: pa.Table) -> None:
    """Every column of every person, with a readable first difference."""
    assert got.schema.remove_metadata() == want.schema.remove_metadata()
    g, w = got.to_pylist(), want.to_pylist()
    assert len(g) == len(w)
    for a, b in zip(g, w, strict=True):
        assert a == b, f"person {b['person_id']}"


def test_postgres_equals_duckdb_on_the_synthetic_cohort(synthetic: dict[str, Any]) -> None:
    policy = load_policy("claims")
    got, got_summary = run.stage_cohort(synthetic["url"], AS_OF, policy)
    want, want_summary = run.stage_cohort(synthetic["duckdb"], AS_OF, policy)
    assert want.num_rows > 1000
    _same_rows(got, want)
    for key in ("persons", "staged", "excluded_persons", "excluded_rows"):
        assert getattr(got_summary, key) == getattr(want_summary, key)


def test_ohdsi_types_in_named_schemas_with_a_password(ohdsi: dict[str, Any]) -> None:
    """INTEGER ids and NUMERIC quantities are cast as omop.yaml says; `?schema=cdm,vocab` finds
    the clinical tables in cdm and the vocabulary in vocab; bad rows are counted as on DuckDB."""
    source = open_omop(ohdsi["url"])
    assert READER_PASSWORD not in source.label
    assert source.tables["drug_exposure"].schema()["quantity"].is_float64()
    assert source.tables["concept_ancestor"].count().to_pyarrow().as_py() > 0
    for policy in ("claims", "default"):
        got, got_summary = run.stage_cohort(ohdsi["url"], AS_OF, load_policy(policy),
                                            source=source)
        want, want_summary = run.stage_cohort(ohdsi["duckdb"], AS_OF, load_policy(policy))
        _same_rows(got, want)
        assert got_summary.excluded_rows == want_summary.excluded_rows
        assert {k: v for k, v in got_summary.excluded_rows.items()
                if "after the as-of date" not in k} == {
            "drug_exposure: negative days_supply": 1, "drug_exposure: end before start": 1,
            "observation: PHQ-9 value out of range": 1}
    assert {r["thase_rush_stage"] for r in got.to_pylist()} >= {0, 1, 2}


def test_postgres_follows_the_given_spec_for_sex_and_age(ohdsi: dict[str, Any]) -> None:
    """`sex` and `age` are what `engine.assess`'s reference gives under the spec the run is
    given (here gender concepts that say the opposite of omop.yaml's), like every other
    column."""
    from trdstage.cohort.reference import normalise
    from trdstage.knowledge.omop_schema import load_omop_spec

    spec = other_gender_map(load_omop_spec())
    got, _ = run.stage_cohort(ohdsi["url"], AS_OF, load_policy("claims"), spec=spec)
    want = reference_rows(ohdsi["duckdb"], AS_OF, "claims", spec)
    rows = {r["person_id"]: normalise(r) for r in got.to_pylist()}
    assert rows == {pid: row for pid, row in want.items() if row is not None}
    assert {"female", "male"} <= {r["sex"] for r in rows.values()}
    assert all(r["age"] is not None for r in rows.values())


def test_materialised_plan_on_postgres(synthetic: dict[str, Any]) -> None:
    """The engine's `materialize` path (temporary tables through Table.cache()) also gives the
    same rows on PostgreSQL (and is several times faster there)."""
    source = open_omop(synthetic["url"])
    plan = build_plan(source, resolve_concepts(source), AS_OF, load_policy("claims"),
                      materialize=True)
    got = plan.persons.order_by("person_id").to_pyarrow()
    want, _ = run.stage_cohort(synthetic["duckdb"], AS_OF, load_policy("claims"))
    # (the run adds death_date and phq9_item9_positive to the engines' columns)
    _same_rows(got, want.drop_columns(["death_date", "phq9_item9_positive"]))


def _results(pg: PgServer, database: str) -> pa.Table:
    import ibis

    con = ibis.postgres.connect(host="127.0.0.1", port=pg.port, user="postgres",
                                database=database)
    try:
        return con.table(run.RESULTS_TABLE, database="results").order_by(
            "person_id").to_pyarrow()
    finally:
        con.disconnect()


def test_results_schema_written_in_one_transaction_and_replaced(
    pg: PgServer, synthetic: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = load_policy("claims")
    table, summary = run.stage_cohort(synthetic["url"], AS_OF, policy, results_schema="results")
    assert summary.output == "results.trdstage_cohort"
    _same_rows(_results(pg, "synth"), table)  # every column type round-trips
    earlier, _ = run.stage_cohort(synthetic["url"], date(2021, 6, 1), policy,
                                  results_schema="results")
    assert earlier.num_rows != table.num_rows
    _same_rows(_results(pg, "synth"), earlier)  # replaced, not appended

    def broken(_table: pa.Table) -> bytes:
        raise OSError("disk full while writing")

    monkeypatch.setattr(run, "_csv_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        run.stage_cohort(synthetic["url"], AS_OF, policy, results_schema="results")
    _same_rows(_results(pg, "synth"), earlier)  # the old table, untouched
    left = pg.sql("synth", "SELECT table_name FROM information_schema.tables "
                  "WHERE table_schema = 'results'")
    assert left == [(run.RESULTS_TABLE,)]


def test_cli_stage_on_postgres(pg: PgServer, ohdsi: dict[str, Any], tmp_path: Path) -> None:
    out, summary = tmp_path / "results.parquet", tmp_path / "summary.json"
    url = ohdsi["url"].replace("postgresql://", "postgres://")
    result = runner.invoke(app, ["cohort", "stage", "--omop", url, "--out", str(out),
                                 "--results-schema", "results", "--as-of", AS_OF.isoformat(),
                                 "--summary-json", str(summary)])
    assert result.exit_code == 0, result.output
    assert "persons staged" in result.output
    assert READER_PASSWORD not in result.output
    table = pq.read_table(out)
    facts = json.loads(summary.read_text())
    assert facts["persons"] == 150 and facts["staged"] == table.num_rows > 50
    _same_rows(_results(pg, "ohdsi"), table)


@pytest.fixture(scope="module")
def no_drugs(pg: PgServer) -> str:
    writer = OmopWriter(AS_OF)
    for pid, patient in enumerate(make_cohort(5, 5), start=1):
        writer.add_patient(pid, patient)
    db = pg.create_database("no_drugs")
    load_tables(pg, db, {n: t for n, t in writer.tables().items() if n != "drug_exposure"})
    return pg.url(db)


@pytest.mark.parametrize("case", ["missing table", "wrong password", "wrong port",
                                  "missing schema"])
def test_bad_postgres_input_exits_2(pg: PgServer, no_drugs: str, tmp_path: Path,
                                    case: str) -> None:
    port = pg.port
    url, expected = {
        "missing table": (no_drugs, "table drug_exposure: missing"),
        "wrong password": (f"postgresql://reader:not-{READER_PASSWORD}@127.0.0.1:{port}/synth",
                           'password authentication failed for user "reader"'),
        "wrong port": ("postgresql://postgres@127.0.0.1:1/synth", "cannot open the database"),
        "missing schema": (f"{no_drugs}?schema=cdm_nope", "schema cdm_nope: no such schema"),
    }[case]
    out = tmp_path / "results.parquet"
    result = runner.invoke(app, ["cohort", "stage", "--omop", url, "--out", str(out),
                                 "--as-of", AS_OF.isoformat()])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert expected in text
    assert "Traceback" not in text and READER_PASSWORD not in text
    assert not out.exists() and not list(tmp_path.iterdir())


def test_password_is_redacted_from_messages() -> None:
    assert redact_url("postgresql://u:p%40ss@h:5/db?schema=cdm") == \
        "postgresql://u:***@h:5/db?schema=cdm"
    assert redact_url("postgres://h/db") == "postgres://h/db"
    with pytest.raises(InputError) as caught:
        open_omop("postgresql://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(caught.value) and "u:***@127.0.0.1:1/db" in str(caught.value)


@pytest.fixture(scope="module")
def official(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Random histories loaded into tables created by OHDSI's official PostgreSQL DDL (NOT NULL
    dates and concept ids, INTEGER ids, NUMERIC values), and the same into a DuckDB file made
    by OHDSI's DuckDB DDL."""
    writer = OmopWriter(AS_OF, fill_days=30)
    for pid, patient in enumerate(make_cohort(20261202, 120), start=1):
        writer.add_patient(pid, patient)
    tables = writer.tables()
    db = pg.create_database("official")
    load_tables(pg, db, tables, schema="cdm", types="ddl")
    duck = write_duckdb(tmp_path_factory.mktemp("pg") / "official.duckdb", tables, official=True)
    return {"url": pg.url(db, query="schema=cdm"), "duckdb": str(duck)}


def test_official_ddl_stages_by_default_on_postgres(pg: PgServer,
                                                    official: dict[str, Any]) -> None:
    """The default engine on PostgreSQL (the expression) stages a CDM built with the official
    DDL (Ibis refuses a union of a NOT NULL column with a nullable one unless both are read as
    nullable) and gives the rows the DuckDB scan gives on the same data."""
    nullable = pg.sql("official", "SELECT is_nullable FROM information_schema.columns WHERE "
                      "table_schema = 'cdm' AND table_name = 'drug_exposure' "
                      "AND column_name = 'drug_exposure_start_date'")
    assert nullable == [("NO",)]
    for policy in ("claims", "default"):
        got, got_summary = run.stage_cohort(official["url"], AS_OF, load_policy(policy))
        want, want_summary = run.stage_cohort(official["duckdb"], AS_OF, load_policy(policy))
        assert got_summary.engine == "expression" and want_summary.engine == "scan"
        assert want.num_rows > 60
        _same_rows(got, want)
        assert got_summary.excluded_rows == want_summary.excluded_rows
