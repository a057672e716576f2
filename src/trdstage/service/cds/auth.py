"""Verifying the JWT a CDS client sends with every call (CDS Hooks 2.0.1 §"Trusting CDS Clients").

A token is accepted only when every check passes: a configured `iss` (and `tenant`, where the
client names one); an asymmetric algorithm the client is configured for (ES384 and RS384 by
default; never `none` or HMAC); a `kid` found in the client's keys (inline, or fetched from its
configured `jwks_url` with a deadline; a `jku` header must equal that URL); a valid signature;
`aud` equal to the exact URL called; `exp`, `iat` (and `nbf` when sent) within a small skew, a
lifetime of at most an hour; a `jti` not seen before within the token's lifetime. The reason a
token fails is returned to the caller for the audit record only; the HTTP answer is a bare 401.
The token itself is never logged or stored.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt

from trdstage.service.cds.settings import CdsClient, CdsSettings

ASYMMETRIC = {"ES384": "EC", "ES256": "EC", "RS384": "RSA", "RS256": "RSA"}
JWKS_MAX_BYTES = 256 * 1024
REFETCH_AFTER_S = 10.0  # an unknown kid refetches the JWKS at most this often


class AuthFailure(Exception):
    """Why a JWT was refused (for the audit record; never sent to the client)."""


@dataclass(frozen=True)
class Caller:
    client: CdsClient
    iss: str
    tenant: str | None
    jti: str
    sub: str | None


class Replay(Protocol):
    def add(self, iss: str, jti: str, until: float) -> bool:
        """Record the jti; False when it was already recorded and has not expired."""


class ReplayCache:
    """`jti` values seen, per issuer, kept until the token's expiry (in memory, one process)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def add(self, iss: str, jti: str, until: float) -> bool:
        """Record the jti; False when it was already recorded and has not expired."""
        now = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            seen = self._seen.get((iss, jti))
            if seen is not None and seen > now:
                return False
            self._seen[(iss, jti)] = until
            return True


JwksFetcher = Callable[[str, float], Awaitable[dict[str, Any]]]


async def fetch_jwks(url: str, timeout: float) -> dict[str, Any]:
    """GET a JWK Set (bounded in time and size; no redirects)."""
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
    if response.status_code != 200 or len(response.content) > JWKS_MAX_BYTES:
        raise AuthFailure(f"JWKS {url}: HTTP {response.status_code}")
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuthFailure(f"JWKS {url}: not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise AuthFailure(f"JWKS {url}: not a JWK Set")
    return data


class JwksCache:
    def __init__(self, ttl_s: int, timeout_s: float, fetcher: JwksFetcher = fetch_jwks) -> None:
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.fetcher = fetcher
        self._sets: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def key(self, client: CdsClient, kid: str) -> dict[str, Any]:
        if client.jwks is not None:
            found = _find(client.jwks, kid)
            if found is None:
                raise AuthFailure(f"kid {kid!r} not in the inline jwks")
            return found
        assert client.jwks_url is not None  # noqa: S101 - the settings guarantee one source
        url = client.jwks_url
        now = time.monotonic()
        cached = self._sets.get(url)
        if cached is not None:
            found = _find(cached[1], kid)
            if found is not None and now - cached[0] < self.ttl_s:
                return found
            if found is None and now - cached[0] < REFETCH_AFTER_S:
                raise AuthFailure(f"kid {kid!r} not in {url}")
        async with self._lock:
            try:
                data = await asyncio.wait_for(self.fetcher(url, self.timeout_s), self.timeout_s)
            except (httpx.HTTPError, TimeoutError) as exc:
                raise AuthFailure(f"JWKS {url}: {type(exc).__name__}") from exc
            self._sets[url] = (time.monotonic(), data)
        found = _find(data, kid)
        if found is None:
            raise AuthFailure(f"kid {kid!r} not in {url}")
        return found


def _find(jwks: dict[str, Any], kid: str) -> dict[str, Any] | None:
    for k in jwks.get("keys") or []:
        if isinstance(k, dict) and k.get("kid") == kid:
            return k
    return None


class Verifier:
    def __init__(self, settings: CdsSettings, jwks: JwksCache | None = None,
                 replay: Replay | None = None) -> None:
        self.settings = settings
        self.jwks = jwks or JwksCache(settings.jwks_cache_s, settings.jwks_timeout_s)
        self.replay: Replay = replay or ReplayCache()

    async def verify(self, authorization: str | None, audience: str) -> Caller:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthFailure("no bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"malformed JWT ({type(exc).__name__})") from exc
        iss = unverified.get("iss")
        tenant = unverified.get("tenant")
        if not isinstance(iss, str) or (tenant is not None and not isinstance(tenant, str)):
            raise AuthFailure("iss missing")
        client = self.settings.client(iss, tenant)
        if client is None:
            raise AuthFailure("unknown iss or tenant")
        alg = header.get("alg")
        if alg not in ASYMMETRIC or alg not in client.algorithms:
            raise AuthFailure(f"algorithm {alg!r} not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("no kid")
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise AuthFailure("jku is not the client's configured jwks_url")
        jwk = await self.jwks.key(client, kid)
        if jwk.get("kty") != ASYMMETRIC[alg] or jwk.get("alg", alg) != alg:
            raise AuthFailure(f"key {kid!r} does not fit {alg}")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=audience, issuer=iss,
                leeway=self.settings.leeway_s,
                options={"require": ["iss", "aud", "exp", "iat", "jti"], "verify_iat": True})
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"JWT refused ({type(exc).__name__})") from exc
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthFailure("jti missing")
        if exp - iat > self.settings.max_token_lifetime_s:
            raise AuthFailure("lifetime too long")
        if not self.replay.add(iss, jti, float(exp) + self.settings.leeway_s):
            raise AuthFailure("jti replayed")
        sub = claims.get("sub")
        return Caller(client=client, iss=iss, tenant=tenant, jti=jti,
                      sub=sub if isinstance(sub, str) else None)
