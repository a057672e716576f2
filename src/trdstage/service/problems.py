"""Errors as RFC 9457 problem documents (`application/problem+json`), or as a FHIR
OperationOutcome when the request speaks FHIR (`application/fhir+json` in Accept or
Content-Type). Every problem names the place (`where`) when there is one and carries the
request id; none carries patient data or a stack trace."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
TYPE_BASE = "https://trdstage.invalid/problems/"  # documented in docs/service.md

TITLES = {400: "Bad request", 401: "Authentication required", 403: "Forbidden",
          404: "Not found", 405: "Method not allowed", 406: "Not acceptable",
          409: "Conflict", 413: "Content too large", 415: "Unsupported media type",
          422: "Unprocessable content", 429: "Too many requests",
          500: "Internal server error", 503: "Service unavailable"}
SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
         405: "method-not-allowed", 406: "not-acceptable", 409: "conflict",
         413: "too-large", 415: "unsupported-media-type", 422: "invalid-input",
         429: "rate-limited", 500: "internal", 503: "unavailable"}
# OperationOutcome.issue.code (http://hl7.org/fhir/issue-type) per status
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 406: "not-supported", 409: "conflict",
               413: "too-costly", 415: "not-supported", 422: "invalid", 429: "throttled",
               500: "exception", 503: "transient"}


class Problem(Exception):
    """Raise in an endpoint or dependency: becomes the problem response."""

    def __init__(self, status: int, detail: str, *, where: str | None = None,
                 headers: dict[str, str] | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.where = where
        self.headers = headers or {}
        self.title = title or TITLES.get(status, "Error")


def wants_fhir(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    ctype = request.headers.get("content-type", "")
    if FHIR_JSON in accept:
        return True
    if "application/json" in accept or PROBLEM_JSON in accept:
        return False
    return ctype.startswith(FHIR_JSON)


def problem_body(problem: Problem, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + SLUGS.get(problem.status, "error"),
        "title": problem.title, "status": problem.status, "detail": problem.detail,
        "instance": request.url.path,
    }
    if problem.where:
        body["where"] = problem.where
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["request_id"] = rid
    return body


def operation_outcome(problem: Problem, request: Request) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error",
                             "code": ISSUE_CODES.get(problem.status, "processing"),
                             "diagnostics": problem.detail}
    if problem.where:
        issue["location"] = [problem.where]
    body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": [issue]}
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["id"] = rid
    return body


def problem_response(problem: Problem, request: Request) -> Response:
    if wants_fhir(request):
        content, media = operation_outcome(problem, request), FHIR_JSON
    else:
        content, media = problem_body(problem, request), PROBLEM_JSON
    return Response(json.dumps(content), status_code=problem.status, media_type=media,
                    headers=problem.headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "Problem (RFC 9457)",
    "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "instance": {"type": "string"}, "where": {"type": "string"},
                   "request_id": {"type": "string"}},
}
OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "FHIR OperationOutcome",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"},
                   "issue": {"type": "array", "items": {"type": "object"}}},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error statuses."""
    return {s: {"description": TITLES.get(s, "Error"),
                "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA},
                            FHIR_JSON: {"schema": OUTCOME_SCHEMA}}} for s in statuses}
