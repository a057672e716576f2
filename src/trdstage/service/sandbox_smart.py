"""A test EHR for SMART App Launch 2.x: authorization server and FHIR server in one loopback app.

For tests and demonstrations only (synthetic patients, auto-approved sign-in). It checks what a
SMART 2 server must: a registered client and its exact redirect URI, `aud` equal to the FHIR
base, PKCE with S256 only (never plain), a single-use authorization code valid for 60 s,
the client secret (client_secret_basic) and the code verifier at the token endpoint. Its token
response carries the launch context (`patient`, `need_patient_banner`) and an RS256 `id_token`
with `fhirUser`; its FHIR endpoints answer only a live bearer token, only for that patient.

Paths: `/fhir/.well-known/smart-configuration`, `/fhir/...` (FHIR R4 read and search),
`/auth/authorize`, `/auth/token`, `/auth/jwks`, `/ehr` (a chart with a "launch" link per
patient), `/ehr/launch?patient=...` (starts an EHR launch of the registered app).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

WELL_KNOWN = "/fhir/.well-known/smart-configuration"
CODE_SECONDS = 60
TOKEN_SECONDS = 3600
USER = "Practitioner/sandbox-clinician"
SEARCHED = ("Condition", "MedicationStatement", "MedicationRequest", "MedicationDispense",
            "Procedure", "Observation", "Encounter")


@dataclass
class Client:
    client_id: str
    secret: str
    redirect_uri: str
    launch_url: str


@dataclass
class SmartSandbox:
    base_url: str  # e.g. http://127.0.0.1:8123 (no trailing slash)
    clients: dict[str, Client] = field(default_factory=dict)
    patients: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    need_patient_banner: bool = True
    static_token: str = ""  # when set, the token issued (the host EHR's FHIR server checks it)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    launches: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # why requests were refused (for tests)
    lock: threading.Lock = field(default_factory=threading.Lock)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def iss(self) -> str:
        return f"{self.base_url}/fhir"

    def add_bundle(self, bundle: dict[str, Any]) -> str:
        """Serve the resources of a Bundle as one patient's record; returns the patient id."""
        resources = [e["resource"] for e in bundle.get("entry") or [] if "resource" in e]
        pid = str(next(r["id"] for r in resources if r.get("resourceType") == "Patient"))
        self.patients[pid] = resources
        return pid

    def refuse(self, why: str) -> None:
        with self.lock:
            self.refused.append(why)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "sandbox-1",
            "n": b64(numbers.n), "e": b64(numbers.e)}


def _oauth_error(status: int, error: str, text: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": text}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>"
                        f"{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>"
                        f"{body}</main></body></html>")


def _subject(resource: dict[str, Any]) -> str:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return str(ref["reference"]).split("/")[-1]
    return ""


def build_app(sb: SmartSandbox) -> FastAPI:
    """The test EHR alone: the SMART endpoints and a FHIR server answering their tokens."""
    app = FastAPI(title="trdstage SMART test EHR", openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.include_router(smart_router(sb, fhir=True))
    return app


def attach(app: FastAPI, sb: SmartSandbox) -> None:
    """Add the SMART endpoints to another test EHR app (`trdstage sandbox`) whose FHIR server
    at /fhir accepts `sb.static_token`; the configuration route goes before its /fhir mount."""
    app.include_router(smart_router(sb, fhir=False))
    app.router.routes.insert(0, APIRoute(WELL_KNOWN, _configuration(sb), methods=["GET"]))


def _configuration(sb: SmartSandbox) -> Callable[[], JSONResponse]:
    def configuration() -> JSONResponse:
        return JSONResponse({
            "issuer": sb.base_url, "jwks_uri": f"{sb.base_url}/auth/jwks",
            "authorization_endpoint": f"{sb.base_url}/auth/authorize",
            "token_endpoint": f"{sb.base_url}/auth/token",
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "grant_types_supported": ["authorization_code"],
            "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient",
                                 "patient/*.rs"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": ["launch-ehr", "launch-standalone", "client-confidential-symmetric",
                             "context-ehr-patient", "context-standalone-patient",
                             "sso-openid-connect", "permission-v2", "permission-patient"],
        }, headers={"Access-Control-Allow-Origin": "*"})

    return configuration


def smart_router(sb: SmartSandbox, fhir: bool = True) -> APIRouter:
    app = APIRouter()

    app.add_api_route(WELL_KNOWN, _configuration(sb), methods=["GET"])

    @app.get("/auth/jwks")
    def jwks() -> JSONResponse:
        return JSONResponse({"keys": [_jwk(sb.key)]})

    @app.get("/ehr")
    def chart() -> HTMLResponse:
        items = "".join(
            f'<li>Patient {escape(pid)}: <a href="/ehr/launch?{urlencode({"patient": pid})}">'
            f"Open trdstage for this patient</a></li>" for pid in sorted(sb.patients))
        return _page("Test EHR", f"<ul>{items}</ul>")

    @app.get("/ehr/launch")
    def ehr_launch(patient: str, client_id: str = "") -> Response:
        client = sb.clients.get(client_id) if client_id else next(iter(sb.clients.values()))
        if client is None or patient not in sb.patients:
            return _page("Cannot launch", "<p>Unknown app or patient.</p>")
        launch = secrets.token_urlsafe(16)
        with sb.lock:
            sb.launches[launch] = patient
        query = urlencode({"iss": sb.iss, "launch": launch})
        return RedirectResponse(f"{client.launch_url}?{query}", status_code=302)

    @app.get("/auth/authorize")
    def authorize(request: Request) -> Response:
        q = dict(request.query_params)
        client = sb.clients.get(q.get("client_id", ""))
        if client is None or q.get("redirect_uri") != client.redirect_uri:
            sb.refuse("client or redirect_uri")
            return _page("Refused", "<p>Unknown client or redirect URI not registered.</p>")

        def back(**params: str) -> Response:
            if q.get("state"):
                params["state"] = q["state"]
            return RedirectResponse(f"{client.redirect_uri}?{urlencode(params)}",
                                    status_code=302)

        if q.get("response_type") != "code":
            sb.refuse("response_type")
            return back(error="unsupported_response_type")
        if not q.get("state"):
            sb.refuse("state")
            return back(error="invalid_request", error_description="state is required")
        if q.get("aud", "").rstrip("/") != sb.iss:
            sb.refuse("aud")
            return back(error="invalid_request", error_description="aud is not this server")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            sb.refuse("pkce")
            return back(error="invalid_request", error_description="PKCE S256 is required")
        scopes = q.get("scope", "").split()
        if "launch" in scopes:
            with sb.lock:
                patient = sb.launches.pop(q.get("launch", ""), None)
            if patient is None:
                sb.refuse("launch")
                return back(error="invalid_request", error_description="unknown launch")
        elif "launch/patient" in scopes and sb.patients:
            patient = sorted(sb.patients)[0]  # the standalone patient picker, auto-approved
        else:
            sb.refuse("scope")
            return back(error="invalid_scope", error_description="no patient context asked")
        code = secrets.token_urlsafe(24)
        with sb.lock:
            sb.codes[code] = {"client_id": client.client_id, "redirect_uri": client.redirect_uri,
                              "challenge": q["code_challenge"], "patient": patient,
                              "scope": " ".join(scopes), "expires": time.time() + CODE_SECONDS}
        return back(code=code)

    @app.post("/auth/token")
    async def token(request: Request) -> JSONResponse:
        form = dict((await request.form()).items())
        auth = request.headers.get("authorization", "")
        try:
            kind, raw = auth.split(" ", 1)
            cid, secret = base64.b64decode(raw).decode().split(":", 1)
        except ValueError:
            sb.refuse("client authentication")
            return _oauth_error(401, "invalid_client", "client_secret_basic required")
        from urllib.parse import unquote_plus

        cid, secret = unquote_plus(cid), unquote_plus(secret)
        client = sb.clients.get(cid)
        if kind.lower() != "basic" or client is None or not hmac.compare_digest(
                client.secret, secret):
            sb.refuse("client authentication")
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "authorization_code only")
        with sb.lock:
            grant = sb.codes.pop(str(form.get("code", "")), None)  # single use
        if grant is None or grant["expires"] < time.time() or grant["client_id"] != cid:
            sb.refuse("code")
            return _oauth_error(400, "invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            sb.refuse("redirect_uri")
            return _oauth_error(400, "invalid_grant", "redirect_uri differs")
        verifier = str(form.get("code_verifier", ""))
        if not verifier or not hmac.compare_digest(s256(verifier), grant["challenge"]):
            sb.refuse("code_verifier")
            return _oauth_error(400, "invalid_grant", "PKCE code_verifier does not match")
        access = sb.static_token or secrets.token_urlsafe(32)
        with sb.lock:
            sb.tokens[access] = {"patient": grant["patient"],
                                 "expires": time.time() + TOKEN_SECONDS}
        body: dict[str, Any] = {
            "access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS,
            "scope": grant["scope"], "patient": grant["patient"],
            "need_patient_banner": sb.need_patient_banner}
        if "openid" in grant["scope"].split():
            now = int(time.time())
            body["id_token"] = jwt.encode(
                {"iss": sb.base_url, "sub": "sandbox-clinician", "aud": cid, "iat": now,
                 "exp": now + 300, "fhirUser": f"{sb.iss}/{USER}"},
                sb.key, algorithm="RS256", headers={"kid": "sandbox-1"})
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _patient_of(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        grant = sb.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") \
            else None
        if grant is None or grant["expires"] < time.time():
            return None
        return str(grant["patient"])

    def _fhir(status: int, body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), status_code=status,
                        media_type="application/fhir+json")

    def _outcome(code: str, text: str) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": code, "diagnostics": text}]}

    if not fhir:
        return app

    @app.get("/fhir/{rtype}/{rid}")
    def read(rtype: str, rid: str, request: Request) -> Response:
        patient = _patient_of(request)
        if patient is None:
            sb.refuse("bearer token")
            return _fhir(401, _outcome("login", "a valid bearer token is required"))
        for resource in sb.patients.get(patient, []):
            if resource.get("resourceType") == rtype and resource.get("id") == rid:
                return _fhir(200, resource)
        return _fhir(404, _outcome("not-found", f"{rtype}/{rid} is not in this patient's "
                                   "record"))

    @app.get("/fhir/{rtype}")
    def search(rtype: str, request: Request, patient: str = "") -> Response:
        allowed = _patient_of(request)
        if allowed is None:
            sb.refuse("bearer token")
            return _fhir(401, _outcome("login", "a valid bearer token is required"))
        if patient != allowed:
            sb.refuse("patient scope")
            return _fhir(403, _outcome("forbidden", "the token is for another patient"))
        hits = [r for r in sb.patients.get(patient, [])
                if r.get("resourceType") == rtype and _subject(r) == patient]
        return _fhir(200, {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                           "link": [{"relation": "self", "url": str(request.url)}],
                           "entry": [{"fullUrl": f"{sb.iss}/{rtype}/{r['id']}", "resource": r,
                                      "search": {"mode": "match"}} for r in hits]})

    return app


def example_sandbox(base_url: str, client_id: str, secret: str, app_url: str) -> SmartSandbox:
    """A sandbox serving the bundled FHIR example, with trdstage registered at `app_url`."""
    sb = SmartSandbox(base_url.rstrip("/"))
    sb.clients[client_id] = Client(client_id, secret, f"{app_url}/app/smart/callback",
                                   f"{app_url}/app/launch")
    example = Path(__file__).parents[1] / "examples" / "fhir" / "trd-fhir-example.json"
    sb.add_bundle(json.loads(example.read_text(encoding="utf-8")))
    return sb
