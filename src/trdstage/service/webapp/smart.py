"""SMART App Launch 2.x, as a confidential client (authorization code, PKCE S256).

EHR launch: the EHR opens `/app/launch?iss=...&launch=...`; standalone: `/app/launch?iss=...`.
Only an `iss` listed in `[[smart.ehrs]]` is accepted. The app reads
`{iss}/.well-known/smart-configuration`, sends the user to its authorization endpoint with a
fresh `state` (256 bits) and PKCE challenge, and keeps the verifier on the server keyed by that
state; the callback accepts each state once, within ten minutes. The access token never leaves
the server.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]

from trdstage.service.webapp.settings import SmartEhr

PENDING_SECONDS = 600
TIMEOUT = 15.0


class SmartError(Exception):
    """A launch that cannot go on: the message is shown to the user (no token in it)."""


@dataclass(frozen=True)
class Pending:
    ehr: SmartEhr
    verifier: str
    token_endpoint: str
    issuer: str
    jwks_uri: str
    framed: bool
    created: float


class PendingLaunches:
    def __init__(self, limit: int = 10_000) -> None:
        self._items: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self.limit = limit

    def add(self, state: str, pending: Pending) -> None:
        with self._lock:
            now = time.monotonic()
            for key in [k for k, p in self._items.items() if now - p.created > PENDING_SECONDS]:
                del self._items[key]
            if len(self._items) >= self.limit:
                raise SmartError("too many launches in progress; try again in a few minutes")
            self._items[state] = pending

    def take(self, state: str) -> Pending | None:
        """The pending launch for `state`, once; None for an unknown, used or stale state."""
        with self._lock:
            pending = self._items.pop(state, None)
        if pending is None or time.monotonic() - pending.created > PENDING_SECONDS:
            return None
        return pending


def discover(iss: str) -> dict[str, Any]:
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        response = httpx.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise SmartError(f"cannot reach the EHR's SMART configuration ({url}): {exc}") from exc
    if response.status_code != 200:
        raise SmartError(f"{url} answered HTTP {response.status_code}")
    try:
        config = response.json()
    except ValueError as exc:
        raise SmartError(f"{url} did not answer JSON") from exc
    if not isinstance(config, dict):
        raise SmartError(f"{url} did not answer a JSON object")
    for key in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(config.get(key), str):
            raise SmartError(f"{url}: no {key}")
    if "S256" not in (config.get("code_challenge_methods_supported") or []):
        raise SmartError(f"{url}: the EHR does not offer PKCE S256, which SMART 2 requires")
    return config


def _client(ehr: SmartEhr) -> OAuth2Client:
    return OAuth2Client(client_id=ehr.client_id, client_secret=ehr.client_secret,
                        scope=None, redirect_uri=ehr.redirect_uri,
                        code_challenge_method="S256",
                        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
                        timeout=TIMEOUT)


def start(ehr: SmartEhr, launch: str | None, pending: PendingLaunches, framed: bool) -> str:
    """The authorization URL to send the browser to."""
    config = discover(ehr.iss)
    state = secrets.token_urlsafe(32)
    verifier = generate_token(64)
    scope = ("launch " if launch else "launch/patient ") + ehr.scope
    extra: dict[str, str] = {"aud": ehr.iss}
    if launch:
        extra["launch"] = launch
    with _client(ehr) as client:
        url, _ = client.create_authorization_url(
            config["authorization_endpoint"], state=state, code_verifier=verifier,
            scope=scope, **extra)
    pending.add(state, Pending(ehr, verifier, config["token_endpoint"],
                               str(config.get("issuer") or ""), str(config.get("jwks_uri") or ""),
                               framed, time.monotonic()))
    return str(url)


def finish(pending: Pending, code: str) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) for the token response and its context."""
    with _client(pending.ehr) as client:
        try:
            token = client.fetch_token(pending.token_endpoint, grant_type="authorization_code",
                                       code=code, code_verifier=pending.verifier)
        except Exception as exc:  # authlib raises its own OAuthError or httpx errors
            raise SmartError(f"the EHR refused the authorization code ({type(exc).__name__}: "
                             f"{getattr(exc, 'error', '') or 'token request failed'})") from exc
    if not token.get("access_token"):
        raise SmartError("the EHR's token response has no access_token")
    if not token.get("patient"):
        raise SmartError("the EHR launched no patient (no 'patient' in the token response)")
    return dict(token)


def fhir_user(pending: Pending, token: dict[str, Any]) -> str:
    """The user the EHR names in its signed id_token (fhirUser), or '' when it sent none."""
    id_token = token.get("id_token")
    if not id_token or not pending.jwks_uri:
        return ""
    import jwt

    try:
        key = jwt.PyJWKClient(pending.jwks_uri, timeout=int(TIMEOUT)).get_signing_key_from_jwt(
            id_token)
        claims = jwt.decode(id_token, key.key, algorithms=["RS256", "ES256"],
                            audience=pending.ehr.client_id, issuer=pending.issuer or None)
    except jwt.PyJWTError as exc:
        raise SmartError(f"the EHR's id_token does not verify ({type(exc).__name__})") from exc
    return str(claims.get("fhirUser") or claims.get("sub") or "")
