"""Command line: parse arguments, call the engine, render. Nothing clinical lives here."""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trdstage import assessing
from trdstage.adapters.errors import InputError
from trdstage.adapters.native import patient_json_schema, read_patient_file
from trdstage.adapters.output import check_output, write_atomic
from trdstage.cli_common import err, fail, parse_date
from trdstage.cohort.cli import cohort_app
from trdstage.domain.patient import Patient
from trdstage.domain.results import Notice, result_json_schema
from trdstage.engine import assess as run_assessment
from trdstage.knowledge import KnowledgeError, load_policy, policy_names
from trdstage.report.text import ROMAN
from trdstage.service.cli import admin_app, serve

app = typer.Typer(
    name="trdstage",
    help="Stage treatment-resistant depression under five published models, with reasons. "
    "Decision support, not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(cohort_app, name="cohort")
app.add_typer(admin_app, name="admin")
app.command("serve")(serve)

DEMO_AS_OF = date(2026, 1, 1)  # reference date of the bundled demo histories (examples/README)


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"
    pdf = "pdf"
    fhir = "fhir"


class Audience(StrEnum):
    clinician = "clinician"
    patient = "patient"


def _emit(text: str | bytes, output: Path | None) -> None:
    if output is None:
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            sys.stdout.write(text)
        return
    try:
        write_atomic(output, text)
    except InputError as exc:
        fail(str(exc))
    err.print(f"wrote {output}", highlight=False)


def _check_output(output: Path | None) -> None:
    """Before any work: refuse an output place that cannot be written."""
    if output is not None:
        try:
            check_output(output)
        except InputError as exc:
            fail(str(exc))


@app.command()
def assess(
    file: Annotated[Path | None, typer.Argument(
        help="Patient history: YAML or JSON (see `schema`), or a FHIR R4 Bundle (docs/fhir.md)."
    )] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Assessment date YYYY-MM-DD (default: today).")] = None,
    policy: Annotated[str, typer.Option(
        help="Bundled policy name or a policy file (see `policies`).")] = "default",
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
    audience: Annotated[Audience, typer.Option(
        help="Report reader (html and pdf): clinician report or plain-language patient "
        "summary.")] = Audience.clinician,
    fhir_server: Annotated[str | None, typer.Option(
        "--fhir-server", help="FHIR R4 server base URL to read the patient from (instead of "
        "FILE).")] = None,
    patient_id: Annotated[str | None, typer.Option(
        "--patient", help="Patient id on the FHIR server.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="TRDSTAGE_FHIR_TOKEN", show_envvar=True,
        help="Bearer token for the FHIR server.")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, help="FHIR server timeout in seconds.")] = 30.0,
) -> None:
    """Stage one patient's history under every model and explain each result."""
    when = parse_date(as_of) or date.today()
    _check_output(output)
    if audience is not Audience.clinician and fmt not in (Format.html, Format.pdf):
        fail("--audience patient needs --format html or --format pdf")
    if fmt is Format.pdf and output is None and sys.stdout.isatty():
        fail("a PDF is binary: give --output FILE (or redirect standard output)")
    try:
        chosen = load_policy(policy)
        patient, notices, fhir_sources = _read_patient(file, fhir_server, patient_id, token,
                                                       timeout)
        result = assessing.run(patient, as_of=when, policy=chosen, notices=notices)
    except (InputError, KnowledgeError) as exc:
        fail(str(exc))
    _emit(assessing.render(patient, result, fmt.value, audience.value, fhir_sources), output)


def _read_patient(file: Path | None, server: str | None, patient_id: str | None,
                  token: str | None, timeout: float
                  ) -> tuple[Patient, list[Notice], dict[str, list[str]]]:
    """A native file, a FHIR Bundle file (it has a resourceType) or a FHIR server patient."""
    from trdstage.adapters.fhir import is_fhir_json, read_fhir_file

    if server is not None:
        if file is not None or not patient_id:
            fail("--fhir-server needs --patient ID and no FILE")
        from trdstage.adapters.fhir.client import fetch_patient

        got = fetch_patient(server, patient_id, token=token, timeout=timeout)
        return got.patient, got.notices, got.sources
    if file is None:
        fail("give a patient FILE, or --fhir-server URL --patient ID")
    if is_fhir_json(file):
        got = read_fhir_file(file)
        return got.patient, got.notices, got.sources
    return read_patient_file(file), [], {}


@app.command()
def schema(
    result: Annotated[bool, typer.Option(
        "--result", help="The schema of the JSON result (assess --format json).")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Print the JSON Schema of the native patient file (or of the JSON result)."""
    _check_output(output)
    document = result_json_schema() if result else patient_json_schema()
    _emit(json.dumps(document, indent=2) + "\n", output)


@app.command()
def policies() -> None:
    """List the bundled policies."""
    table = Table("policy", "description")
    for name in policy_names():
        table.add_row(name, load_policy(name).description)
    Console().print(table)


@app.command()
def demo(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help=f"Assessment date (default {DEMO_AS_OF.isoformat()}, the demo's).")] = None,
    policy: Annotated[str, typer.Option(help="Bundled policy name or file.")] = "default",
) -> None:
    """Stage the bundled demo patients and show every model side by side."""
    when = parse_date(as_of) or DEMO_AS_OF
    try:
        chosen = load_policy(policy)
    except KnowledgeError as exc:
        fail(str(exc))
    table = Table("patient", "failed trials", "Thase & Rush", "MGH-S", "MSM", "European",
                  "regulatory TRD", title=f"Demo patients, as of {when.isoformat()}, "
                  f"policy {chosen.name}")
    folder = resources.files("trdstage") / "examples"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith((".yaml", ".json")))
    results = []
    for name in names:
        with resources.as_file(folder / name) as path:
            try:
                history = read_patient_file(path, today=when)
            except InputError as exc:
                field = exc.where.rpartition(": ")[2]
                fail(f"--as-of {when.isoformat()} is earlier than the demo histories ({name} "
                     f"{field}: {exc.message}); they are set for {DEMO_AS_OF.isoformat()}")
            results.append(run_assessment(history, as_of=when, policy=chosen))
    for result in results:
        s = result.staging
        msm = f"{s.maudsley.score} {s.maudsley.band}" if s.maudsley.score is not None else "n/a"
        table.add_row(result.patient_id, str(sum(t.failed for t in result.trials if t.in_scope)),
                      ROMAN[s.thase_rush.stage], f"{s.mgh.score:g}", msm, s.european.category,
                      "yes" if s.regulatory.met else "no")
    console = Console()
    console.print(table)
    console.print("Full explanation: trdstage assess src/trdstage/examples/<file> "
                  f"--as-of {when.isoformat()}", highlight=False)
    console.print("Decision support, not a medical device.", style="dim")


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8765,
    service: Annotated[str | None, typer.Option(
        "--service", help="Call this CDS service (e.g. a `trdstage serve`) instead of the one "
        "the sandbox runs.")] = None,
    app_url: Annotated[str | None, typer.Option(
        "--app-url", help="A `trdstage serve` whose web app the charts open by SMART App "
        "Launch (e.g. http://127.0.0.1:8080).")] = None,
) -> None:
    """A test EHR on 127.0.0.1: synthetic patients over FHIR, a CDS Hooks client and pages that
    show the cards (docs/cds-hooks.md)."""
    from trdstage.service.sandbox.run import run

    run(port, service, app_url)


def main() -> None:  # pragma: no cover - console entry point
    app()
