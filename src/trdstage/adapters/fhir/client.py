"""Fetch one patient's treatment history from a FHIR R4 server (plain httpx, no SDK).

GET Patient/<id>, then a search per resource type (`?patient=<id>&_count=100`), following the
Bundle's `next` links. A bearer token goes in the Authorization header. Every failure (refused
connection, timeout, HTTP error, a page that is not a searchset Bundle, too many pages or bytes)
is an `InputError` naming the URL, never a traceback.

Bounds: each request ends when `timeout` seconds have passed since it started, however slowly
the server sends; the body is read in chunks and stopped at the byte cap (fhir_codes.yaml
settings.max_server_mb, for the whole patient); every request, `next` links and redirects
included, goes only to the origin (scheme, host, port) of the base URL, so the token never
reaches another host; ids are escaped into the URL; JSON is parsed with the depth and number
bounds of knowledge/documents.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx

from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.codes import load_fhir_codes
from trdstage.adapters.fhir.read import FhirRead, read_fhir_resources
from trdstage.knowledge.documents import DocumentError, load_json

SEARCHED = ("Condition", "MedicationStatement", "MedicationRequest", "MedicationDispense",
            "Procedure", "Observation")
DEFAULT_TIMEOUT = 30.0
PAGE_SIZE = 100
MAX_ID_CHARS = 256


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def check_base_url(base: str) -> str:
    """The server's base URL, ending in '/'; `InputError` for anything but a plain http(s)
    URL with a host (no user:password, query or fragment)."""
    where = "--fhir-server"
    if any(c.isspace() or ord(c) < 32 for c in base):
        raise InputError(where, "the URL contains spaces or control characters")
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InputError(where, f"malformed URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise InputError(where, "the FHIR server must be an http:// or https:// URL")
    if not parts.hostname:
        raise InputError(where, "the URL has no host")
    if parts.username or parts.password:
        raise InputError(where, "credentials in the URL are not accepted: use --token")
    if parts.query or parts.fragment:
        raise InputError(where, "the base URL takes no query (?...) or fragment (#...)")
    return base.rstrip("/") + "/"


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > MAX_ID_CHARS or any(ord(c) < 32 for c in value):
        raise InputError(what, f"{value[:40]!r} is not a resource id (1-{MAX_ID_CHARS} "
                         "printable characters)")
    return quote(value, safe="")


class _Fetcher:
    def __init__(self, base: str, token: str | None, timeout: float) -> None:
        settings = load_fhir_codes().spec.settings
        self.base = base
        self.origin = _origin(base)
        self.timeout = timeout
        self.max_bytes = int(settings.max_server_mb * 1024 * 1024)
        self.max_pages = settings.max_pages
        self.total = 0
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True,
                                   max_redirects=5,
                                   event_hooks={"request": [self._same_origin]})

    def _same_origin(self, request: httpx.Request) -> None:
        """Every request, redirects included, stays on the base URL's origin."""
        if _origin(str(request.url)) != self.origin:
            raise InputError(str(request.url), "the FHIR server sent a link or redirect to "
                             "another server; not followed (the token is sent only to "
                             f"{self.base})")

    def get(self, url: str) -> dict[str, Any]:
        """One GET, ended at the deadline wherever it is (headers or body): the request runs in
        a worker thread, and on the deadline the connection is closed under it."""
        deadline = time.monotonic() + self.timeout
        done: list[tuple[httpx.Response, bytes] | BaseException] = []

        def work() -> None:
            try:
                with self.client.stream("GET", url) as response:
                    done.append((response, self._read(url, response, deadline)))
            except BaseException as exc:
                done.append(exc)

        worker = threading.Thread(target=work, daemon=True, name="trdstage-fhir-get")
        worker.start()
        worker.join(self.timeout + 0.05)
        if not done:
            self.client.close()  # the worker's read fails on the closed connection
            raise InputError(url, self._late())
        got = done[0]
        if isinstance(got, BaseException):
            return self._failed(url, got)
        response, body = got
        return self._parse(url, response, body)

    def _failed(self, url: str, exc: BaseException) -> dict[str, Any]:
        """A request's exception as the `InputError` that says what happened."""
        if isinstance(exc, httpx.TimeoutException):
            message = self._late()
        elif isinstance(exc, httpx.TooManyRedirects):
            message = "the FHIR server redirects too many times"
        elif isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            message = f"malformed URL ({exc})"
        elif isinstance(exc, httpx.HTTPError):
            message = f"cannot reach the FHIR server: {exc}"
        else:
            raise exc  # an InputError (another origin, the byte cap) or a bug
        raise InputError(url, message) from exc

    def _parse(self, url: str, response: httpx.Response, body: bytes) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise InputError(url, f"FHIR server refused access (HTTP {status}); "
                             "check the token (--token or TRDSTAGE_FHIR_TOKEN)")
        if status == 404:
            raise InputError(url, "not found on the FHIR server (HTTP 404)")
        if status >= 400:
            raise InputError(url, f"FHIR server answered HTTP {status}{_outcome(body)}")
        try:
            data = load_json(body, url)
        except DocumentError as exc:
            if exc.message.startswith("malformed JSON") and "nested" not in exc.message:
                raise InputError(url, "FHIR server answered with something that is not JSON") \
                    from exc
            raise InputError(exc.where, f"FHIR server answer refused: {exc.message}") from exc
        if not isinstance(data, dict) or "resourceType" not in data:
            raise InputError(url, "FHIR server answered with JSON that is not a FHIR resource")
        return data

    def _late(self) -> str:
        return f"FHIR server did not answer within {self.timeout:g} s (--timeout)"

    def _read(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        """The body in chunks, within the deadline and the byte cap."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and self.total + int(declared) > self.max_bytes:
            raise InputError(url, self._too_big())
        chunks: list[bytes] = []
        for chunk in response.iter_bytes():
            if time.monotonic() > deadline:
                raise InputError(url, self._late())
            self.total += len(chunk)
            if self.total > self.max_bytes:
                raise InputError(url, self._too_big())
            chunks.append(chunk)
        if time.monotonic() > deadline:
            raise InputError(url, self._late())
        return b"".join(chunks)

    def _too_big(self) -> str:
        return (f"more than {self.max_bytes // 1048576} MB fetched for one patient "
                "(fhir_codes.yaml settings.max_server_mb); stopped")

    def search(self, rtype: str, patient_id: str) -> list[tuple[Any, str | None]]:
        query = urlencode({"patient": patient_id, "_count": PAGE_SIZE})
        url: str | None = f"{self.base}{rtype}?{query}"
        seen: set[str] = set()
        found: list[tuple[Any, str | None]] = []
        pages = 0
        while url:
            if url in seen:
                raise InputError(url, "the server's next link repeats a page already read")
            seen.add(url)
            pages += 1
            if pages > self.max_pages:
                raise InputError(url, f"more than {self.max_pages} pages for {rtype} "
                                 "(fhir_codes.yaml settings.max_pages); stopped")
            page = self.get(url)
            if page.get("resourceType") != "Bundle":
                raise InputError(url, f"expected a searchset Bundle, got "
                                 f"{page.get('resourceType')!r}")
            entries = page.get("entry") or []
            if not isinstance(entries, list):
                raise InputError(f"{url}: Bundle.entry", "must be a list")
            for entry in entries:
                if not isinstance(entry, dict) or "resource" not in entry:
                    continue
                search = entry.get("search")
                if isinstance(search, dict) and search.get("mode") == "outcome":
                    continue
                found.append((entry["resource"], entry.get("fullUrl")))
            url = self._next(url, page)
        return found

    def _next(self, url: str, page: dict[str, Any]) -> str | None:
        links = page.get("link") or []
        for link in links if isinstance(links, list) else []:
            if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
                target = urljoin(self.base, str(link["url"]))
                if _origin(target) != self.origin:
                    raise InputError(url, f"the next link points to another server "
                                     f"({_origin(target)[1] or target[:60]}); not followed "
                                     f"(the token is sent only to {self.base})")
                return target
        return None


def _outcome(raw: bytes) -> str:
    """The first issue of an OperationOutcome body, if the server sent one."""
    try:
        body = load_json(raw, "")
    except DocumentError:
        return ""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or []
        if issues and isinstance(issues[0], dict):
            text = issues[0].get("diagnostics") or (issues[0].get("details") or {}).get("text")
            if text:
                return f": {text}"
    return ""


def fetch_patient(base: str, patient_id: str, token: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> FhirRead:
    """Read one patient's history from a FHIR server into the domain model."""
    base = check_base_url(base)
    quoted = _check_id(patient_id, "--patient")
    fetcher = _Fetcher(base, token, timeout)
    try:
        items: list[tuple[Any, str | None]] = [(fetcher.get(f"{fetcher.base}Patient/{quoted}"),
                                                None)]
        for rtype in SEARCHED:
            items.extend(fetcher.search(rtype, patient_id))
        have = {f"{r.get('resourceType')}/{r.get('id')}" for r, _ in items if isinstance(r, dict)}
        wanted = {ref for r, _ in items if isinstance(r, dict)
                  and isinstance(r.get("medicationReference"), dict)
                  for ref in [r["medicationReference"].get("reference")]
                  if isinstance(ref, str) and ref.startswith("Medication/")}
        for ref in sorted(wanted - have):
            med_id = _check_id(ref.removeprefix("Medication/"), f"medicationReference {ref}")
            items.append((fetcher.get(f"{fetcher.base}Medication/{med_id}"), None))
    finally:
        fetcher.client.close()
    return read_fhir_resources(items, f"{fetcher.base} Patient/{patient_id}",
                               patient_id=patient_id)
