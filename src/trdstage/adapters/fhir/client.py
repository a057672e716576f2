"""Fetch one patient's treatment history from a FHIR R4 server (plain httpx, no SDK).

GET Patient/<id>, then a search per resource type (`?patient=<id>&_count=100`), following the
Bundle's `next` links. A bearer token goes in the Authorization header. Every failure (refused
connection, timeout, HTTP error, a page that is not a searchset Bundle, too many pages or bytes)
is an `InputError` naming the URL, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin

import httpx

from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.codes import load_fhir_codes
from trdstage.adapters.fhir.read import FhirRead, read_fhir_resources

SEARCHED = ("Condition", "MedicationStatement", "MedicationRequest", "MedicationDispense",
            "Procedure", "Observation")
DEFAULT_TIMEOUT = 30.0
PAGE_SIZE = 100


class _Fetcher:
    def __init__(self, base: str, token: str | None, timeout: float) -> None:
        settings = load_fhir_codes().spec.settings
        self.base = base.rstrip("/") + "/"
        self.max_bytes = int(settings.max_server_mb * 1024 * 1024)
        self.max_pages = settings.max_pages
        self.total = 0
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)

    def get(self, url: str) -> dict[str, Any]:
        try:
            response = self.client.get(url)
        except httpx.TimeoutException as exc:
            raise InputError(url, f"FHIR server did not answer within {self.client.timeout.read}"
                             " s (--timeout)") from exc
        except httpx.HTTPError as exc:
            raise InputError(url, f"cannot reach the FHIR server: {exc}") from exc
        if response.status_code in (401, 403):
            raise InputError(url, f"FHIR server refused access (HTTP {response.status_code}); "
                             "check the token (--token or TRDSTAGE_FHIR_TOKEN)")
        if response.status_code == 404:
            raise InputError(url, "not found on the FHIR server (HTTP 404)")
        if response.status_code >= 400:
            raise InputError(url, f"FHIR server answered HTTP {response.status_code}"
                             f"{_outcome(response)}")
        self.total += len(response.content)
        if self.total > self.max_bytes:
            raise InputError(url, f"more than {self.max_bytes // 1048576} MB fetched for one "
                             "patient (fhir_codes.yaml settings.max_server_mb); stopped")
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(url, "FHIR server answered with something that is not JSON") \
                from exc
        if not isinstance(data, dict) or "resourceType" not in data:
            raise InputError(url, "FHIR server answered with JSON that is not a FHIR resource")
        return data

    def search(self, rtype: str, patient_id: str) -> list[tuple[Any, str | None]]:
        url: str | None = f"{self.base}{rtype}?patient={patient_id}&_count={PAGE_SIZE}"
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
            for entry in page.get("entry") or []:
                if not isinstance(entry, dict) or "resource" not in entry:
                    continue
                search = entry.get("search")
                if isinstance(search, dict) and search.get("mode") == "outcome":
                    continue
                found.append((entry["resource"], entry.get("fullUrl")))
            url = None
            for link in page.get("link") or []:
                if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
                    url = urljoin(self.base, str(link["url"]))
        return found


def _outcome(response: httpx.Response) -> str:
    """The first issue of an OperationOutcome body, if the server sent one."""
    try:
        body = response.json()
    except ValueError:
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
    if not base.startswith(("http://", "https://")):
        raise InputError(base, "the FHIR server must be an http:// or https:// URL")
    fetcher = _Fetcher(base, token, timeout)
    try:
        items: list[tuple[Any, str | None]] = [(fetcher.get(f"{fetcher.base}Patient/"
                                                             f"{patient_id}"), None)]
        for rtype in SEARCHED:
            items.extend(fetcher.search(rtype, patient_id))
        have = {f"{r.get('resourceType')}/{r.get('id')}" for r, _ in items if isinstance(r, dict)}
        wanted = {str(ref) for r, _ in items if isinstance(r, dict)
                  for ref in [(r.get("medicationReference") or {}).get("reference")]
                  if isinstance(ref, str) and ref.startswith("Medication/")}
        for ref in sorted(wanted - have):
            items.append((fetcher.get(f"{fetcher.base}{ref}"), None))
    finally:
        fetcher.client.close()
    return read_fhir_resources(items, f"{fetcher.base} Patient/{patient_id}",
                               patient_id=patient_id)
