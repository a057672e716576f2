"""Running a cohort: open, check, resolve, stage, write (whole or not at all), summarise."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from trdstage.adapters.errors import InputError
from trdstage.adapters.omop import Concepts, OmopSource, open_omop, resolve_concepts
from trdstage.cohort.row_audit import (
    audit_duckdb,
    audit_ibis,
    deaths_duckdb,
    deaths_ibis,
    item9_duckdb,
    item9_ibis,
    with_dates,
)
from trdstage.cohort.rules import check_policy
from trdstage.cohort.scan import OUTPUT_SCHEMA, stage_scan
from trdstage.domain import Policy
from trdstage.knowledge.omop_schema import OmopSpec, load_omop_spec

RESULTS_TABLE = "trdstage_cohort"
# the engines' columns, and the two dates the run adds (`row_audit.with_dates`)
RESULTS_SCHEMA = OUTPUT_SCHEMA.append(pa.field("death_date", pa.date32())).append(
    pa.field("phq9_item9_positive", pa.date32()))
# Parquet column statistics (min and max per row group) only where a reader skips row groups by
# them: the person. On every other column they cost writing time and skip nothing: each row
# group holds a range of persons, with every stage in it.
STATISTICS_COLUMNS = ["person_id"]
# Columns written without a dictionary: one value per row (the dictionary grows until the writer
# gives up on it, in every row group): less writing time and a smaller file.
PLAIN_COLUMNS = ["person_id"]
ENGINES = ("auto", "scan", "expression")
NOT_DUCKDB = ("postgres://", "postgresql://", "spark:", "spark-catalog:")
Step = Callable[[str], None]


@dataclass
class Summary:
    persons: int
    staged: int
    excluded_persons: dict[str, int]
    excluded_rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    output: str = ""
    engine: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"persons": self.persons, "staged": self.staged,
                "excluded_persons": self.excluded_persons,
                "excluded_rows": self.excluded_rows, "seconds": self.seconds,
                "output": self.output, "engine": self.engine, "warnings": self.warnings}


def write_parquet_atomic(path: str | Path, table: pa.Table) -> None:
    with parquet_writer_atomic(path, table.schema) as write:
        write(table)


@contextmanager
def parquet_writer_atomic(path: str | Path,
                          schema: pa.Schema) -> Iterator[Callable[[pa.Table], None]]:
    """A function that appends tables (of `schema`, one row group or more each) to a Parquet
    file at `path`: written to a temporary file beside it and moved into place when the block
    ends without error; on an error it is removed and `path` is left as it was."""
    path = Path(path)
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    writer = None
    try:
        statistics = [c for c in STATISTICS_COLUMNS if c in schema.names]
        dictionary = [c for c in schema.names if c not in PLAIN_COLUMNS]
        writer = pq.ParquetWriter(tmp, schema, write_statistics=statistics or False,
                                  use_dictionary=dictionary or False)
        yield writer.write_table
        writer.close()
        writer = None
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            with suppress(Exception):
                writer.close()
        Path(tmp).unlink(missing_ok=True)
        for folder in made:  # the folders made for it, if nothing else went there meanwhile
            with suppress(OSError):
                folder.rmdir()
        raise


def _write_schema(source: OmopSource, url: str, schema: str, table: pa.Table) -> str:
    """The results as <schema>.trdstage_cohort in the source database, in one statement."""
    _check_schema_name(schema)
    name = getattr(source.con, "name", "")
    if name == "duckdb":
        source.con.disconnect()
        _write_duckdb(url, schema, table)
    elif name == "postgres":
        _write_postgres(source.con.con, schema, table)
    else:
        source.con.create_database(schema, force=True)
        source.con.create_table(RESULTS_TABLE, table, database=schema, overwrite=True)
    return f"{schema}.{RESULTS_TABLE}"


def _check_schema_name(schema: str) -> None:
    if not schema.replace("_", "").isalnum():
        raise InputError("--results-schema", f"{schema!r} is not a plain identifier")


def _write_duckdb(url: str, schema: str, table: pa.Table) -> str:
    """The results as <schema>.trdstage_cohort in the DuckDB file, in one transaction."""
    import duckdb

    _check_schema_name(schema)
    path = str(url).removeprefix("duckdb://")
    if not Path(path).is_file():
        raise InputError("--results-schema", "needs a DuckDB file (not a Parquet folder)")
    con = duckdb.connect(path)
    try:
        con.register("_results", table)
        con.execute("BEGIN")
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.execute(f'CREATE OR REPLACE TABLE "{schema}"."{RESULTS_TABLE}" AS '  # noqa: S608
                    "SELECT * FROM _results")
        con.execute("COMMIT")
    finally:
        con.close()
    return f"{schema}.{RESULTS_TABLE}"


def _write_postgres(con: Any, schema: str, table: pa.Table) -> None:
    """One transaction on the source's psycopg connection: the schema if missing, a new table
    filled by COPY (CSV written by Arrow, no row-by-row Python), the old table dropped and the new
    one renamed. PostgreSQL DDL is transactional: readers see the old table or the new one, and a
    failure anywhere leaves the old one untouched."""
    import ibis  # type: ignore[import-untyped]

    columns = ", ".join(c.sql("postgres") for c in
                        ibis.Schema.from_pyarrow(table.schema).to_sqlglot_column_defs("postgres"))
    new = f"{RESULTS_TABLE}__new"
    with con.transaction(), con.cursor() as cur:
        # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists:
        # ask first, so a role that owns only its results schema can write there.
        if cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() \
                is None:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        cur.execute(f'DROP TABLE IF EXISTS "{schema}"."{new}"')
        cur.execute(f'CREATE TABLE "{schema}"."{new}" ({columns})')
        with cur.copy(f'COPY "{schema}"."{new}" FROM STDIN (FORMAT csv, HEADER true)') as copy:
            copy.write(_csv_bytes(table))
        cur.execute(f'DROP TABLE IF EXISTS "{schema}"."{RESULTS_TABLE}"')
        cur.execute(f'ALTER TABLE "{schema}"."{new}" RENAME TO "{RESULTS_TABLE}"')


def _csv_bytes(table: pa.Table) -> bytes:
    """CSV as PostgreSQL's COPY reads it: a null is an empty unquoted field, strings quoted."""
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return bytes(sink.getvalue().to_pybytes())


class _Closer:
    """Closes the DuckDB file on a thread (DuckDB releases the GIL while it closes) once
    its rows are read: while the scan stages its last persons and the results are written.
    Joined before a writer opens the file (--results-schema) and before returning."""

    def __init__(self, duck: Any) -> None:
        self.duck = duck
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None and self.duck is not None:
            self.thread = threading.Thread(target=self.duck.close, name="trdstage-close")
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def now(self) -> None:
        """Closed before this returns (on an error)."""
        self.start()
        self.join()


def _count(expr: Any) -> int:
    return int(expr.to_pyarrow().as_py()) if hasattr(expr, "to_pyarrow") else int(expr)


def _stage_expression(source: OmopSource, concepts: Concepts, as_of: date, policy: Policy,
                      spec: OmopSpec) -> tuple[pa.Table, dict[str, int], int, int]:
    """The in-database engine: the person table, row exclusions, persons, persons with MDD."""
    from trdstage.cohort.engine import build_plan

    plan = build_plan(source, concepts, as_of, policy, spec)
    table = plan.persons.order_by("person_id").to_pyarrow()
    excl_rows = {r["reason"]: int(r["n"])
                 for r in plan.exclusions.to_pyarrow().to_pylist() if r["n"]}
    from trdstage.cohort.row_audit import plausible_persons_ibis

    person = plausible_persons_ibis(source.tables["person"], as_of, spec.rules)
    n_person = _count(person.count())
    mdd_ids = sorted(concepts.sets.get("mdd", set()))
    co = source.tables["condition_occurrence"]
    with_mdd = _count(co.filter(co.condition_concept_id.isin(mdd_ids)
                                & (co.condition_start_date <= as_of)).semi_join(
        person, "person_id").person_id.nunique()) if mdd_ids else 0
    return table, excl_rows, n_person, with_mdd


def stage_cohort(
    url: str,
    as_of: date,
    policy: Policy,
    out: str | Path | None = None,
    results_schema: str | None = None,
    source: OmopSource | None = None,
    spec: OmopSpec | None = None,
    step: Step | None = None,
    engine: str = "auto",
    batches: int | None = None,
) -> tuple[pa.Table, Summary]:
    """Stage every person; write the results to `out` (Parquet) and/or `results_schema`.

    `engine`: `expression` runs the whole staging inside the database (one Ibis expression:
    PostgreSQL, Spark); `scan` reads each table once and runs the sequential rules as one
    compiled pass on this machine (`cohort/scan.py`, the faster on DuckDB, docs/benchmarks.md);
    `auto` (default) takes `scan` on DuckDB and `expression` elsewhere. Both give the same
    table (tests/test_cohort_equivalence.py). `batches`: the scan's ranges of persons
    (`scan.stage_scan`; default by the number of persons)."""
    return _stage_cohort(url, as_of, policy, out, results_schema, source, spec, step, engine,
                         batches)


def _stage_cohort(url: str, as_of: date, policy: Policy, out: str | Path | None,
                  results_schema: str | None, source: OmopSource | None, spec: OmopSpec | None,
                  step: Step | None, engine: str,
                  batches: int | None) -> tuple[pa.Table, Summary]:
    if engine not in ENGINES:
        raise InputError("--engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
    if batches is not None and batches < 1:
        raise InputError("--batches", f"{batches} is not a number of batches (1 or more)")
    spec = spec or load_omop_spec()
    check_policy(policy)
    on_duckdb = not str(url).startswith(NOT_DUCKDB)
    native = source is None and on_duckdb and engine in ("auto", "scan")
    say = step or (lambda _msg: None)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    say("opening and checking the OMOP tables")
    duck: Any = None
    opened: OmopSource | None = None
    if native:
        # DuckDB's own SQL, no Ibis: the single-machine default starts in a fraction of the time
        from trdstage.cohort.duckdb_native import (
            open_duckdb,
            resolve_concepts_duckdb,
            scan_inputs_duckdb,
        )

        duck = open_duckdb(url, spec)
        label = duck.label
        clock["open"] = time.perf_counter() - t0
        say("resolving concepts (ingredients, concept sets)")
        concepts = resolve_concepts_duckdb(duck, spec)
        audit = audit_duckdb(duck, as_of, spec.rules, sorted(concepts.sets["phq9_total"]))
        deaths = deaths_duckdb(duck, as_of)
        item9 = item9_duckdb(duck, sorted(concepts.sets.get("phq9_item9", ())), as_of)
    else:
        opened = source or open_omop(url, spec)
        label = opened.label
        clock["open"] = time.perf_counter() - t0
        say("resolving concepts (ingredients, concept sets)")
        concepts = resolve_concepts(opened, spec)
        audit = audit_ibis(opened.tables, as_of, spec.rules, sorted(concepts.sets["phq9_total"]))
        deaths = deaths_ibis(opened.tables, as_of)
        item9 = item9_ibis(opened.tables, sorted(concepts.sets.get("phq9_item9", ())), as_of)
    clock["concepts"] = time.perf_counter() - t0 - clock["open"]
    say("staging every person")
    t1 = time.perf_counter()
    if engine == "auto":
        engine = "scan" if native or getattr(opened and opened.con, "name", "") == "duckdb" \
            else "expression"
    metadata = {"trdstage_as_of": as_of.isoformat(), "trdstage_policy": policy.name}
    closer = _Closer(duck)
    with ExitStack() as parquet:
        # the scan hands over its table a range of persons at a time: each part is written
        # while the next are staged (to a temporary file, moved into place at the end)
        write_part = None if out is None or engine != "scan" else parquet.enter_context(
            parquet_writer_atomic(out, RESULTS_SCHEMA.with_metadata(metadata)))
        unwritten: list[Exception] = []

        def on_table(part: pa.Table) -> None:
            assert write_part is not None  # noqa: S101 - passed only with a writer
            try:
                write_part(with_dates(part, deaths, item9))
            except Exception as exc:
                unwritten.append(exc)
                raise

        try:
            if engine == "scan":
                say("reading the rows (one pass per table)")
                on = None if write_part is None else on_table
                if opened is None:
                    with scan_inputs_duckdb(duck, concepts, as_of, policy, spec.rules,
                                            on_done=closer.start) as inputs:
                        clock["read"] = time.perf_counter() - t1
                        scanned = stage_scan(inputs, concepts, as_of, policy, spec, step=say,
                                             batches=batches, on_table=on)
                else:
                    scanned = stage_scan(opened, concepts, as_of, policy, spec, step=say,
                                         batches=batches, on_table=on)
                clock.update({f"scan_{part}": v for part, v in scanned.seconds.items()
                              if part != "read" or opened is not None})
                table, excl_rows = scanned.persons, scanned.excluded_rows
                n_person, with_mdd = scanned.n_person, scanned.with_mdd
            elif opened is not None:
                table, excl_rows, n_person, with_mdd = _stage_expression(opened, concepts,
                                                                         as_of, policy, spec)
        except InputError:
            closer.now()
            raise
        except Exception as exc:
            closer.now()
            if unwritten:  # the disk, not the database
                raise InputError(str(out), f"could not be written: {unwritten[0]}") from exc
            raise InputError(label, f"the database could not be staged: {exc}") from exc
        closer.start()
        clock["stage"] = time.perf_counter() - t1
        table = with_dates(table, deaths, item9).replace_schema_metadata(metadata)
        staged = table.num_rows
        excluded: dict[str, int] = {k: v for k, v in audit.persons.items() if v}
        if spec.rules.require_mdd_diagnosis:
            excluded["no MDD diagnosis"] = n_person - with_mdd
            excluded["MDD diagnosis but no assessable episode"] = max(0, with_mdd - staged)
        else:
            excluded["no antidepressant and no MDD diagnosis"] = n_person - staged
        t2 = time.perf_counter()
        written = []
        try:
            if out is not None:
                say(f"writing {out}")
                if write_part is None:
                    write_parquet_atomic(out, table)
                else:
                    parquet.close()  # every part written: the file moves into place
                written.append(str(out))
        finally:
            closer.join()
    if results_schema:
        say(f"writing {results_schema}.{RESULTS_TABLE}")
        if opened is None:
            written.append(_write_duckdb(url, results_schema, table))
        else:
            written.append(_write_schema(opened, url, results_schema, table))
    clock["write"] = time.perf_counter() - t2
    warnings = audit.warnings(as_of)
    alerts = staged - int(table["phq9_item9_positive"].null_count)
    if alerts:
        warnings.append(f"{alerts:,} persons staged answered PHQ-9 item 9 (thoughts of being "
                        "better off dead or of self-harm) above 0 (column phq9_item9_positive, "
                        "the latest such answer): review them; `trdstage assess` raises the "
                        "urgent alert")
    dead = staged - int(table["death_date"].null_count)
    if dead:
        warnings.append(f"{dead:,} persons staged died on or before the as-of date (column "
                        "death_date): the cohort engines stage them as of the as-of date, not "
                        "as of their death; `trdstage assess` and --verify end their history at "
                        "death")
    if staged == 0 and n_person:
        warnings.append(f"no person was staged of {n_person:,}: see the exclusions above")
    summary = Summary(persons=n_person + sum(audit.persons.values()), staged=staged,
                      excluded_persons=excluded, excluded_rows={**audit.excluded_rows(),
                                                                **excl_rows},
                      seconds=clock, output=", ".join(written), engine=engine,
                      warnings=warnings)
    return table, summary


__all__ = ["RESULTS_TABLE", "Summary", "parquet_writer_atomic", "stage_cohort",
           "write_parquet_atomic"]
