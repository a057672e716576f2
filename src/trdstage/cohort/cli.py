"""`trdstage cohort synth | stage | report`: thin commands over trdstage.cohort."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trdstage.adapters.errors import InputError
from trdstage.cli_common import err, fail, parse_date
from trdstage.knowledge import KnowledgeError, load_policy

cohort_app = typer.Typer(
    help="Stage every person of an OMOP CDM 5.4 database (DuckDB, PostgreSQL, Spark) and report "
    "on the cohort. Decision support research tooling, not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _check_file_out(path: Path | None, option: str) -> None:
    """Before any work: a file output that can be written (adapters/output.check_output)."""
    from trdstage.adapters.output import check_output

    if path is not None:
        try:
            check_output(path, option)
        except InputError as exc:
            fail(str(exc))


def _check_folder_out(path: Path, option: str, ours: tuple[str, ...]) -> None:
    """Before any work: a folder output is replaced whole, so an existing folder must hold only
    what this command writes (`ours`: file suffixes); a file or an unwritable parent is refused."""
    if str(path).strip() in ("", "."):
        fail(f"{option}: give a folder name (the folder is replaced)")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        fail(f"{option} {path}: not a folder")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if not p.name.endswith(ours))
        if others:
            fail(f"{option} {path}: the folder is replaced and holds other files "
                 f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); give a new "
                 "or empty folder")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        fail(f"{option} {path}: {parent} is a file, not a folder")


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=err, transient=True)


@cohort_app.command()
def synth(
    persons: Annotated[int, typer.Option("--persons", "-n", min=1, help="Number of persons.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="DuckDB file (or a folder with "
                                      "--parquet).")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same database).")] = 0,
    parquet: Annotated[bool, typer.Option("--parquet", help="Write a folder of Parquet files "
                                          "(one per table) instead of DuckDB.")] = False,
) -> None:
    """Write a synthetic OMOP CDM 5.4 database (STAR*D-shaped treatment sequences)."""
    from trdstage.cohort.omop_io import write_duckdb, write_parquet_dir
    from trdstage.cohort.synth import synth_tables

    if parquet:
        _check_folder_out(out, "--out", (".parquet",))
    else:
        _check_file_out(out, "--out")
    with _progress() as progress:
        progress.add_task(f"synthesising {persons:,} persons", total=None)
        tables = synth_tables(persons, seed=seed)
        (write_parquet_dir if parquet else write_duckdb)(out, tables, official=True)
    counts = ", ".join(f"{name} {t.num_rows:,}" for name, t in tables.items())
    err.print(f"wrote {out}: {counts}", highlight=False)


@cohort_app.command()
def stage(
    omop: Annotated[str, typer.Option("--omop", help="DuckDB file or duckdb:///path, a Parquet "
                                      "folder, postgres://..., spark:<folder> or "
                                      "spark-catalog:<database>.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Person-level results "
                                             "(Parquet).")] = None,
    results_schema: Annotated[str | None, typer.Option(
        "--results-schema", help="Also write <schema>.trdstage_cohort in the database.")] = None,
    policy: Annotated[str, typer.Option(help="Bundled policy name or file.")] = "claims",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Data cut-off YYYY-MM-DD "
                                              "(default today).")] = None,
    summary_json: Annotated[Path | None, typer.Option(
        "--summary-json", help="Also write the summary (counts, exclusions, timings) as JSON.")
    ] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="scan: read each table once and stage on this machine (fast on "
        "DuckDB); expression: stage inside the database (one Ibis expression, for PostgreSQL "
        "and Spark); auto: scan on DuckDB, expression elsewhere.")] = "auto",
    batches: Annotated[int | None, typer.Option(
        "--batches", min=1, help="Scan engine: in how many ranges of person ids the drug rows "
        "are read and staged (default: one per 175,000 persons, at most 16). Use 1 when "
        "drug_exposure is not stored in person order: each range reads the whole table.")
    ] = None,
) -> None:
    """Stage every person of an OMOP database under every model."""
    from trdstage.adapters.output import write_atomic
    from trdstage.cohort.run import ENGINES, NOT_DUCKDB, stage_cohort

    if out is None and not results_schema:
        fail("give --out FILE.parquet and/or --results-schema NAME")
    when = parse_date(as_of) or date.today()
    # every argument checked before any output is written
    if engine not in ENGINES:
        fail(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if results_schema is not None:
        if not results_schema.replace("_", "").isalnum() or not results_schema.isascii():
            fail(f"--results-schema: {results_schema!r} is not a plain identifier (letters, "
                 "digits, _)")
        if not omop.startswith(NOT_DUCKDB) and Path(omop.removeprefix("duckdb://")).is_dir():
            fail("--results-schema needs a database (a DuckDB file, PostgreSQL, Spark), not a "
                 "Parquet folder")
    _check_file_out(out, "--out")
    _check_file_out(summary_json, "--summary-json")
    if out is not None and summary_json is not None and out.resolve() == summary_json.resolve():
        fail("--out and --summary-json name the same file")
    try:
        chosen = load_policy(policy)
        with _progress() as progress:
            task = progress.add_task("starting", total=None)
            table, summary = stage_cohort(
                omop, when, chosen, out=out, results_schema=results_schema,
                step=lambda msg: progress.update(task, description=msg), engine=engine,
                batches=batches)
    except (InputError, KnowledgeError) as exc:
        fail(str(exc))
    _print_summary(table, summary, chosen.name, when)
    if summary_json is not None:
        try:
            write_atomic(summary_json, json.dumps(summary.as_dict(), indent=2) + "\n",
                         "--summary-json")
        except InputError as exc:
            fail(str(exc))


def _print_summary(table: object, summary: object, policy: str, as_of: date) -> None:
    from trdstage.cohort.run import Summary

    assert isinstance(summary, Summary)  # noqa: S101 - narrowing for mypy
    console = Console()
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    def counts_of(column: str) -> dict[object, int]:
        return {c["values"]: int(c["counts"])
                for c in pc.value_counts(table[column]).to_pylist()}  # type: ignore[index]

    n_rows = int(table.num_rows)  # type: ignore[attr-defined]
    head = Table(title=f"Cohort staged as of {as_of.isoformat()}, policy {policy}",
                 show_header=False)
    head.add_row("persons in the database", f"{summary.persons:,}")
    head.add_row("persons staged (current episode)", f"{summary.staged:,}")
    for reason, n in summary.excluded_persons.items():
        head.add_row(f"excluded: {reason}", f"{n:,}")
    for reason, n in summary.excluded_rows.items():
        head.add_row(f"rows excluded: {reason}", f"{n:,}")
    flagged = int(pc.sum(pc.greater(table["duration_only_trials"], 0)).as_py()  # type: ignore[index]
                  or 0)
    head.add_row("persons with a trial judged on duration alone (no dose)", f"{flagged:,}")
    head.add_row("engine", summary.engine)
    head.add_row("seconds (open / concepts / stage / write)",
                 " / ".join(f"{summary.seconds.get(k, 0):.1f}"
                            for k in ("open", "concepts", "stage", "write")))
    console.print(head)
    n = max(1, n_rows)
    models = Table("model", "distribution (% of persons staged)",
                   title="Results", show_lines=False)
    for label, key in (("Thase & Rush stage", "thase_rush_stage"),
                       ("European category", "european_category"),
                       ("Maudsley band", "maudsley_band"),
                       ("regulatory TRD met", "regulatory_met")):
        counts = counts_of(key)
        text = "  ".join(f"{k if k is not None else 'n/a'}: {v / n:.1%}"
                         for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
        models.add_row(label, text)
    if n_rows:
        mgh = table["mgh_score"]  # type: ignore[index]
        # the upper middle value for an even count, as before
        median = pc.quantile(mgh, q=0.5, interpolation="higher")[0].as_py()
        top = pc.max(mgh).as_py()
        models.add_row("MGH score", f"median {median:g}, max {top:g}")
    console.print(models)
    for warning in summary.warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if summary.output:
        console.print(f"wrote {summary.output}", highlight=False)
    console.print("Research output from claims/EHR rows: stages are computed from recorded "
                  "prescriptions, procedures and PHQ-9 scores, not clinical assessment.",
                  style="dim")


@cohort_app.command()
def report(
    results: Annotated[Path, typer.Option("--results", help="Parquet file from `cohort stage`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (HTML and figures).")],
    min_count: Annotated[int, typer.Option(
        "--min-count", min=1, help="Counts below this are suppressed (data-sharing rules).")
    ] = 5,
) -> None:
    """HTML research report with figures (PNG and SVG): stages per model, concordance, cumulative
    incidence of regulatory TRD, results by age band and sex; small counts suppressed."""
    from trdstage.cohort.report import write_report

    if not results.is_file():
        fail(f"--results {results}: no such file")
    _check_folder_out(out, "--out", (".html", ".png", ".svg", ".css", ".json", ".csv"))
    try:
        index = write_report(results, out, min_count=min_count)
    except InputError as exc:
        fail(str(exc))
    err.print(f"wrote {index}", highlight=False)


__all__ = ["cohort_app"]
