"""Schemathesis over the service's OpenAPI document, against a real server: no 5xx, every
status code, content type and response body as documented. Bounded: at most 10 examples per
operation and 40 seconds. One worker: on Python 3.11 `ast.parse` (which hypothesis calls) keeps
its recursion depth in interpreter-wide state, and two worker threads can fail inside
schemathesis with "AST constructor recursion depth mismatch" (CPython gh-106905)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service_server import Service, prepare

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("service-schemathesis")
    config, tokens = prepare(f"sqlite:///{folder / 'trdstage.sqlite'}", folder,
                             rate_limit_per_minute=0)
    svc = Service(config, folder, tokens)
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()


def test_openapi_conformance(service: Service, tmp_path: Path) -> None:
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        pytest.skip("schemathesis is not installed (dev dependency)")
    done = subprocess.run(
        [str(st), "run", f"{service.url}/openapi.json",
         "-H", f"Authorization: Bearer {service.tokens['root']}", "-c", CHECKS,
         "-n", "10", "--max-time", "40", "-w", "1", "--seed", "1",
         "--generation-database", "none", "--no-color", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "Tested:" in out
    assert " 500 " not in service.log_text()  # no server error in the access log
