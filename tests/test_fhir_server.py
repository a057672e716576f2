"""FHIR server path against a real HTTP endpoint on 127.0.0.1 that the test starts: paging,
bearer token, a server error and a timeout; plus the CLI and the output Bundle."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from fhir_builders import (
    condition,
    dispense,
    dosage,
    observation,
    patient,
    procedure,
    statement,
)
from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir import read_fhir_data
from trdstage.adapters.fhir.client import fetch_patient
from trdstage.adapters.fhir.write import assessment_to_bundle
from trdstage.cli import app
from trdstage.engine import assess

TOKEN = "s3cret"  # noqa: S105 - a test token for the loopback server
EXAMPLE = Path(__file__).parents[1] / "src" / "trdstage" / "examples" / "fhir"
RESOURCES: list[dict[str, Any]] = [
    condition("c1", "icd10cm", "F33.2", onset="2024-01-01"),
    *[dispense(f"d{i}", "sertraline 100 MG Oral Tablet", f"2024-{2 + i:02d}-01", 60, 30)
      for i in range(3)],
    statement("s1", "venlafaxine 75 MG Extended Release Oral Capsule", "2024-06-01",
              "2024-08-15", dose=[dosage(3, "capsule")], outcome="non_response"),
    *[procedure(f"e{i}", "cpt", "90870", f"2024-09-{1 + 2 * i:02d}", site="bilateral",
                outcome="non_response") for i in range(9)],
    observation("o1", "loinc", "44261-6", "2024-01-20", 22),
    observation("o2", "loinc", "44261-6", "2024-05-01", 21),
]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path.startswith("/slow/"):
            time.sleep(2)
        if url.path.startswith("/broken/"):
            self.send(500, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "exception", "diagnostics": "database down"}]})
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send(401, {"resourceType": "OperationOutcome", "issue": []})
            return
        parts = url.path.strip("/").split("/")[1:]
        if parts == ["Patient", "p1"]:
            self.send(200, patient())
            return
        rtype = parts[0]
        query = parse_qs(url.query)
        if query.get("patient") != ["p1"]:
            self.send(400, {"resourceType": "OperationOutcome", "issue": []})
            return
        matches = [r for r in RESOURCES if r["resourceType"] == rtype]
        page = int(query.get("page", ["0"])[0])
        size = 2  # small pages so that paging is exercised
        chunk = matches[page * size:(page + 1) * size]
        links = [{"relation": "self", "url": self.path}]
        if (page + 1) * size < len(matches):
            links.append({"relation": "next",
                          "url": f"{url.path}?patient=p1&page={page + 1}"})
        self.send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(matches),
                        "link": links,
                        "entry": [{"resource": r, "search": {"mode": "match"}} for r in chunk]})


class QuietServer(ThreadingHTTPServer):
    """The timeout test hangs up on a slow answer; the server's broken pipe is expected."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_with_paging_and_token(server: str) -> None:
    got = fetch_patient(f"{server}/fhir", "p1", token=TOKEN)
    ep = got.patient.episodes[0]
    assert len(ep.medications) == 4 and len(ep.ratings) == 2
    assert ep.ect[0].sessions == 9
    result = assess(got.patient, as_of=date(2026, 1, 1))
    assert [t.agents for t in result.trials] == [["sertraline"], ["venlafaxine"]]
    assert result.trials[0].records == [f"MedicationDispense/d{i}" for i in range(3)]


def test_same_history_from_server_and_from_file(server: str) -> None:
    from fhir_builders import bundle

    from_server = fetch_patient(f"{server}/fhir", "p1", token=TOKEN).patient
    from_file = read_fhir_data(bundle(patient(), *RESOURCES)).patient
    assert assess(from_server, as_of=date(2026, 1, 1)).staging == assess(
        from_file, as_of=date(2026, 1, 1)).staging


def test_missing_token_server_error_and_timeout_are_clear(server: str) -> None:
    with pytest.raises(InputError, match="refused access"):
        fetch_patient(f"{server}/fhir", "p1")
    with pytest.raises(InputError, match="HTTP 500: database down"):
        fetch_patient(f"{server}/broken", "p1", token=TOKEN)
    with pytest.raises(InputError, match=r"did not answer within 0\.3"):
        fetch_patient(f"{server}/slow", "p1", token=TOKEN, timeout=0.3)
    with pytest.raises(InputError, match="cannot reach"):
        fetch_patient("http://127.0.0.1:9/fhir", "p1", timeout=1)


def test_output_bundle_is_valid_r4b_with_derived_from(server: str) -> None:
    got = fetch_patient(f"{server}/fhir", "p1", token=TOKEN)
    result = assess(got.patient, as_of=date(2026, 1, 1))
    raw = assessment_to_bundle(result, got.sources)
    parsed = Bundle.model_validate(raw)
    assert parsed.type == "collection" and len(parsed.entry) == 5
    by_code = {e.resource.code.coding[0].code: e.resource for e in parsed.entry}
    assert set(by_code) == {"thase-rush", "mgh", "maudsley", "european", "regulatory"}
    tr = by_code["thase-rush"]
    assert tr.valueInteger == result.staging.thase_rush.stage
    assert str(tr.effectiveDateTime) == "2026-01-01"
    refs = {r.reference for r in tr.derivedFrom}
    assert {"MedicationDispense/d0", "MedicationStatement/s1", "Condition/c1"} <= refs
    assert "Procedure/e8" in {r.reference for r in by_code["mgh"].derivedFrom}
    assert float(by_code["mgh"].valueQuantity.value) == result.staging.mgh.score
    assert by_code["european"].valueCodeableConcept.coding[0].code.startswith("european-")
    assert isinstance(by_code["regulatory"].valueBoolean, bool)
    assert "not a medical device" in tr.note[0].text


runner = CliRunner()


def test_cli_assess_fhir_file_and_format_fhir(tmp_path: Path) -> None:
    files = sorted(EXAMPLE.glob("*.json"))
    assert files, "bundled example FHIR patient missing"
    out = runner.invoke(app, ["assess", str(files[0]), "--as-of", "2026-01-01"])
    assert out.exit_code == 0, out.output
    assert "Thase & Rush" in out.output
    target = tmp_path / "out.json"
    out = runner.invoke(app, ["assess", str(files[0]), "--as-of", "2026-01-01", "--format",
                              "fhir", "-o", str(target)])
    assert out.exit_code == 0, out.output
    Bundle.model_validate_json(target.read_text())
    out = runner.invoke(app, ["assess", str(files[0]), "--as-of", "2026-01-01", "--format",
                              "json"])
    warnings = json.loads(out.stdout)["warnings"]
    assert any(w["code"] == "observation_not_used" for w in warnings)


def test_cli_server(server: str) -> None:
    out = runner.invoke(app, ["assess", "--fhir-server", f"{server}/fhir", "--patient", "p1",
                              "--as-of", "2026-01-01"], env={"TRDSTAGE_FHIR_TOKEN": TOKEN})
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["assess", "--fhir-server", f"{server}/broken", "--patient", "p1"])
    assert out.exit_code == 2 and "HTTP 500" in out.output and "Traceback" not in out.output
    out = runner.invoke(app, ["assess", "--fhir-server", f"{server}/fhir"])
    assert out.exit_code == 2 and "--patient" in out.output


def test_cli_bad_fhir_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [')
    out = runner.invoke(app, ["assess", str(bad)])
    assert out.exit_code == 2 and "malformed JSON" in out.output
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "x"}))
    out = runner.invoke(app, ["assess", str(bad)])
    assert out.exit_code == 2 and "expected a Bundle" in out.output
