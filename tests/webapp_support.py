"""Shared by the web app tests: a loopback uvicorn server, accounts, a three-trial history."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

USERS: dict[str, tuple[str, Any]] = {
    "dr-ann": ("correct horse battery", "clinician"),
    "root": ("admin staple battery", "admin"),
}
CLIENT_ID = "trdstage-test"
CLIENT_SECRET = "sandbox-secret-for-tests"  # noqa: S105 - loopback test client

# Three failed adequate trials: two SSRIs, then an SNRI (Thase & Rush stage II).
TRIALS = [
    ("fluoxetine", "2024-01-15", "2024-03-11", "40 mg"),
    ("Zoloft", "2024-03-18", "2024-05-13", "150 mg"),
    ("venlafaxine", "2024-05-20", "2024-07-15", "225 mg"),
]


def history_form(csrf: str, local_id: str = "P-100") -> dict[str, str]:
    data = {"csrf": csrf, "mode": "new", "action": "save", "id": local_id,
            "birth_date": "1980-04-02", "sex": "female",
            "episodes.0.onset": "2024-01-02", "episodes.0.severity": "moderate"}
    for i, (agent, start, end, dose) in enumerate(TRIALS):
        m = f"episodes.0.medications.{i}"
        data |= {f"{m}.agent": agent, f"{m}.adherence": "good", f"{m}.outcome": "non_response",
                 f"{m}.steps.0.start": start, f"{m}.steps.0.end": end,
                 f"{m}.steps.0.dose": dose}
    return data


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 in a thread; stop it on exit."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test server on {url} did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_ok(url: str) -> None:
    httpx.get(url, timeout=5)
