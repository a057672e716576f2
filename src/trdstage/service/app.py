"""The ASGI app: `create_app(settings)`.

Around every request (one ASGI middleware, `Guard`): a request id (`X-Request-Id`, taken from
the caller when it is a short token, else made), the body limit (413 before the app reads
anything), security headers, one access-log line without query strings or bodies, and a
problem document instead of a stack trace. Then CORS (configured origins only), the routers:
`/healthz`, `/api/v1` (service/api.py), and each part in EXTENSIONS that is installed
(CDS Hooks, web app): a module with `install(app, settings)`.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trdstage.service.auth import RateLimiter
from trdstage.service.db import Database, DatabaseBusy, schema_state
from trdstage.service.problems import Problem, problem_response
from trdstage.service.settings import Settings

# Optional parts of the service: each module, when present, has `install(app, settings)`.
EXTENSIONS = ("trdstage.service.cds", "trdstage.service.webapp")

log = logging.getLogger("trdstage.service")
access_log = logging.getLogger("trdstage.service.access")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: "
            "https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'")



class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (the current request's, or "-")."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def version() -> str:
    from trdstage.report.html import version as package_version

    return package_version()


class Guard:
    """Request id, body limit, security headers, access log, last-resort 500."""

    def __init__(self, app: ASGIApp, settings: Settings,
                 csp_overrides: dict[str, str]) -> None:
        self.app = app
        self.limit = settings.server.max_body_bytes
        self.hsts = settings.server.public_url.startswith("https://")
        self.csp_overrides = csp_overrides

    def _csp(self, path: str) -> str:
        for prefix, csp in self.csp_overrides.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return csp
        return API_CSP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _GIVEN_ID.match(given) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = {"code": 0}
        csp = self._csp(scope.get("path", ""))

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in (
                        (b"x-request-id", rid), (b"x-content-type-options", "nosniff"),
                        (b"referrer-policy", "no-referrer"), (b"x-frame-options", "DENY"),
                        (b"cache-control", "no-store"),
                        (b"content-security-policy", csp),
                        (b"cross-origin-resource-policy", "same-origin"),
                        *([(b"strict-transport-security", "max-age=31536000")]
                          if self.hsts else [])):
                    if name not in present:
                        headers.append((name, value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
                # No database takes NUL in a text value: refused here, for every route.
                await _send_problem(scope, send_wrapped, Problem(
                    400, "the path or query contains a NUL character"))
                return
            body_receive = await self._read_body(scope, receive, send_wrapped)
            if body_receive is not None:
                await self.app(scope, body_receive, send_wrapped)
        except (DatabaseBusy, OperationalError) as exc:
            log.error("database unavailable: %s at %s", type(exc).__name__, _where(exc))
            if status["code"] == 0:
                await _send_problem(scope, send_wrapped, Problem(
                    503, "the database is busy or unreachable; try again",
                    headers={"Retry-After": "2"}))
        except Exception as exc:  # the app raised past its handlers: no stack trace out
            log.error("unhandled %s at %s", type(exc).__name__, _where(exc))
            if status["code"] == 0:
                await _send_problem(scope, send_wrapped, Problem(
                    500, "the service failed; the request id identifies it in the log"))
        finally:
            account = scope.get("state", {}).get("account_id", "-")
            access_log.info("%s %s %s %.1fms account=%s", scope.get("method"),
                            scope.get("path"), status["code"] or 500,
                            (time.perf_counter() - started) * 1000, account)
            REQUEST_ID.reset(token)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The whole body, up to the limit (None when a 413 was sent instead)."""
        declared = _header(scope, b"content-length")
        too_large = Problem(413, f"the body is larger than the {self.limit / 1048576:g} MB "
                                 "limit ([server] max_body_mb)")
        if declared and declared.isdigit() and int(declared) > self.limit:
            await _send_problem(scope, send, too_large)
            return None
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and not declared:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_problem(scope, send, too_large)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


async def _send_problem(scope: Scope, send: Send, problem: Problem) -> None:
    request = Request(scope)
    response = problem_response(problem, request)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - a problem response reads nothing
    return {"type": "http.disconnect"}


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404:
            detail = "no such resource"
        return problem_response(Problem(exc.status_code, detail,
                                        headers=dict(exc.headers or {})), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return problem_response(Problem(400, str(first.get("msg", "invalid request")),
                                        where=loc or None), request)


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """The service app. `db` defaults to the settings' database; its schema must be at the
    head of the shipped migrations (checked at start-up)."""
    settings = settings or Settings()
    database = db or Database(settings.server.database)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        database.check_schema()
        yield
        database.dispose()

    app = FastAPI(title="trdstage", version=version(), lifespan=lifespan,
                  description="Staging of treatment-resistant depression with explained "
                  "results, as a service. Decision support, not a medical device.",
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.db = database
    app.state.limiter = RateLimiter(settings.server.rate_limit_per_minute)
    # Path prefix -> Content-Security-Policy (parts that serve HTML add theirs in install()).
    app.state.csp_overrides = {"/docs": DOCS_CSP}
    _install_handlers(app)

    @app.get("/healthz", tags=["service"], summary="Liveness and database check "
             "(no authentication)")
    def healthz() -> JSONResponse:
        reachable = database.reachable()
        revision = None
        if reachable:
            revision = schema_state(database.engine)[0]
        body = {"status": "ok" if reachable else "unavailable", "version": version(),
                "database": "reachable" if reachable else "unreachable",
                "schema": revision}
        return JSONResponse(body, status_code=200 if reachable else 503)

    from trdstage.service.api import router as api_router

    app.include_router(api_router)
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.install(app, settings)

    if settings.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.server.cors_origins,
                           allow_methods=["GET", "POST", "PUT"],
                           allow_headers=["Authorization", "Content-Type", "Accept",
                                          "X-Request-Id"],
                           expose_headers=["Location", "X-Request-Id", "ETag"],
                           max_age=600)
    app.add_middleware(Guard, settings=settings, csp_overrides=app.state.csp_overrides)
    return app
