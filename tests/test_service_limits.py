"""Limits of `trdstage serve`: the body limit (413), the per-account rate limit (429), CORS
only for the configured origins; a server with small limits started for this module."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from service_server import Service, prepare

ORIGIN = "https://ehr.example.org"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("service-limits")
    config, tokens = prepare(f"sqlite:///{folder / 'trdstage.sqlite'}", folder,
                             max_body_mb=0.01, rate_limit_per_minute=8,
                             cors_origins=[ORIGIN])
    svc = Service(config, folder, tokens)
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()


def test_body_over_the_limit_is_413_before_it_is_read(service: Service) -> None:
    big = b"{" + b" " * 20_000 + b"}"
    with service.client("alice") as c:
        resp = c.post("/api/v1/assess", content=big, headers={"Content-Type": "application/json"})
        assert resp.status_code == 413
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "max_body_mb" in resp.json()["detail"]
        chunked = c.post("/api/v1/patients", content=iter([b"{", b" " * 20_000, b"}"]),
                         headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413


def test_a_declared_length_over_the_limit_is_refused_without_sending_the_body(
        service: Service) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(b"POST /api/v1/assess HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n")
        head = s.recv(200)
    assert head.startswith(b"HTTP/1.1 413")


def test_cors_only_for_configured_origins(service: Service) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    ok = httpx.options(service.url + "/api/v1/assess", headers={"Origin": ORIGIN, **preflight})
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(service.url + "/api/v1/assess",
                          headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    null = httpx.get(service.url + "/healthz", headers={"Origin": "null"})
    assert "access-control-allow-origin" not in null.headers


def test_rate_limit_per_account(service: Service) -> None:
    with service.client("bob") as c:
        codes = [c.get("/api/v1/patients").status_code for _ in range(12)]
        assert codes[:4] == [200] * 4
        assert 429 in codes
        limited = c.get("/api/v1/patients")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    with service.client("root") as c:  # another account is not limited by bob's calls
        assert c.get("/api/v1/patients").status_code == 200
        events = c.get("/api/v1/audit", params={"agent": "bob", "outcome": 4}).json()
    assert events["total"] >= 1


def test_failed_sign_ins_are_limited_per_address(service: Service) -> None:
    codes = [httpx.get(service.url + "/api/v1/patients",
                       headers={"Authorization": "Bearer trd_wrong"}).status_code
             for _ in range(12)]
    assert codes[0] == 401 and codes[-1] == 429
