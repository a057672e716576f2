"""The patient's history for a hook call: the prefetch, completed from the FHIR server.

Each prefetch key is checked against its template (CDS Hooks 2.0.1 §"Prefetch"): a resource or
a complete searchset Bundle is used; `null` means the client has no such data (used as empty);
an omitted key, an OperationOutcome (alone or inside the Bundle) or a paged searchset (a `next`
link) is fetched again from `fhirServer`, with `fhirAuthorization`'s token, only when that base
is configured for the calling client, all fetches together within the deadline. `Medication`
resources that MedicationRequests refer to (the prefetch subset has no `_include`) are read
from the server when it is there; otherwise the reader's warning names them. When required data
cannot be had the hook answers 412.

The FHIR reading itself is the FHIR adapter's (`read_fhir_resources`), the fetching its client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.client import _Fetcher
from trdstage.adapters.fhir.read import FhirRead, read_fhir_resources
from trdstage.service.cds.models import Request
from trdstage.service.cds.settings import CdsClient

PATIENT = "{{context.patientId}}"
# key -> (template, resource type searched when the key must be fetched)
TEMPLATES: dict[str, tuple[str, str]] = {
    "patient": (f"Patient/{PATIENT}", "Patient"),
    "conditions": (f"Condition?patient={PATIENT}", "Condition"),
    "medicationRequests": (f"MedicationRequest?patient={PATIENT}", "MedicationRequest"),
    "medicationStatements": (f"MedicationStatement?patient={PATIENT}", "MedicationStatement"),
    "medicationDispenses": (f"MedicationDispense?patient={PATIENT}", "MedicationDispense"),
    "procedures": (f"Procedure?patient={PATIENT}", "Procedure"),
    "observations": (f"Observation?patient={PATIENT}&category=survey", "Observation"),
    "phq9": (f"Observation?patient={PATIENT}&code=http://loinc.org|44261-6", "Observation"),
    "phq9Panel": (f"Observation?patient={PATIENT}&code=http://loinc.org|44249-1", "Observation"),
}


def prefetch_templates() -> dict[str, str]:
    return {k: t for k, (t, _) in TEMPLATES.items()}


class PreconditionFailed(Exception):
    """The data the hook needs could not be had (HTTP 412). The message names what is missing,
    never patient data."""


@dataclass
class History:
    read: FhirRead | None  # None: nothing to assess (no depression history)
    fetched: list[str] = field(default_factory=list)  # what was read from the FHIR server
    resources: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)


def _outcome_only(value: dict[str, Any]) -> bool:
    """An OperationOutcome, or a Bundle that carries one as an error (the client could not
    satisfy the query)."""
    if value.get("resourceType") == "OperationOutcome":
        return True
    for entry in value.get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "OperationOutcome" and any(
                isinstance(i, dict) and i.get("severity") in ("error", "fatal")
                for i in res.get("issue") or []):
            return True
    return False


def _paged(value: dict[str, Any]) -> bool:
    return any(isinstance(link, dict) and link.get("relation") == "next"
               for link in value.get("link") or [])


def _entries(value: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    if value.get("resourceType") != "Bundle":
        return [(value, None)]
    out = []
    for entry in value.get("entry") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        if entry["resource"].get("resourceType") == "OperationOutcome":
            continue
        url = entry.get("fullUrl")
        out.append((entry["resource"], url if isinstance(url, str) else None))
    return out


def split_prefetch(prefetch: dict[str, Any] | None) -> tuple[
        list[tuple[dict[str, Any], str | None]], set[str]]:
    """The usable prefetched resources and the resource types still to fetch."""
    prefetch = prefetch or {}
    have: list[tuple[dict[str, Any], str | None]] = []
    missing: set[str] = set()
    for key, (_, rtype) in TEMPLATES.items():
        if key not in prefetch:
            missing.add(rtype)
            continue
        value = prefetch[key]
        if value is None:
            continue  # the client has no data for this key
        if not isinstance(value, dict) or "resourceType" not in value:
            raise InputError(f"prefetch.{key}", "not a FHIR resource")
        if _outcome_only(value) or _paged(value):
            missing.add(rtype)
            continue
        have.extend(_entries(value))
    # the observation keys overlap: fetching all observations replaces them
    if "Observation" in missing:
        have = [(r, u) for r, u in have if r.get("resourceType") != "Observation"]
    return have, missing


def _dedupe(items: list[tuple[dict[str, Any], str | None]]) -> list[
        tuple[dict[str, Any], str | None]]:
    seen: set[str] = set()
    out = []
    for res, url in items:
        key = f"{res.get('resourceType')}/{res.get('id')}" if res.get("id") else None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append((res, url))
    return out


def _missing_medications(items: list[tuple[dict[str, Any], str | None]]) -> list[str]:
    have = {f"Medication/{r.get('id')}" for r, _ in items if r.get("resourceType") == "Medication"}
    wanted = {ref for r, _ in items for ref in [(r.get("medicationReference") or {}).get(
        "reference")] if isinstance(ref, str) and ref.startswith("Medication/")}
    return sorted(wanted - have)


def _fetch_sync(base: str, token: str | None, timeout: float, patient_id: str,
                types: list[str], medications: list[str]) -> list[tuple[Any, str | None]]:
    fetcher = _Fetcher(base, token, timeout)
    try:
        items: list[tuple[Any, str | None]] = []
        for rtype in types:
            if rtype == "Patient":
                items.append((fetcher.get(f"{fetcher.base}Patient/{patient_id}"), None))
            else:
                items.extend(fetcher.search(rtype, patient_id))
        for ref in medications:
            items.append((fetcher.get(f"{fetcher.base}{ref}"), None))
        return items
    finally:
        fetcher.client.close()


async def _fetch(request: Request, client: CdsClient, patient_id: str, types: set[str],
                 medications: list[str], deadline: float) -> list[tuple[Any, str | None]]:
    """Each resource type in its own worker thread, all within one deadline."""
    base = request.fhirServer
    if not base:
        raise PreconditionFailed("prefetch incomplete and no fhirServer given")
    if not client.allows_fhir(base):
        raise PreconditionFailed("fhirServer is not a FHIR base configured for this client")
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    jobs = [asyncio.to_thread(_fetch_sync, base, token, deadline, patient_id, [t], [])
            for t in sorted(types)]
    if medications:
        jobs.append(asyncio.to_thread(_fetch_sync, base, token, deadline, patient_id, [],
                                      medications))
    try:
        parts = await asyncio.wait_for(asyncio.gather(*jobs), deadline)
    except TimeoutError as exc:
        raise PreconditionFailed(f"FHIR server did not answer within {deadline:g} s") from exc
    except InputError as exc:
        raise PreconditionFailed("FHIR server could not be read") from exc
    return [item for part in parts for item in part]


async def load_history(request: Request, client: CdsClient, patient_id: str,
                       deadline: float) -> History:
    """Prefetch plus what the FHIR server adds, read into the domain's Patient."""
    started = time.monotonic()
    have, missing = split_prefetch(request.prefetch)
    fetched: list[str] = sorted(missing)
    if missing:
        have = [(r, u) for r, u in have if r.get("resourceType") not in missing]
        have += await _fetch(request, client, patient_id, missing, [], deadline)
    have = _dedupe(have)
    medications = _missing_medications(have)
    if medications:  # referred to by a medication record, not in the prefetch (no _include)
        left = max(0.1, deadline - (time.monotonic() - started))
        have += await _fetch(request, client, patient_id, set(), medications, left)
        fetched.append("Medication")
    name = f"CDS request {request.hookInstance} Patient/{patient_id}"
    try:
        read = await asyncio.to_thread(read_fhir_resources, have, name, patient_id=patient_id)
    except InputError as exc:
        if "nothing to assess" in exc.message:
            return History(None, fetched, have)
        raise
    return History(read, fetched, have)
