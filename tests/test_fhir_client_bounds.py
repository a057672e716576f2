"""The FHIR client against a hostile server on 127.0.0.1 that the test starts: a slow drip, a
huge body, `next` links and redirects to another host (the token must not follow), ids that
need escaping, malformed URLs, deeply nested JSON. Each is a clear `InputError`, in bounded
time and memory."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from fhir_builders import patient
from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.client import fetch_patient
from trdstage.cli import app

TOKEN = "hostile-test-token"  # noqa: S105 - a test token for the loopback servers
SEEN: list[tuple[str, str | None]] = []  # (host:port path, Authorization) of every request


def empty_page() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": []}


class Hostile(BaseHTTPRequestHandler):
    other = ""  # base URL of the second server, set by the fixture

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, body: Any, code: int = 200) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(code)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        SEEN.append((f"{self.server.server_address[1]}{self.path}",  # type: ignore[str-bytes-safe]
                     self.headers.get("Authorization")))
        path = urlparse(self.path).path
        mode = path.strip("/").split("/")[0]
        if path.endswith(("/Patient/p1", "/Patient/a%2Fb%3Fc%3Dd")):
            self.send_json(patient())
            return
        if mode == "drip":  # headers at once, then one byte every 0.2 s, for a minute
            body = json.dumps(empty_page()).encode() + b" " * 300
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.2)
            return
        if mode == "dripheaders":  # the status line byte by byte
            for ch in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 300:
                self.wfile.write(bytes([ch]))
                self.wfile.flush()
                time.sleep(0.2)
            return
        if mode == "huge":  # no Content-Length: chunks until the client stops reading
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.end_headers()
            self.wfile.write(b'{"resourceType": "Bundle", "type": "searchset", "x": "')
            chunk = b"a" * 1_048_576
            for _ in range(400):
                self.wfile.write(chunk)
            return
        if mode == "biglength":
            self.send_response(200)
            self.send_header("Content-Length", str(400 * 1_048_576))
            self.end_headers()
            return
        if mode == "nextaway":
            page = empty_page()
            page["link"] = [{"relation": "next", "url": f"{self.other}/steal?page=2"}]
            self.send_json(page)
            return
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", f"{self.other}/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "deep":
            self.send_json(b'{"resourceType": "Bundle", "x": ' + b"[" * 50_000 + b"]" * 50_000
                           + b"}")
            return
        if mode == "notjson":
            self.send_json(b"<html>hello</html>")
            return
        self.send_json(empty_page())


class Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hangs up on purpose


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    started = []
    for _ in range(2):
        httpd = Quiet(("127.0.0.1", 0), Hostile)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
    main, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in started)
    Hostile.other = other.replace("127.0.0.1", "localhost")  # another host, same machine
    yield main, other
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("mode", ["drip", "dripheaders"])
def test_slow_drip_ends_at_the_deadline(servers: tuple[str, str], mode: str) -> None:
    began = time.monotonic()
    with pytest.raises(InputError, match=r"did not answer within 1 s"):
        fetch_patient(f"{servers[0]}/{mode}", "p1", timeout=1)
    assert time.monotonic() - began < 3


@pytest.mark.parametrize("mode", ["huge", "biglength"])
def test_body_is_capped_while_streaming(servers: tuple[str, str], mode: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    from trdstage.adapters.fhir import client

    settings = client.load_fhir_codes().spec.settings
    monkeypatch.setattr(client, "load_fhir_codes", lambda: type("C", (), {"spec": type(
        "S", (), {"settings": settings.model_copy(update={"max_server_mb": 8})})()})())
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="more than 8 MB"):
            fetch_patient(f"{servers[0]}/{mode}", "p1", timeout=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1_048_576


@pytest.mark.parametrize("mode", ["nextaway", "redirect"])
def test_no_request_and_no_token_to_another_host(servers: tuple[str, str], mode: str) -> None:
    SEEN.clear()
    with pytest.raises(InputError, match="another server"):
        fetch_patient(f"{servers[0]}/{mode}", "p1", token=TOKEN, timeout=5)
    other_port = servers[1].rsplit(":", 1)[1]
    assert not [s for s in SEEN if s[0].startswith(other_port)], SEEN
    assert all(auth == f"Bearer {TOKEN}" for _, auth in SEEN)


def test_patient_id_is_escaped(servers: tuple[str, str]) -> None:
    SEEN.clear()
    with pytest.raises(InputError, match="nothing to assess"):  # the server has no history
        fetch_patient(f"{servers[0]}/fhir", "a/b?c=d", timeout=5)
    paths = [p for p, _ in SEEN]
    assert any(p.endswith("/fhir/Patient/a%2Fb%3Fc%3Dd") for p in paths), paths
    assert any("patient=a%2Fb%3Fc%3Dd" in p for p in paths), paths


@pytest.mark.parametrize(("pid", "problem"), [("", "not a resource id"),
                                              ("x" * 300, "not a resource id"),
                                              ("a\nb", "not a resource id")])
def test_bad_patient_ids(servers: tuple[str, str], pid: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        fetch_patient(f"{servers[0]}/fhir", pid)


@pytest.mark.parametrize(("url", "problem"), [
    ("ftp://example.org/fhir", "http:// or https://"),
    ("http://", "no host"),
    ("http://[::1/fhir", "malformed URL"),
    ("http://127.0.0.1:99999999/fhir", "malformed URL"),
    ("http://user:pw@127.0.0.1/fhir", "credentials"),
    ("http://127.0.0.1/fhir?x=1", "no query"),
    ("http://127.0.0.1/fh ir", "spaces"),
    ("fhir.example.org", "http:// or https://"),
])
def test_malformed_urls(url: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        fetch_patient(url, "p1", timeout=1)


def test_deep_and_non_json_answers(servers: tuple[str, str]) -> None:
    with pytest.raises(InputError, match="nested more than"):
        fetch_patient(f"{servers[0]}/deep", "p1", timeout=5)
    with pytest.raises(InputError, match="not JSON"):
        fetch_patient(f"{servers[0]}/notjson", "p1", timeout=5)


def test_cli_exit_2_and_no_token_in_the_message(servers: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, ["assess", "--fhir-server", f"{servers[0]}/nextaway",
                                      "--patient", "p1", "--timeout", "5"],
                                env={"TRDSTAGE_FHIR_TOKEN": TOKEN})
    assert result.exit_code == 2 and "another server" in result.output
    assert TOKEN not in result.output and "Traceback" not in result.output
