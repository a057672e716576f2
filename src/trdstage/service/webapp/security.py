"""Sessions kept on the server, CSRF tokens, and the security headers of every page.

The browser holds only a random session id (`HttpOnly; Secure; SameSite`); the account, the CSRF
token and any SMART access token stay in the server's memory. A session idle for longer than the
configured time-out is gone. Pages launched inside an EHR frame get `SameSite=None; Partitioned`
cookies (a framed app is a third party to the EHR page) and CSP `frame-ancestors` lists only the
configured EHR origins.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response

COOKIE = "trdstage_app"


@dataclass
class Session:
    id: str
    csrf: str
    account: str = ""
    role: str = ""
    last_seen: float = field(default_factory=time.monotonic)
    framed: bool = False
    smart: dict[str, Any] = field(default_factory=dict)  # iss, access token, patient, banner
    checked: dict[str, set[str]] = field(default_factory=dict)  # patient -> checklist item ids
    flash: str = ""

    @property
    def signed_in(self) -> bool:
        return bool(self.account)


class SessionStore:
    """In-memory sessions with an idle time-out (seconds); bounded in number."""

    def __init__(self, idle_seconds: float, max_sessions: int = 10_000) -> None:
        self.idle = idle_seconds
        self.max = max_sessions
        self._items: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new(self, **values: Any) -> Session:
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), **values)
        with self._lock:
            self._sweep()
            if len(self._items) >= self.max:
                oldest = min(self._items.values(), key=lambda s: s.last_seen)
                del self._items[oldest.id]
            self._items[session.id] = session
        return session

    def get(self, sid: str | None) -> tuple[Session | None, bool]:
        """The live session and whether it just timed out."""
        if not sid:
            return None, False
        with self._lock:
            session = self._items.get(sid)
            if session is None:
                return None, False
            now = time.monotonic()
            if now - session.last_seen > self.idle:
                del self._items[sid]
                return None, session.signed_in
            session.last_seen = now
            return session, False

    def drop(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for sid in [s.id for s in self._items.values() if now - s.last_seen > self.idle]:
            del self._items[sid]


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return bool(session and token and hmac.compare_digest(session.csrf, token))


def set_cookie(response: Response, session: Session, secure: bool) -> None:
    if session.framed:
        # A framed app is a third party to the EHR page: only SameSite=None reaches it, and
        # Partitioned keeps the cookie to this EHR's frame.
        response.headers.append(
            "Set-Cookie", f"{COOKIE}={session.id}; Path=/app; HttpOnly; Secure; "
            "SameSite=None; Partitioned")
        return
    response.set_cookie(COOKIE, session.id, path="/app", httponly=True, secure=secure,
                        samesite="lax")


def clear_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/app", httponly=True, secure=secure, samesite="lax")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(response: Response, frame_origins: list[str],
                     form_origins: list[str]) -> None:
    ancestors = " ".join(["'self'", *frame_origins])
    forms = " ".join(["'self'", *form_origins])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; form-action {forms}; frame-ancestors {ancestors}; "
        "base-uri 'none'; object-src 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
