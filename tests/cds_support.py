"""The CDS Hooks test bed: the sandbox (FHIR server, signing CDS client, the CDS service) on a
free port of 127.0.0.1, and the 2.0.1 invariants every card must meet."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
import uvicorn

from trdstage.service.cds.models import SUMMARY_MAX
from trdstage.service.sandbox.app import Sandbox, build_sandbox
from trdstage.service.sandbox.run import free_port

AS_OF = date(2026, 12, 2)


@contextmanager
def serve(app: Any, port: int, lifespan: str = "off") -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def sandbox(**cds: Any) -> Iterator[Sandbox]:
    port = free_port()
    sb = build_sandbox(f"http://127.0.0.1:{port}", today=lambda: AS_OF, **cds)
    with serve(sb.app, port):
        yield sb


def _no_empty(value: Any, where: str) -> None:
    """§Use of JSON: no null, "", [] or {} (except the response's `cards`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert v not in (None, "", [], {}) or k == "cards", f"{where}.{k} is empty"
            _no_empty(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_empty(v, f"{where}[{i}]")


def check_card(card: dict[str, Any]) -> None:
    """CDS Hooks 2.0.1 card rules and the invariants cds-resp-1..6."""
    _no_empty(card, "card")
    assert set(card) <= {"uuid", "summary", "detail", "indicator", "source", "suggestions",
                         "selectionBehavior", "overrideReasons", "links"}
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) <= SUMMARY_MAX
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    assert card.get("uuid")
    suggestions = card.get("suggestions", [])
    if suggestions:
        assert card["selectionBehavior"] in ("at-most-one", "any")  # cds-resp-6
    if card.get("selectionBehavior") == "at-most-one":
        assert sum(bool(s.get("isRecommended")) for s in suggestions) <= 1  # cds-resp-1
    for s in suggestions:
        assert s["label"]
        for a in s.get("actions", []):
            assert a["type"] in ("create", "update", "delete")
            assert a["description"]  # cds-resp-5
            if a["type"] == "delete":
                assert a["resourceId"]  # cds-resp-2
    for r in card.get("overrideReasons", []):
        assert r["code"] and r["display"]  # cds-resp-4
    for link in card.get("links", []):
        assert link["type"] in ("absolute", "smart") and link["url"] and link["label"]
        if "appContext" in link:
            assert link["type"] == "smart"  # cds-resp-3


def check_response(body: dict[str, Any]) -> list[dict[str, Any]]:
    _no_empty(body, "response")
    assert set(body) <= {"cards", "systemActions"}
    for card in body["cards"]:
        check_card(card)
    return list(body["cards"])


def post(sb: Sandbox, service: str, body: dict[str, Any], token: str | None = None,
         path: str | None = None) -> httpx.Response:
    url = f"{sb.base_url}{path or f'/cds-services/{service}'}"
    auth = token if token is not None else sb.client.token(url)
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {auth}"}, timeout=20)
