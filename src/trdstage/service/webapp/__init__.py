"""The clinician web app at /app.

`install(app, settings)` is what `trdstage serve` calls (service.app.EXTENSIONS): the app on the
service's database, with the `[webapp]` and `[[smart.ehrs]]` settings. `mount(app, backend,
web_settings)` puts it on any FastAPI app over any `WebBackend` (tests use `MemoryBackend`).
Errors under /app are answered as HTML pages; the rest of the app keeps its own handlers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from trdstage.service.webapp.backend import MemoryBackend, WebBackend
from trdstage.service.webapp.routes import WebApp, _env, create_router
from trdstage.service.webapp.settings import WebSettings

TITLES = {400: "This request cannot be answered", 403: "Not allowed", 404: "Not found",
          405: "Not allowed", 413: "Too large", 422: "Cannot be read"}


def install(app: FastAPI, settings: Any) -> WebApp:
    """Mount the web app on the service app (`settings`: the service's Settings)."""
    from trdstage.service.webapp.store import DatabaseBackend

    web_settings = WebSettings.from_mapping({"webapp": getattr(settings, "webapp", None) or {},
                                             "smart": getattr(settings, "smart", None) or {}})
    web = mount(app, DatabaseBackend(app.state.db), web_settings)
    overrides = getattr(app.state, "csp_overrides", None)
    if isinstance(overrides, dict):
        overrides["/app"] = web.csp()
    return web


def mount(app: FastAPI, backend: WebBackend, settings: WebSettings | None = None) -> WebApp:
    """Include the /app router and its HTML error pages; returns the app's state."""
    router = create_router(backend, settings)
    app.include_router(router)
    web: WebApp = router.state  # type: ignore[attr-defined]
    previous = app.exception_handlers.get(HTTPException)

    async def pages(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
            raise exc
        if not request.url.path.startswith("/app"):
            if previous is not None:
                result: Response = await previous(request, exc)  # type: ignore[misc]
                return result
            from fastapi.exception_handlers import http_exception_handler

            return await http_exception_handler(request, exc)
        if exc.status_code in (301, 302, 303, 307) and exc.headers:
            return web.headers(RedirectResponse(exc.headers["Location"], exc.status_code))
        html = _env().get_template("error.html.j2").render(
            session=None, flash="", path=request.url.path, ehrs=(),
            title=TITLES.get(exc.status_code, "Something went wrong"), message=exc.detail)
        return web.headers(HTMLResponse(html, status_code=exc.status_code))

    async def invalid(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith("/app"):
            from fastapi.exception_handlers import request_validation_exception_handler

            if not isinstance(exc, RequestValidationError):  # pragma: no cover
                raise exc
            handler: Any = previous_invalid or request_validation_exception_handler
            answer: Response = await handler(request, exc)
            return answer
        errors: list[Any] = list(exc.errors()) if isinstance(exc, RequestValidationError) \
            else []
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return await pages(request, HTTPException(400, f"{where}: {first.get('msg', 'bad input')}"))

    previous_invalid = app.exception_handlers.get(RequestValidationError)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, pages)
    app.add_exception_handler(FastAPIHTTPException, pages)
    return web


def create_test_app(users: dict[str, tuple[str, Any]] | None = None,
                    settings: WebSettings | None = None) -> tuple[FastAPI, MemoryBackend]:
    """The web app alone on an in-memory backend (tests, screenshots)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    backend = MemoryBackend(users or {})
    mount(app, backend, settings)
    return app, backend


__all__ = ["MemoryBackend", "WebBackend", "WebSettings", "create_router", "create_test_app",
           "install", "mount"]
