"""The scan engine's inputs read through DuckDB's own API (`cohort/duckdb_native.py`) are those
read through Ibis (`open_omop` + `resolve_concepts` + `read_scan_inputs`): the same Concepts, the
same rows in the same order, the same errors, and no Ibis on the way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omop_cases import AS_OF, make_cohort, other_gender_map, reference_rows
from trdstage.adapters.errors import InputError
from trdstage.adapters.omop import formulary_ingredients, open_omop, resolve_concepts
from trdstage.cohort.duckdb_native import (
    ibis_type_name,
    open_duckdb,
    read_scan_inputs_duckdb,
    resolve_concepts_duckdb,
)
from trdstage.cohort.omop_io import to_arrow, write_duckdb, write_parquet_dir
from trdstage.cohort.scan_inputs import KEPT, LEFT_OUT, ScanInputs, read_scan_inputs
from trdstage.cohort.synth import synth_tables
from trdstage.cohort.writer import OmopWriter, write_patients
from trdstage.knowledge import load_policy
from trdstage.knowledge.omop_schema import OmopSpec, load_omop_spec

ROOT = Path(__file__).parents[1]
OTHER_AS_OF = date(2021, 6, 1)


def _other_spec() -> OmopSpec:
    """Other rules (periods end on end_date, not the day after) and other concept sets (an
    excluded listed concept, one code fewer, no descendants for psychosis)."""
    spec = load_omop_spec()
    sets = dict(spec.concept_sets)
    sets["mdd"] = sets["mdd"].model_copy(update={"exclude": [*sets["mdd"].exclude, 440383]})
    sets["ect"] = sets["ect"].model_copy(update={"codes": sets["ect"].codes[:1]})
    sets["psychosis"] = sets["psychosis"].model_copy(update={"descendants": False})
    other = spec.with_rules(end_date_inclusive=False, episode_washout_days=90)
    return other.model_copy(update={"concept_sets": sets})


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def _same_table(got: pa.Table | None, want: pa.Table | None, what: str,
                any_order: bool = False) -> None:
    if want is None or got is None:
        assert got is None and want is None, f"{what}: {got!r} vs {want!r}"
        return
    assert got.schema.equals(want.schema), f"{what}: {got.schema} vs {want.schema}"
    if any_order:
        got, want = _sorted(got), _sorted(want)
    if not got.equals(want):
        rows_got, rows_want = got.to_pylist(), want.to_pylist()
        assert len(rows_got) == len(rows_want), f"{what}: {len(rows_got)} vs {len(rows_want)}"
        first = next(i for i, (a, b) in enumerate(zip(rows_got, rows_want, strict=True))
                     if a != b)
        raise AssertionError(f"{what}: row {first}: {rows_got[first]} vs {rows_want[first]}")


def _unknown_dose_as_null(drugs: pa.Table) -> pa.Table:
    """An unknown dose is null (the Ibis reader) or NaN (the native one, which the scan then
    reads without a copy): the same for the scan."""
    dose = drugs.column("dose")
    known = pc.if_else(pc.is_nan(dose), pa.scalar(None, pa.float64()), dose)
    return drugs.set_column(drugs.schema.get_field_index("dose"), "dose", known)


def assert_same_inputs(got: ScanInputs, want: ScanInputs) -> None:
    _same_table(_unknown_dose_as_null(got.drugs), _unknown_dose_as_null(want.drugs), "drugs",
                any_order=True)
    _same_table(got.people, want.people, "people", any_order=True)
    assert list(got.diagnoses) == list(want.diagnoses)
    for name in want.diagnoses:
        _same_table(got.diagnoses[name], want.diagnoses[name], f"diagnoses {name}",
                    any_order=True)
    _same_table(got.readings, want.readings, "readings")
    assert list(got.procedures) == list(want.procedures)
    for name in want.procedures:
        _same_table(got.procedures[name], want.procedures[name], f"procedures {name}")


def compare(url: str | Path, as_ofs: list[date], policies: list[str],
            spec: OmopSpec | None = None) -> list[ScanInputs]:
    """Both paths on one database: equal Concepts, equal inputs for every as-of date and
    policy; returns the native inputs."""
    spec = spec or load_omop_spec()
    ibis_source = open_omop(url, spec)
    source = open_duckdb(url, spec)
    try:
        assert source.label == ibis_source.label
        assert source.missing_optional == ibis_source.missing_optional
        assert set(source.tables) == set(ibis_source.tables)
        want_concepts = resolve_concepts(ibis_source, spec)
        concepts = resolve_concepts_duckdb(source, spec)
        assert concepts == want_concepts
        out = []
        for as_of in as_ofs:
            for name in policies:
                policy = load_policy(name)
                want = read_scan_inputs(ibis_source.tables, want_concepts, as_of, policy,
                                        spec.rules)
                got = read_scan_inputs_duckdb(source, concepts, as_of, policy, spec.rules)
                assert_same_inputs(got, want)
                out.append(got)
        return out
    finally:
        source.close()


# --------------------------------------------------------------------------- equal rows


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "cdm.duckdb"
    write_duckdb(path, synth_tables(2000, seed=11))
    return path


def test_synthetic_database(synthetic: Path) -> None:
    inputs = compare(synthetic, [AS_OF, OTHER_AS_OF], ["claims", "default"])
    first = inputs[0]
    assert first.drugs.num_rows > 1000 and first.readings is not None
    assert first.readings.num_rows > 0
    assert all(t is not None and t.num_rows > 0 for t in first.procedures.values())
    assert _unknown_dose_as_null(first.drugs).column("dose").null_count < first.drugs.num_rows


def test_synthetic_database_other_spec(synthetic: Path) -> None:
    compare(synthetic, [AS_OF], ["claims"], _other_spec())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), fill=st.sampled_from([14, 30, 90]),
       policy=st.sampled_from(["claims", "default", "lifetime"]),
       as_of=st.sampled_from([AS_OF, OTHER_AS_OF]), other_spec=st.booleans())
def test_random_histories(tmp_path_factory: pytest.TempPathFactory, seed: int, fill: int,
                          policy: str, as_of: date, other_spec: bool) -> None:
    path = tmp_path_factory.mktemp("omop") / "cdm.duckdb"
    write_patients(path, make_cohort(seed, 25), AS_OF, fill_days=fill)
    compare(path, [as_of], [policy], _other_spec() if other_spec else None)


def test_staged_rows_follow_the_given_spec(tmp_path: Path) -> None:
    """The DuckDB default path (this reader, then the scan) gives every person `engine.assess`'s
    reference row under the spec it is given, `sex` and `age` included (gender concepts here
    that say the opposite of omop.yaml's)."""
    from trdstage.cohort.reference import normalise
    from trdstage.cohort.run import stage_cohort

    path = tmp_path / "cdm.duckdb"
    write_patients(path, make_cohort(17, 40), AS_OF)
    spec = other_gender_map(_other_spec())
    got, _ = stage_cohort(str(path), AS_OF, load_policy("claims"), spec=spec)
    want = reference_rows(path, AS_OF, "claims", spec)
    rows = {r["person_id"]: normalise(r) for r in got.to_pylist()}
    assert rows == {pid: row for pid, row in want.items() if row is not None}
    assert {"female", "male"} <= {r["sex"] for r in rows.values()} and len(rows) >= 10


def _writer_tables() -> dict[str, pa.Table]:
    writer = OmopWriter(AS_OF)
    for i, patient in enumerate(make_cohort(3, 12), start=1):
        writer.add_patient(i, patient)
    return writer.tables()


def _append(tables: dict[str, pa.Table], name: str, **columns: list[Any]) -> None:
    tables[name] = pa.concat_tables([tables[name], to_arrow(name, columns)])


def test_bad_and_odd_rows(tmp_path: Path) -> None:
    """Negative days_supply, end before start, PHQ-9 out of range, rows without a start or a
    concept, after the as-of date, strengths in other units (or none known), a drug concept
    mapped to two formulary agents, rows of a person without a person row."""
    tables = _writer_tables()
    product = int(tables["drug_exposure"].column("drug_concept_id")[0].as_py())
    ancestry = tables["concept_ancestor"].to_pylist()
    own = {r["ancestor_concept_id"] for r in ancestry if r["descendant_concept_id"] == product}
    other = next(i for i in formulary_ingredients() if i not in own)
    d = date(2024, 3, 1)
    _append(tables, "drug_exposure",
            drug_exposure_id=[9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008, 9009],
            person_id=[1, 1, 2, 2, 3, None, 4, 4, 4],
            drug_concept_id=[product, product, product, None, product, product, product,
                             product, 999],
            drug_exposure_start_date=[d, d, d, d, None, d, date(2027, 1, 1), d, d],
            drug_exposure_end_date=[d, date(2024, 2, 1), None, d, d, None, None, None, None],
            quantity=[30.0, 30.0, None, 10.0, 10.0, -5.0, 10.0, 10.0, 1.0],
            days_supply=[-3, 30, None, 10, 10, 10, 10, 0, 5])
    _append(tables, "concept_ancestor", ancestor_concept_id=[other],
            descendant_concept_id=[product])
    _append(tables, "drug_strength", drug_concept_id=[product, product],
            ingredient_concept_id=[other, other], amount_value=[0.5, 400.0],
            amount_unit_concept_id=[8504, 1])
    phq9 = load_omop_spec().concept_sets["phq9_total"].concepts[0]
    _append(tables, "observation", observation_id=[8001, 8002, 8003, 8004],
            person_id=[1, 1, 2, 2], observation_concept_id=[phq9] * 4,
            observation_date=[d, d, d, None], value_as_number=[30.0, -1.0, None, 5.0])
    path = write_duckdb(tmp_path / "odd.duckdb", tables)
    (got,) = compare(path, [AS_OF], ["claims"])
    drugs = got.drugs.to_pylist()
    assert {r["bad"] for r in drugs} == {KEPT, *LEFT_OUT}  # (negative supply, end before start)
    assert len({r["agent_index"] for r in drugs if r["drug_exposure_id"] == 9001}) == 2
    assert got.readings is not None
    assert {-1.0, 30.0} <= set(got.readings.column("r_value").to_pylist())


def test_parquet_folder_and_timestamps(tmp_path: Path) -> None:
    """A Parquet folder (one table as a folder of files) with TIMESTAMP dates, and a DuckDB
    file with TIMESTAMP and TIMESTAMPTZ dates, INTEGER ids, DECIMAL quantities, a column name in
    capitals and optional columns missing."""
    tables = _writer_tables()
    stamped = dict(tables)
    for name in ("drug_exposure", "observation"):
        t = stamped[name]
        for i, field in enumerate(t.schema):
            if pa.types.is_date32(field.type):
                t = t.set_column(i, field.name, t.column(i).cast(pa.timestamp("us")))
        stamped[name] = t
    folder = write_parquet_dir(tmp_path / "cdm", {n: t for n, t in stamped.items()
                                                  if n != "condition_occurrence"})
    nested = folder / "condition_occurrence"
    nested.mkdir()
    co = tables["condition_occurrence"]
    half = co.num_rows // 2
    pq.write_table(co.slice(0, half), nested / "part-0.parquet")
    pq.write_table(co.slice(half), nested / "part-1.parquet")
    compare(folder, [AS_OF, OTHER_AS_OF], ["claims"])

    path = write_duckdb(tmp_path / "stamped.duckdb", tables)
    con = duckdb.connect(str(path))
    for statement in (
        "ALTER TABLE drug_exposure ALTER drug_exposure_start_date TYPE TIMESTAMP",
        "ALTER TABLE drug_exposure ALTER drug_exposure_end_date TYPE TIMESTAMP_S",
        "ALTER TABLE condition_occurrence ALTER condition_start_date TYPE TIMESTAMPTZ",
        "ALTER TABLE procedure_occurrence ALTER procedure_date TYPE TIMESTAMP_NS",
        "ALTER TABLE person ALTER person_id TYPE INTEGER",
        "ALTER TABLE drug_exposure ALTER quantity TYPE DECIMAL(18, 3)",
        "ALTER TABLE drug_exposure ALTER days_supply TYPE BIGINT",
        'ALTER TABLE observation RENAME value_as_number TO "Value_As_Number"',
        "ALTER TABLE person DROP COLUMN race_concept_id",
        "ALTER TABLE drug_exposure DROP COLUMN drug_type_concept_id",
    ):
        con.execute(statement)
    con.close()
    compare(f"duckdb://{path}", [AS_OF], ["claims", "default"])


def test_missing_optional_tables(tmp_path: Path) -> None:
    tables = _writer_tables()
    for name in ("observation", "procedure_occurrence", "drug_strength", "concept"):
        kept = {n: t for n, t in tables.items() if n != name}
        compare(write_duckdb(tmp_path / f"no_{name}.duckdb", kept), [AS_OF], ["claims"])
    bare = {n: t for n, t in tables.items()
            if n in ("person", "drug_exposure", "condition_occurrence")}
    (got,) = compare(write_duckdb(tmp_path / "bare.duckdb", bare), [AS_OF], ["claims"])
    assert got.readings is None and got.procedures == {"ect": None, "rtms": None}


# --------------------------------------------------------------------------- the same errors


def _error(opener: Any, url: str | Path) -> InputError:
    with pytest.raises(InputError) as caught:
        opener(url)
    return caught.value


@pytest.fixture(scope="module")
def small_tables() -> dict[str, pa.Table]:
    return _writer_tables()


@pytest.mark.parametrize("statement", [
    "DROP TABLE condition_occurrence",
    "ALTER TABLE person DROP COLUMN year_of_birth",
    "ALTER TABLE person ALTER person_id TYPE VARCHAR",
    "ALTER TABLE drug_exposure ALTER quantity TYPE VARCHAR",
    "ALTER TABLE drug_exposure ALTER days_supply TYPE DOUBLE",
    "ALTER TABLE drug_exposure ALTER drug_exposure_start_date TYPE VARCHAR",
    "ALTER TABLE drug_exposure ALTER drug_concept_id TYPE DECIMAL(12, 0)",
    "ALTER TABLE drug_exposure ALTER drug_concept_id TYPE HUGEINT",
    "ALTER TABLE person ALTER gender_concept_id TYPE BOOLEAN USING false",
    "ALTER TABLE person ALTER year_of_birth TYPE DATE USING DATE '2000-01-01'",
    "ALTER TABLE concept ALTER concept_code TYPE INTEGER USING 1",
    "ALTER TABLE observation ALTER observation_date TYPE TIME USING TIME '10:00'",
    "ALTER TABLE person ALTER person_id TYPE FLOAT",
])
def test_same_errors(tmp_path: Path, small_tables: Mapping[str, pa.Table],
                     statement: str) -> None:
    path = write_duckdb(tmp_path / "bad.duckdb", small_tables)
    con = duckdb.connect(str(path))
    con.execute(statement)
    con.close()
    want = _error(open_omop, path)
    got = _error(open_duckdb, path)
    assert (got.where, got.message) == (want.where, want.message)


def test_same_error_for_a_not_null_column(tmp_path: Path,
                                          small_tables: Mapping[str, pa.Table]) -> None:
    path = write_duckdb(tmp_path / "bad.duckdb", small_tables)
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE person ALTER person_id TYPE VARCHAR")
    con.execute("ALTER TABLE person ALTER person_id SET NOT NULL")
    con.close()
    want, got = _error(open_omop, path), _error(open_duckdb, path)
    assert str(got) == str(want)
    assert "has type !string, expected int64" in str(got)


def test_same_errors_on_paths(tmp_path: Path, small_tables: Mapping[str, pa.Table]) -> None:
    for url in (tmp_path / "nowhere.duckdb", f"duckdb://{tmp_path}/nowhere.duckdb"):
        assert str(_error(open_duckdb, url)) == str(_error(open_omop, url))
    folder = write_parquet_dir(tmp_path / "cdm", {n: t for n, t in small_tables.items()
                                                  if n != "person"})
    assert str(_error(open_duckdb, folder)) == str(_error(open_omop, folder))
    assert "table person: missing" in str(_error(open_duckdb, folder))
    not_duckdb = tmp_path / "text.duckdb"
    not_duckdb.write_text("not a database\n")
    assert str(_error(open_duckdb, not_duckdb)) == str(_error(open_omop, not_duckdb))


def test_type_names_are_those_ibis_prints() -> None:
    from ibis.backends.sql.datatypes import DuckDBType  # type: ignore[import-untyped]

    for duck in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT",
                 "UTINYINT", "HUGEINT", "DOUBLE", "FLOAT", "DECIMAL(18,3)", "VARCHAR", "BOOLEAN",
                 "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
                 "TIMESTAMP_NS", "TIME", "INTERVAL", "BLOB", "UUID", "JSON", "INTEGER[]",
                 "VARCHAR[3]", "STRUCT(a INTEGER, b VARCHAR[])", "MAP(VARCHAR, DOUBLE)",
                 "ENUM('a', 'b')"):
        for nullable in (True, False):
            want = str(DuckDBType.from_string(duck, nullable=nullable))
            assert ibis_type_name(duck, nullable) == want, duck


# --------------------------------------------------------------------------- no Ibis


def test_no_ibis_on_the_way(tmp_path: Path, small_tables: Mapping[str, pa.Table]) -> None:
    """Opening, resolving and reading import neither Ibis nor pandas (which DuckDB's parameter
    binding and pyarrow's list conversion would pull in)."""
    path = write_duckdb(tmp_path / "cdm.duckdb", small_tables)
    script = textwrap.dedent(f"""
        import sys
        from datetime import date
        import trdstage.cohort.duckdb_native as dn
        from trdstage.knowledge import load_policy
        from trdstage.knowledge.omop_schema import load_omop_spec
        spec = load_omop_spec()
        source = dn.open_duckdb({str(path)!r}, spec)
        concepts = dn.resolve_concepts_duckdb(source, spec)
        inputs = dn.read_scan_inputs_duckdb(source, concepts, date(2026, 1, 1),
                                            load_policy("claims"), spec.rules)
        assert inputs.drugs.num_rows > 0
        print(sorted(m for m in ("ibis", "pandas") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
