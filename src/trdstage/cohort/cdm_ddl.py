"""The official OMOP CDM 5.4 tables (OHDSI's DuckDB DDL, shipped in knowledge/data/ohdsi):
their columns, types and NOT NULL constraints, and Arrow tables brought to that shape.

Used by `trdstage cohort synth` (every table created by the DDL itself) and by the tests, which
build their databases as OHDSI's own tools and ETLs do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

import pyarrow as pa  # type: ignore[import-untyped]

DDL_FILE = "OMOPCDM_duckdb_5.4_ddl.sql"
SCHEMA_PLACEHOLDER = "@cdmDatabaseSchema."
# Values for NOT NULL columns a writer does not fill: 0 is OMOP's "no matching concept"; the
# validity dates of a vocabulary row without one are the CDM's open range.
VALID_DATES = {"valid_start_date": date(1970, 1, 1), "valid_end_date": date(2099, 12, 31)}


@dataclass(frozen=True)
class CdmColumn:
    name: str
    sql_type: str  # as the DDL writes it: integer, date, TIMESTAMP, NUMERIC, varchar(50), TEXT
    not_null: bool

    @property
    def arrow(self) -> pa.DataType:
        t = self.sql_type.lower()
        if t == "integer":
            return pa.int32()
        if t == "bigint":
            return pa.int64()
        if t == "numeric":
            return pa.float64()
        if t == "date":
            return pa.date32()
        if t == "timestamp":
            return pa.timestamp("us")
        return pa.string()


def ddl_text(schema: str = "") -> str:
    """The DuckDB DDL with its schema placeholder replaced (`schema.` or nothing)."""
    text = resources.files("trdstage.knowledge").joinpath("data", "ohdsi", DDL_FILE).read_text()
    return text.replace(SCHEMA_PLACEHOLDER, f"{schema}." if schema else "")


@cache
def cdm_tables() -> dict[str, tuple[CdmColumn, ...]]:
    """Table -> its columns in the DDL's order."""
    out: dict[str, tuple[CdmColumn, ...]] = {}
    for name, body in re.findall(r"CREATE TABLE \S*?(\w+) \((.*?)\);", ddl_text(), re.S):
        cols = re.findall(r"^\s*\"?(\w+)\"? (\w+(?:\(\d+\))?) (NOT NULL|NULL)", body, re.M)
        out[name] = tuple(CdmColumn(c, t, n == "NOT NULL") for c, t, n in cols)
    return out


def official_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow, nullable=not c.not_null)
                      for c in cdm_tables()[table]])


def to_official(table: str, data: pa.Table) -> pa.Table:
    """`data` with every column of the official table, in its order and type: columns not given
    are null, or (NOT NULL ones) 0 for integers and the open validity range for vocabulary dates.
    Columns the CDM does not have are an error (a writer's mistake, not the user's)."""
    columns = cdm_tables()[table]
    extra = set(data.column_names) - {c.name for c in columns}
    if extra:
        raise ValueError(f"{table}: not OMOP CDM 5.4 columns: {sorted(extra)}")
    n = data.num_rows
    arrays = []
    for col in columns:
        if col.name in data.column_names:
            arrays.append(data.column(col.name).cast(col.arrow))
        elif not col.not_null:
            arrays.append(pa.nulls(n, type=col.arrow))
        elif col.arrow == pa.int32():
            arrays.append(pa.array([0] * n, type=pa.int32()))
        elif col.name in VALID_DATES:
            arrays.append(pa.array([VALID_DATES[col.name]] * n, type=pa.date32()))
        else:
            raise ValueError(f"{table}.{col.name}: NOT NULL and not given")
    return pa.Table.from_arrays(arrays, schema=official_schema(table))


__all__ = ["CdmColumn", "cdm_tables", "ddl_text", "official_schema", "to_official"]
