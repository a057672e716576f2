"""OMOP tables as Arrow: the schema from omop.yaml, and writing a whole database at once.

Both writers build the output beside its final place and rename it at the end, so a failure never
leaves a half-written database behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from trdstage.knowledge.omop_schema import OmopSpec, load_omop_spec

ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "date": pa.date32(),
    "string": pa.string(),
}


def arrow_schema(table: str, spec: OmopSpec | None = None) -> pa.Schema:
    spec = spec or load_omop_spec()
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in spec.tables[table].columns])


def to_arrow(table: str, columns: Mapping[str, Any], spec: OmopSpec | None = None) -> pa.Table:
    """Columns (numpy arrays, lists or Arrow arrays) -> a table with omop.yaml's schema; columns
    not given are null."""
    schema = arrow_schema(table, spec)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"{table}: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], type=field.type, from_pandas=True))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    return pa.concat_tables(list(tables))


def write_duckdb(path: str | Path, tables: Mapping[str, pa.Table],
                 official: bool = False) -> Path:
    """Write every table into a new DuckDB file at `path` (replacing it), atomically. With
    `official`, every table of the OMOP CDM 5.4 is first created by OHDSI's own DuckDB DDL (its
    columns, types and NOT NULL constraints; `cohort/cdm_ddl.py`) and the rows inserted into
    it; otherwise each table is created from its Arrow schema."""
    import duckdb

    from trdstage.cohort.cdm_ddl import ddl_text, to_official

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        con = duckdb.connect(str(tmp))
        try:
            if official:
                con.execute(ddl_text())
            for name, table in tables.items():
                con.register("_incoming", to_official(name, table) if official else table)
                if official:
                    con.execute(f'INSERT INTO "{name}" SELECT * FROM _incoming')  # noqa: S608
                else:
                    con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')  # noqa: S608
                con.unregister("_incoming")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        raise
    return path


def write_parquet_dir(path: str | Path, tables: Mapping[str, pa.Table],
                      official: bool = False) -> Path:
    """One Parquet file per table (`<dir>/<table>.parquet`), the folder replaced atomically;
    with `official`, each with the OMOP CDM 5.4 columns, types and NOT NULL marks."""
    from trdstage.cohort.cdm_ddl import to_official

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        for name, table in tables.items():
            pq.write_table(to_official(name, table) if official else table,
                           tmp / f"{name}.parquet")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


__all__ = ["arrow_schema", "concat", "to_arrow", "write_duckdb", "write_parquet_dir"]
