"""A small FHIR R4 server over the sandbox's synthetic patients (read-only, loopback only).

`Patient/{id}`, `Medication/{id}` and `{type}?patient={id}` searches with `code`, `category`
and `_count`, paged (`next` links carry `_offset`); a bearer token is required; errors are
OperationOutcomes. Enough for the CDS service's FHIR fall-back and for a SMART app's reads;
not a general FHIR server.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"
SEARCH_TYPES = ("Condition", "MedicationRequest", "MedicationStatement", "MedicationDispense",
                "Procedure", "Observation", "Encounter")
MAX_COUNT = 100


def load_patients() -> dict[str, list[dict[str, Any]]]:
    """The bundled sandbox patients: patient id -> its resources."""
    out: dict[str, list[dict[str, Any]]] = {}
    folder = resources.files("trdstage.service.sandbox") / "patients"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".json"):
            continue
        doc = json.loads(item.read_text(encoding="utf-8"))
        found = [e["resource"] for e in doc.get("entry") or []]
        pid = next(r["id"] for r in found if r["resourceType"] == "Patient")
        out[pid] = found
    return out


def outcome(code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


def _codes(res: dict[str, Any], key: str) -> set[str]:
    concepts = res.get(key)
    if isinstance(concepts, dict):
        concepts = [concepts]
    out: set[str] = set()
    for c in concepts or []:
        for coding in c.get("coding") or []:
            out.add(f"{coding.get('system')}|{coding.get('code')}")
            out.add(str(coding.get("code")))
    return out


def matches(res: dict[str, Any], params: dict[str, str]) -> bool:
    """Token search on `code` and `category` (system|code or code, comma = or)."""
    for name in ("code", "category"):
        if name in params:
            wanted = set(params[name].split(","))
            key = "medicationCodeableConcept" if name == "code" and \
                res["resourceType"].startswith("Medication") else name
            if not wanted & _codes(res, key):
                return False
    return True


def search(store: dict[str, list[dict[str, Any]]], rtype: str, params: dict[str, str]) -> list[
        dict[str, Any]]:
    pid = params.get("patient", "").removeprefix("Patient/")
    return [r for r in store.get(pid, []) if r["resourceType"] == rtype and matches(r, params)]


@dataclass
class FhirSandbox:
    """The server's data and behaviour; tests change `delay_s`, `failing` or `page_size`."""

    patients: dict[str, list[dict[str, Any]]] = field(default_factory=load_patients)
    token: str = ""
    page_size: int = 50
    delay_s: float = 0.0
    failing: set[str] = field(default_factory=set)  # resource types answered with HTTP 500
    requests: list[str] = field(default_factory=list)  # paths asked for (tests)
    tokens: set[str] = field(default_factory=set)  # more accepted tokens (e.g. issued by a
    # SMART authorization server mounted beside the sandbox)

    def accepts(self, authorization: str | None) -> bool:
        if not self.token and not self.tokens:
            return True
        given = (authorization or "").removeprefix("Bearer ")
        return bool(given) and (given == self.token or given in self.tokens)

    def resource(self, rtype: str, rid: str) -> dict[str, Any] | None:
        for found in self.patients.values():
            for r in found:
                if r["resourceType"] == rtype and r.get("id") == rid:
                    return r
        return None


def _send(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON,
                        headers={"Cache-Control": "no-store"})


def build_fhir_app(data: FhirSandbox) -> FastAPI:
    app = FastAPI(title="trdstage sandbox FHIR server", openapi_url=None, docs_url=None,
                  redoc_url=None)

    @app.get("/metadata")
    async def metadata() -> JSONResponse:
        return _send(200, {"resourceType": "CapabilityStatement", "status": "active",
                           "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"]})

    @app.get("/{rtype}/{rid}")
    async def read(rtype: str, rid: str, request: Request) -> JSONResponse:
        refused = await _guard(data, request, rtype)
        if refused is not None:
            return refused
        found = data.resource(rtype, rid) if rtype in ("Patient", "Medication") else None
        if found is None:
            return _send(404, outcome("not-found", f"{rtype}/{rid} is not on this server"))
        return _send(200, found)

    @app.get("/{rtype}")
    async def find(rtype: str, request: Request) -> JSONResponse:
        refused = await _guard(data, request, rtype)
        if refused is not None:
            return refused
        if rtype not in SEARCH_TYPES:
            return _send(400, outcome("not-supported", f"search on {rtype} is not supported"))
        params = dict(request.query_params)
        if "patient" not in params:
            return _send(400, outcome("required", "search needs patient="))
        try:
            count = min(MAX_COUNT, max(1, int(params.get("_count", data.page_size))))
            offset = max(0, int(params.get("_offset", 0)))
        except ValueError:
            return _send(400, outcome("value", "_count and _offset are integers"))
        count = min(count, data.page_size)
        hits = search(data.patients, rtype, params)
        page = hits[offset:offset + count]
        base = str(request.url.replace(query="")).rsplit("/", 1)[0]
        link = [{"relation": "self", "url": str(request.url)}]
        if offset + count < len(hits):
            nxt = {**params, "_offset": str(offset + count), "_count": str(count)}
            link.append({"relation": "next", "url": str(request.url.replace(
                query=urlencode(nxt)))})
        return _send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                           "link": link,
                           "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                                      "resource": r, "search": {"mode": "match"}}
                                     for r in page]})

    return app


async def _guard(data: FhirSandbox, request: Request, rtype: str) -> JSONResponse | None:
    data.requests.append(request.url.path)
    if data.delay_s:
        await asyncio.sleep(data.delay_s)
    if not data.accepts(request.headers.get("authorization")):
        return _send(401, outcome("login", "a valid bearer token is required"))
    if rtype in data.failing:
        return _send(500, outcome("exception", "the sandbox was told to fail"))
    return None
