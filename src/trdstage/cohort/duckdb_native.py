"""The scan engine's inputs read straight through DuckDB's Python API, without Ibis.

The same three steps as `adapters.omop.open_omop` + `resolve_concepts` and
`scan_inputs.read_scan_inputs`, for the two DuckDB sources (a DuckDB file, a folder of Parquet
files), with the same checks, messages and rows (tests/test_cohort_duckdb_native.py holds the two
paths together):

- `open_duckdb` opens the database, finds the OMOP tables as Ibis lists them, checks each column
  as `check_tables` does (same `InputError`s, the type named as Ibis names it) and creates one
  temporary view per table (`trdstage_<table>`) typed as `check_tables` types it. A missing
  optional table gets an empty typed view, so the queries below are fixed text; `has()` says
  whether the table was there;
- `resolve_concepts_duckdb` gives the `Concepts` of `resolve_concepts` in two small queries (one
  on `concept` for every code, one on `concept_ancestor` for every id) instead of one per code
  and per concept set;
- `scan_inputs_duckdb` runs the SQL of the Ibis row helpers of `engine.py` (`drug_rows`
  with day numbers, `diagnosis_rows`, `phq9_rows`, `procedure_rows`): a rule changed there must
  be changed here. It reads the drug rows a range of persons at a time, as the scan asks
  (`DrugRows`); `read_scan_inputs_duckdb` reads them all at once.

No text from the database or the caller goes into SQL: the identifiers written into it are
omop.yaml's (table, column and concept set names) and this module's own, and the values (the
as-of date, concept ids, codes, the drug map, unit factors) reach DuckDB as small temporary
tables read from CSV files (`_Lookups`: bound parameters and registered Arrow tables would
import pandas). Nothing here imports Ibis or pandas (a test checks it in a fresh process).
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import get_args

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from trdstage.adapters.errors import InputError
from trdstage.adapters.omop import (
    INGREDIENT_CONCEPT,
    Concepts,
    DrugConcept,
    add_named_ingredients,
    check_columns,
    concept_set_codes,
    formulary_ingredients,
    redact_url,
    route_restricted_ids,
    unmapped_ingredient_names,
)
from trdstage.cohort.row_audit import plausible_persons_sql
from trdstage.cohort.rules import BAD_END, BAD_SUPPLY, agent_names
from trdstage.cohort.scan_inputs import KEPT, LEFT_OUT, DrugRows, ScanInputs
from trdstage.domain import Policy, Scale
from trdstage.knowledge import Knowledge
from trdstage.knowledge.omop_schema import OmopSpec, Rules, SetName, TableSpec, load_omop_spec

VIEW_PREFIX = "trdstage_"
SET_NAMES: tuple[str, ...] = get_args(SetName)  # the concept sets omop.yaml may name
EPOCH = date(1970, 1, 1)
SQL_TYPES = {"int64": "BIGINT", "int32": "INTEGER", "float64": "DOUBLE", "date": "DATE",
             "string": "VARCHAR"}


# --------------------------------------------------------------------------- opening


@dataclass
class DuckSource:
    """A DuckDB connection and the OMOP tables found in it (checked against omop.yaml).

    `tables`: per table present, the SELECT that types it as `check_tables` does; each is also
    the temporary view `trdstage_<table>` (an empty one for a missing optional table)."""

    con: duckdb.DuckDBPyConnection
    label: str
    tables: dict[str, str]
    missing_optional: list[str] = field(default_factory=list)
    # the persons were checked (`row_audit.audit_duckdb`) and every one is staged: no person
    # filter is needed (saves a pass over the person table); otherwise it is applied
    persons_plausible: bool = False

    def has(self, name: str) -> bool:
        return name in self.tables

    def view(self, name: str) -> str:
        """The typed view of a table of omop.yaml (empty when an optional table is missing)."""
        return VIEW_PREFIX + name

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def open_duckdb(url: str | Path, spec: OmopSpec | None = None) -> DuckSource:
    """Open a DuckDB file (`x.duckdb`, `duckdb:///x.duckdb`; read-only) or a folder of Parquet
    files (`<dir>/<table>.parquet` or `<dir>/<table>/*.parquet`), as `open_omop` does."""
    text = str(url)
    label = text
    spec = spec or load_omop_spec()
    if text.startswith(("spark:", "spark-catalog:", "postgres://", "postgresql://")):
        raise InputError(redact_url(text), "not a DuckDB file or Parquet folder (open it with "
                         "adapters.omop.open_omop)")
    path = Path(text.removeprefix("duckdb://"))
    con: duckdb.DuckDBPyConnection | None = None
    try:
        if path.is_dir():
            con = _connect(":memory:", read_only=False)
            raw = _parquet_tables(con, path, list(spec.tables))
        elif path.is_file():
            con = _connect(str(path.absolute()), read_only=True)
            present = {str(r[0]) for r in con.execute(
                "SELECT DISTINCT table_name FROM information_schema.tables "
                "WHERE table_catalog IN (current_database(), 'temp') "
                "AND table_schema = current_schema()").fetchall()}
            raw = {n: _describe(con, n) for n in spec.tables if n in present}
        else:
            raise InputError(text, "no such DuckDB file or Parquet folder")
    except InputError:
        if con is not None:
            con.close()
        raise
    except Exception as exc:  # a driver's own error: name the database, keep the message
        if con is not None:
            con.close()
        message = " ".join(str(exc).split())
        raise InputError(label, f"cannot open the database: {message}") from exc
    try:
        tables, missing = _check(raw, label, spec)
        for name, tspec in spec.tables.items():
            select = tables.get(name) or _empty_select(tspec)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(VIEW_PREFIX + name)} AS {select}")
    except BaseException:
        con.close()
        raise
    return DuckSource(con=con, label=label, tables=tables, missing_optional=missing)


def _connect(database: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection set up as Ibis sets up its own (dates of TIMESTAMPTZ columns in UTC)."""
    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET python_enable_replacements = false")
    return con


Columns = list[tuple[str, str, bool]]  # (name, DuckDB type, nullable)


def _describe(con: duckdb.DuckDBPyConnection, name: str) -> Columns:
    rows = con.execute(f"DESCRIBE {_quote(name)}").fetchall()
    return [(str(r[0]), str(r[1]), r[2] == "YES") for r in rows]


def _parquet_tables(con: duckdb.DuckDBPyConnection, folder: Path,
                    wanted: list[str]) -> dict[str, Columns]:
    """`<table>.parquet` or `<table>/*.parquet`, as views named after the table."""
    raw: dict[str, Columns] = {}
    for name in wanted:
        single = folder / f"{name}.parquet"
        nested = folder / name
        if single.is_file():
            target = str(single)
        elif nested.is_dir() and any(nested.glob("*.parquet")):
            target = str(nested / "*.parquet")
        else:
            continue
        con.read_parquet(target).create_view(name, replace=True)
        raw[name] = _describe(con, name)
    return raw


def _check(raw: dict[str, Columns], label: str,
           spec: OmopSpec) -> tuple[dict[str, str], list[str]]:
    """`check_columns` (the rules `check_tables` applies through Ibis): the typed SELECT of each
    table, or the same InputError."""
    reads, missing_optional = check_columns(
        {name: {c: (_family(t), ibis_type_name(t, nullable)) for c, t, nullable in columns}
         for name, columns in raw.items()}, label, spec)
    out: dict[str, str] = {}
    for name, plan in reads.items():
        selected = []
        for read in plan:
            target = SQL_TYPES[read.type]
            if read.actual is None:
                selected.append(f"CAST(NULL AS {target}) AS {_quote(read.name)}")
                continue
            expr = _quote(read.name)  # DuckDB matches identifiers without regard to case
            if read.to_date:
                expr = f"CAST({expr} AS DATE)"
            elif read.cast:
                expr = f"CAST({expr} AS {target})"
            selected.append(f"{expr} AS {_quote(read.name)}")
        # every name in it is omop.yaml's (a fixed identifier): none comes from the database
        out[name] = f"SELECT {', '.join(selected)} FROM {_quote(name)}"  # noqa: S608
    return out, missing_optional


def _empty_select(tspec: TableSpec) -> str:
    columns = ", ".join(f"CAST(NULL AS {SQL_TYPES[c.type]}) AS {_quote(c.name)}"
                        for c in tspec.columns)
    return f"SELECT {columns} WHERE false"


# DuckDB type names (as DESCRIBE gives them) -> what Ibis makes of them: the family `check_columns`
# tests and the name its messages print.
_SCALARS = {
    "TINYINT": ("int", "int8"), "SMALLINT": ("int", "int16"), "INTEGER": ("int", "int32"),
    "BIGINT": ("int", "int64"), "UTINYINT": ("int", "uint8"), "USMALLINT": ("int", "uint16"),
    "UINTEGER": ("int", "uint32"), "UBIGINT": ("int", "uint64"),
    "HUGEINT": ("decimal", "decimal(38, 0)"), "FLOAT": ("float", "float32"),
    "DOUBLE": ("float", "float64"), "VARCHAR": ("string", "string"),
    "BOOLEAN": ("other", "boolean"), "DATE": ("date", "date"),
    "TIMESTAMP": ("timestamp", "timestamp(6)"),
    "TIMESTAMP WITH TIME ZONE": ("timestamp", "timestamp('UTC', 6)"),
    "TIMESTAMP_S": ("timestamp", "timestamp(0)"), "TIMESTAMP_MS": ("timestamp", "timestamp(3)"),
    "TIMESTAMP_NS": ("timestamp", "timestamp(9)"), "TIME": ("other", "time"),
    "TIME WITH TIME ZONE": ("other", "time"), "INTERVAL": ("other", "interval('us')"),
    "BLOB": ("other", "binary"), "UUID": ("other", "uuid"), "JSON": ("other", "json"),
    "NULL": ("null", "null"),
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_ARRAY = re.compile(r"(.*)\[(\d*)\]")


def _family(duck: str) -> str:
    if duck in _SCALARS:
        return _SCALARS[duck][0]
    if _DECIMAL.fullmatch(duck):
        return "decimal"
    if duck.startswith("ENUM("):
        return "string"
    return "other"


def _split_args(inner: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def ibis_type_name(duck: str, nullable: bool = True) -> str:
    """A DuckDB column type as Ibis prints it in `check_tables`' messages (`string`, `!int64`
    for NOT NULL, `timestamp(6)`, `decimal(18, 3)`, `array<int64>`, ...)."""
    return ("" if nullable else "!") + _type_name(duck)


def _type_name(duck: str) -> str:
    duck = duck.strip()
    if duck in _SCALARS:
        return _SCALARS[duck][1]
    if m := _DECIMAL.fullmatch(duck):
        return f"decimal({m.group(1)}, {m.group(2)})"
    if duck.startswith("ENUM("):
        return "string"
    if (m := _ARRAY.fullmatch(duck)) is not None:
        size = f", {m.group(2)}" if m.group(2) else ""
        return f"array<{_type_name(m.group(1))}{size}>"
    if duck.startswith("STRUCT(") and duck.endswith(")"):
        fields = []
        for part in _split_args(duck[7:-1]):
            fname, _, ftype = part.partition(" ")
            fields.append(f"{fname.strip(chr(34))}: {_type_name(ftype)}")
        return f"struct<{', '.join(fields)}>"
    if duck.startswith("MAP(") and duck.endswith(")"):
        return f"map<{', '.join(_type_name(p) for p in _split_args(duck[4:-1]))}>"
    return duck.lower()  # types Ibis does not know: it prints `unknown(...)`


# --------------------------------------------------------------------------- small lookups


class _Lookups:
    """Small tables (ids, codes, the drug map, unit factors, the query settings) as temporary
    tables, filled from CSV files written to a temporary folder and read by DuckDB.

    Not bound parameters nor registered Arrow tables: DuckDB's Python parameter binding and Arrow
    registration import pandas (a noticeable part of a run's start-up), as pyarrow does to build
    an array from a list. The values never enter the SQL text either."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.folder = Path(tempfile.mkdtemp(prefix="trdstage-lookups-"))
        self.tables: list[str] = []

    def add(self, name: str, columns: dict[str, str], rows: Iterable[Sequence[object]]) -> None:
        """A temporary table `name` (a fixed identifier) with DuckDB column types `columns` (name
        -> type, fixed identifiers) and these rows."""
        path = self.folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([_csv_value(v) for v in row] for row in rows)
        ddl = ", ".join(f"{_quote(c)} {t}" for c, t in columns.items())
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_quote(name)} ({ddl})")
        if name not in self.tables:
            self.tables.append(name)
        self.con.read_csv(str(path), header=True, columns=columns,
                          auto_detect=False).insert_into(name)
        path.unlink()

    def derive(self, name: str, sql: str) -> None:
        """A temporary table `name` (a fixed identifier) holding what `sql` (fixed text) gives."""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_quote(name)} AS {sql}")
        if name not in self.tables:
            self.tables.append(name)

    def __enter__(self) -> _Lookups:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """The tables dropped and the folder removed (once; later calls do nothing)."""
        tables, self.tables = self.tables, []
        try:
            for name in tables:
                self.con.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _csv_value(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest exact form: DuckDB reads back the same double
    return value


# --------------------------------------------------------------------------- concepts


def resolve_concepts_duckdb(source: DuckSource, spec: OmopSpec | None = None,
                            knowledge: Knowledge | None = None) -> Concepts:
    """`resolve_concepts` in two queries: every code of the concept sets at once, then every
    concept_ancestor row whose ancestor is a formulary ingredient or in a concept set."""
    spec = spec or load_omop_spec()
    by_ingredient = formulary_ingredients(knowledge)
    con = source.con
    names = sorted(unmapped_ingredient_names(knowledge))
    if names and source.has("concept"):
        with _Lookups(con) as lookups:
            lookups.add("trdstage_ingredient_names", {"name": "VARCHAR"}, [(n,) for n in names])
            lookups.add("trdstage_ingredient_class", {c: "VARCHAR" for c in INGREDIENT_CONCEPT},
                        [tuple(INGREDIENT_CONCEPT.values())])
            found = con.execute(
                "SELECT c.concept_id, c.concept_name FROM trdstage_concept AS c "
                "JOIN trdstage_ingredient_class AS k ON c.vocabulary_id = k.vocabulary_id "
                "AND c.concept_class_id = k.concept_class_id "
                "AND c.standard_concept = k.standard_concept "
                "WHERE lower(c.concept_name) IN (SELECT name FROM trdstage_ingredient_names)"
            ).fetchall()
        add_named_ingredients(by_ingredient, [(int(c), str(n)) for c, n in found], knowledge)
    drugs: dict[int, list[DrugConcept]] = {cid: list(v) for cid, v in by_ingredient.items()}
    codes: dict[tuple[str, str], list[int]] = {}
    wanted = {name: concept_set_codes(name, cs) for name, cs in spec.concept_sets.items()}
    if source.has("concept"):
        for pairs in wanted.values():
            for pair in pairs:
                codes[pair] = []
    with _Lookups(con) as lookups:
        if codes:
            lookups.add("trdstage_codes", {"vocabulary": "VARCHAR", "code": "VARCHAR"}, codes)
            for vocabulary, code, cid in con.execute(
                    "SELECT w.vocabulary, w.code, c.concept_id FROM trdstage_concept AS c "
                    "JOIN trdstage_codes AS w "
                    "ON c.vocabulary_id = w.vocabulary AND c.concept_code = w.code "
                    "WHERE c.concept_id IS NOT NULL").fetchall():
                codes[(vocabulary, code)].append(int(cid))

        # each concept set's ids before descendants: listed, then found by code
        start: dict[str, tuple[set[int], set[int]]] = {}
        for name, cs in spec.concept_sets.items():
            ids = set(cs.concepts)
            for pair in wanted[name]:
                ids.update(codes.get(pair, []))
            start[name] = (ids, set(cs.exclude))

        # (ancestor, descendant) rows in the table's order (the order resolve_concepts reads)
        ancestry: list[tuple[int, int]] = []
        if source.has("concept_ancestor"):
            asked = set(by_ingredient)
            for name, cs in spec.concept_sets.items():
                if cs.descendants:
                    asked |= start[name][0] | start[name][1]
            if asked:
                lookups.add("trdstage_ids", {"concept_id": "BIGINT"}, [(i,) for i in asked])
                ancestry = [(int(a), int(d)) for a, d in con.execute(
                    "SELECT ancestor_concept_id, descendant_concept_id "
                    "FROM trdstage_concept_ancestor "
                    "WHERE ancestor_concept_id IN (SELECT concept_id FROM trdstage_ids) "
                    "AND descendant_concept_id IS NOT NULL").fetchall()]

    for a, d in sorted((r for r in ancestry if r[0] in by_ingredient), key=lambda r: (r[1], r[0])):
        for dc in by_ingredient[a]:
            if dc not in drugs.setdefault(d, []):
                drugs[d].append(dc)
    sets: dict[str, set[int]] = {}
    for name, cs in spec.concept_sets.items():
        ids, excluded = set(start[name][0]), set(start[name][1])
        if cs.descendants and source.has("concept_ancestor") and (ids or excluded):
            asked_here = ids | excluded
            for a, d in ancestry:
                if a in asked_here:
                    # as resolve_concepts: `excluded` grows as it goes
                    (excluded if a in excluded else ids).add(d)
        sets[name] = ids - excluded
    units = {u.concept_id: u.factor for u in spec.units_to_mg}
    route_names: dict[int, str] = {}
    route_ids = route_restricted_ids(drugs, knowledge)
    if route_ids and source.has("concept"):
        with _Lookups(con) as lookups:
            lookups.add("trdstage_route_ids", {"concept_id": "BIGINT"},
                        [(i,) for i in route_ids])
            route_names = {int(c): str(n) for c, n in con.execute(
                "SELECT concept_id, concept_name FROM trdstage_concept "
                "WHERE concept_name IS NOT NULL AND (domain_id = 'Route' OR concept_id IN "
                "(SELECT concept_id FROM trdstage_route_ids))").fetchall()}
    return Concepts(drugs=drugs, sets=sets, unit_factor=units, route_names=route_names)


# --------------------------------------------------------------------------- the scan's rows

# The settings every query below reads (getvariable is folded to a constant when planned).
_SETTINGS_SQL = [
    "SET VARIABLE trdstage_as_of = (SELECT as_of FROM trdstage_settings)",
    "SET VARIABLE trdstage_as_of_day = (SELECT as_of_day FROM trdstage_settings)",
    "SET VARIABLE trdstage_end_add = (SELECT end_add FROM trdstage_settings)",
]

# Per drug concept and formulary agent: the agent, whether it is an antidepressant, and the
# milligrams per unit from drug_strength (NULL when unknown). Built once per run: the strength
# rows are grouped once, not at every range's read (in a full vocabulary drug_strength has
# millions of rows).
_DRUG_LOOKUP_SQL = """
WITH strength AS (
    SELECT s.drug_concept_id, s.ingredient_concept_id, MAX(s.amount_value * u.factor) AS mg
    FROM trdstage_drug_strength AS s
    JOIN trdstage_unit_factor AS u ON s.amount_unit_concept_id = u.amount_unit_concept_id
    WHERE s.amount_value IS NOT NULL
      AND s.drug_concept_id IN (SELECT drug_concept_id FROM trdstage_drug_map)
    GROUP BY s.drug_concept_id, s.ingredient_concept_id
)
SELECT m.drug_concept_id, m.agent_index, m.is_ad, st.mg
FROM trdstage_drug_map AS m
LEFT JOIN strength AS st
    ON m.drug_concept_id = st.drug_concept_id
    AND m.ingredient_concept_id = st.ingredient_concept_id
"""

# drug_rows(..., day_numbers=True): drug_exposure rows of formulary agents up to the as-of date
# (one per agent of the drug concept), period [start, end) in days since 1970 clipped to the
# as-of date, the daily dose from drug_strength (an empty view when the table is missing: every
# dose unknown, as without it; unknown is NaN), why the row is left out (`bad`: a code of
# scan_inputs.LEFT_OUT: one column rather than two flags, less for DuckDB to compute);
# in any order (the scan sorts them itself). {persons}: which persons' rows (one of the three
# conditions below; the range one is folded to constants when planned, so DuckDB skips the row
# groups outside it).
_DRUGS_SQL = """
WITH rx AS (
    SELECT de.person_id, de.drug_exposure_id, de.quantity, de.days_supply,
           de.drug_exposure_start_date AS start_date, de.drug_exposure_end_date AS end_date,
           de.drug_exposure_start_date - DATE '1970-01-01' AS start_day,
           m.agent_index, m.is_ad, m.mg
    FROM trdstage_drug_exposure AS de
    JOIN trdstage_drug_lookup AS m ON de.drug_concept_id = m.drug_concept_id
    WHERE de.drug_exposure_start_date IS NOT NULL AND de.drug_concept_id IS NOT NULL
      AND de.drug_exposure_start_date <= getvariable('trdstage_as_of')
      AND {persons}
)
SELECT
    rx.person_id,
    rx.drug_exposure_id,
    rx.agent_index,
    rx.is_ad,
    CAST(rx.start_day AS INTEGER) AS start,
    CAST(LEAST(COALESCE((rx.end_date - DATE '1970-01-01') + getvariable('trdstage_end_add'),
                        rx.start_day + rx.days_supply, rx.start_day + 1),
               getvariable('trdstage_as_of_day')) AS INTEGER) AS "end",
    CASE WHEN rx.quantity IS NOT NULL AND rx.days_supply IS NOT NULL AND rx.days_supply > 0
              AND rx.quantity > 0 AND NOT isnan(rx.quantity) AND rx.mg IS NOT NULL
         THEN rx.mg * rx.quantity / CAST(rx.days_supply AS DOUBLE)
         ELSE CAST('NaN' AS DOUBLE) END AS dose,  -- NaN, not NULL: read without a copy
    CAST(CASE WHEN rx.days_supply < 0 THEN {negative_supply}
              WHEN rx.end_date < rx.start_date THEN {end_before_start}
              ELSE {kept} END AS TINYINT) AS bad  -- (a NULL comparison is not true)
FROM rx
"""

_CODES = {reason: code for code, (_, reason) in LEFT_OUT.items()}
_DRUGS_SQL = _DRUGS_SQL.replace("{negative_supply}", str(_CODES[BAD_SUPPLY])).replace(
    "{end_before_start}", str(_CODES[BAD_END])).replace("{kept}", str(KEPT))

_EVERY_PERSON = "true"
_IN_RANGE = ("de.person_id BETWEEN getvariable('trdstage_first') "
             "AND getvariable('trdstage_last')")
_NO_PERSON = "de.person_id IS NULL"
_RANGE_SQL = [
    "SET VARIABLE trdstage_first = (SELECT first FROM trdstage_persons)",
    "SET VARIABLE trdstage_last = (SELECT last FROM trdstage_persons)",
]

_PEOPLE_SQL = "SELECT person_id, gender_concept_id, year_of_birth FROM trdstage_person"


# diagnosis_rows, phq9_rows, procedure_rows. `trdstage_concept_sets` has one row per concept id
# and one boolean column per concept set of omop.yaml (its name: a fixed identifier).
def _diagnoses_sql(name: str) -> str:
    return f"""
SELECT person_id, condition_start_date AS d
FROM trdstage_condition_occurrence
WHERE condition_start_date IS NOT NULL
  AND condition_start_date <= getvariable('trdstage_as_of')
  AND condition_concept_id IN (SELECT concept_id FROM trdstage_concept_sets WHERE {_quote(name)})
"""  # noqa: S608 - `name` is a concept set of omop.yaml


def _readings_sql(name: str) -> str:
    return f"""
SELECT person_id, observation_date AS r_date, observation_id AS r_id, value_as_number AS r_value
FROM trdstage_observation
WHERE observation_concept_id IN (SELECT concept_id FROM trdstage_concept_sets WHERE {_quote(name)})
  AND observation_date IS NOT NULL AND observation_date <= getvariable('trdstage_as_of')
  AND value_as_number IS NOT NULL
ORDER BY person_id ASC NULLS LAST, r_date ASC NULLS LAST, r_id ASC NULLS LAST
"""  # noqa: S608 - `name` is a concept set of omop.yaml


def _procedures_sql(name: str) -> str:
    return f"""
SELECT person_id, procedure_date AS s
FROM trdstage_procedure_occurrence
WHERE procedure_concept_id IN (SELECT concept_id FROM trdstage_concept_sets WHERE {_quote(name)})
  AND procedure_date IS NOT NULL AND procedure_date <= getvariable('trdstage_as_of')
ORDER BY person_id ASC NULLS LAST, s ASC NULLS LAST
"""  # noqa: S608 - `name` is a concept set of omop.yaml


def drug_map_rows(concepts: Concepts) -> list[tuple[int, int, int, bool]]:
    """`engine.drug_map_table`: per drug concept, one row per formulary agent
    (drug_concept_id, agent_index, ingredient_concept_id, is_ad)."""
    index = {name: i for i, name in enumerate(agent_names(concepts))}
    return [(cid, index[dc.agent], dc.ingredient_concept_id, dc.role == "antidepressant")
            for cid, agents in concepts.drugs.items() for dc in agents]


class _DuckDrugRows:
    """`DrugRows` on the connection of `scan_inputs_duckdb` (its lookups in place)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lookups: _Lookups,
                 on_done: Callable[[], None] | None = None) -> None:
        self.con = con
        self.lookups = lookups
        self.on_done = on_done

    def between(self, first: int, last: int) -> pa.Table:
        self.lookups.add("trdstage_persons", {"first": "BIGINT", "last": "BIGINT"},
                         [(int(first), int(last))])
        for statement in _RANGE_SQL:
            self.con.execute(statement)
        return _arrow(self.con, _DRUGS_SQL.format(persons=_IN_RANGE))

    def without_person(self) -> pa.Table:
        return _arrow(self.con, _DRUGS_SQL.format(persons=_NO_PERSON))

    def every(self) -> pa.Table:
        return _arrow(self.con, _DRUGS_SQL.format(persons=_EVERY_PERSON))

    def done(self) -> None:
        self.lookups.close()
        if self.on_done is not None:
            self.on_done()


def _arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    # a relation, not execute(): DuckDB then builds the Arrow batches in parallel
    return con.sql(sql).to_arrow_table()


@contextmanager
def scan_inputs_duckdb(source: DuckSource, concepts: Concepts, as_of: date, policy: Policy,
                       rules: Rules,
                       on_done: Callable[[], None] | None = None) -> Iterator[ScanInputs]:
    """The rows `scan_inputs.read_scan_inputs` reads through Ibis, in plain DuckDB SQL; the drug
    rows as a `DrugRows` that reads them while the scan stages (a range of persons at a time)
    until the block ends or its `done()`, which then calls `on_done` (the database is no longer
    needed: the caller may close it)."""
    con = source.con
    with _Lookups(con) as lookups:
        lookups.add("trdstage_settings", {"as_of": "DATE", "as_of_day": "BIGINT",
                                          "end_add": "BIGINT"},
                    [(as_of, (as_of - EPOCH).days, 1 if rules.end_date_inclusive else 0)])
        lookups.add("trdstage_drug_map", {"drug_concept_id": "BIGINT", "agent_index": "INTEGER",
                                          "ingredient_concept_id": "BIGINT",
                                          "is_ad": "BOOLEAN"}, drug_map_rows(concepts))
        lookups.add("trdstage_unit_factor", {"amount_unit_concept_id": "BIGINT",
                                             "factor": "DOUBLE"},
                    list(concepts.unit_factor.items()))
        lookups.derive("trdstage_drug_lookup", _DRUG_LOOKUP_SQL)
        sets = {name: concepts.sets.get(name, set()) for name in SET_NAMES}
        lookups.add("trdstage_concept_sets",
                    {"concept_id": "BIGINT", **dict.fromkeys(sets, "BOOLEAN")},
                    [(cid, *(cid in ids for ids in sets.values()))
                     for cid in sorted(set().union(*sets.values()))])
        for statement in _SETTINGS_SQL:
            con.execute(statement)
        people = _arrow(con, _PEOPLE_SQL if source.persons_plausible
                        else plausible_persons_sql(_PEOPLE_SQL, as_of, rules))
        diagnoses = {name: _arrow(con, _diagnoses_sql(name))
                     for name in ("mdd", "bipolar", "psychosis")}
        readings = None
        if source.has("observation") and concepts.sets.get("phq9_total") \
                and Scale.phq9 in policy.outcome_scale_priority:
            readings = _arrow(con, _readings_sql("phq9_total"))
        procedures: dict[str, pa.Table | None] = {}
        for name in ("ect", "rtms"):
            wanted = source.has("procedure_occurrence") and bool(concepts.sets.get(name))
            procedures[name] = _arrow(con, _procedures_sql(name)) if wanted else None
        drugs: DrugRows = _DuckDrugRows(con, lookups, on_done)
        yield ScanInputs(drugs=drugs, people=people, diagnoses=diagnoses, readings=readings,
                         procedures=procedures)


def read_scan_inputs_duckdb(source: DuckSource, concepts: Concepts, as_of: date,
                            policy: Policy, rules: Rules) -> ScanInputs:
    """`scan_inputs_duckdb` with every drug row read at once (a table)."""
    with scan_inputs_duckdb(source, concepts, as_of, policy, rules) as inputs:
        assert isinstance(inputs.drugs, _DuckDrugRows)  # noqa: S101 - built just above
        return replace(inputs, drugs=inputs.drugs.every())


__all__ = ["DuckSource", "drug_map_rows", "ibis_type_name", "open_duckdb",
           "read_scan_inputs_duckdb", "resolve_concepts_duckdb", "scan_inputs_duckdb"]
