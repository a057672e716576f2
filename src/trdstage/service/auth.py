"""Authentication and roles.

- Passwords: argon2id (`hash_password`, `verify_password`); `sign_in()` checks one and records
  the sign-in (or the failed one) in the audit trail.
- API tokens: `trd_` + 43 random characters, shown once; only their SHA-256 is stored
  (`issue_token`, `find_token`). A token acts as its account.
- OIDC: a JWT from the site's identity provider ([oidc] settings), checked against its JWKS
  (issuer, audience, expiry, allowed algorithms); its `username_claim` names the account.
- FastAPI dependencies: `current_account` (401 when missing, unknown, expired or revoked;
  429 over the per-account rate limit) and `require_role("admin")` (403). Every refusal is
  an audit event.

Roles: `clinician` reads and writes patients and assessments; `admin` also manages accounts
and reads the audit trail.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from trdstage.service import audit
from trdstage.service.db import Database
from trdstage.service.models import Account, ApiToken, utcnow
from trdstage.service.problems import Problem
from trdstage.service.settings import OidcSettings, Settings

ROLES = ("clinician", "admin")
TOKEN_PREFIX = "trd_"  # noqa: S105 - the visible start of every API token, not a secret
LAST_USED_EVERY = timedelta(minutes=5)  # how often a token's last use is written
_HASHER = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile
_DUMMY_HASH = _HASHER.hash("not-a-password")  # same work for unknown names (no timing hint)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the argon2 hash `stored` (False for None)."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, account: Account, *, days: float | None = None,
                label: str = "") -> tuple[str, ApiToken]:
    """A new token for `account` (added to the session): (the token, shown once; its row)."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(account_id=account.id, digest=token_digest(plain), prefix=plain[:10],
                   label=label,
                   expires=utcnow() + timedelta(days=days) if days is not None else None)
    session.add(row)
    session.flush()
    return plain, row


def find_token(session: Session, plain: str, now: datetime | None = None) -> ApiToken | None:
    """The live token row for `plain` (None if unknown, revoked, expired or its account is
    disabled)."""
    row = session.scalars(select(ApiToken).where(
        ApiToken.digest == token_digest(plain))).one_or_none()
    now = now or utcnow()
    if row is None or row.revoked is not None or not row.account.active:
        return None
    if row.expires is not None and row.expires <= now:
        return None
    return row


def sign_in(session: Session, name: str, password: str,
            request: Request | None = None) -> Account | None:
    """Check a name and password; record the sign-in or the failure (not committed)."""
    account = session.scalars(select(Account).where(Account.name == name)).one_or_none()
    ok = verify_password(account.password_hash if account else None, password)
    if account is None or not ok or not account.active:
        audit.record(session, actor=audit.Actor(name[:100], "anonymous"), kind=audit.LOGIN,
                     action=audit.Action.execute, outcome=audit.Outcome.minor_failure,
                     request=request, detail="wrong name or password, or account disabled")
        return None
    audit.record(session, actor=audit.Actor.of(account), kind=audit.LOGIN,
                 action=audit.Action.execute, request=request)
    return account


class RateLimiter:
    """A fixed one-minute window per key (account or address), in this process's memory."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, key: str) -> int | None:
        """Count one request; the seconds to wait when over the limit, else None."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic()
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 100_000:  # bounded memory under many keys
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        if count > self.per_minute:
            return max(1, int(60 - now % 60))
        return None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its account, and how it signed in."""

    account: Account
    method: str  # "token" | "oidc"
    token_id: int | None = None

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor.of(self.account)

    @property
    def is_admin(self) -> bool:
        return self.account.role == "admin"


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    """A session for one request. The endpoint commits before it returns (so the response
    is sent after the data is on disk); anything left uncommitted is rolled back."""
    with db.session() as session:
        yield session


def refuse(session: Session, request: Request, status: int, detail: str,
           kind: audit.Kind | None = None, actor: audit.Actor = audit.ANONYMOUS,
           headers: dict[str, str] | None = None, *, patient_id: str | None = None,
           action: audit.Action = audit.Action.execute) -> Problem:
    """Record a refusal (what the request did so far is rolled back first) and commit it;
    returns the Problem to raise."""
    session.rollback()
    audit.record(session, actor=actor, kind=kind or audit.rest("operation"), action=action,
                 outcome=audit.Outcome.minor_failure, request=request, detail=detail,
                 patient_id=patient_id)
    session.commit()
    return Problem(status, detail, headers=headers)


_BEARER = {"WWW-Authenticate": 'Bearer realm="trdstage"'}


def _oidc_account(session: Session, settings: OidcSettings, token: str,
                  request: Request) -> Account | None:
    import jwt

    client = _jwks_client(request, settings.jwks_url)
    try:
        key = client.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token, key.key, algorithms=settings.algorithms, audience=settings.audience,
            issuer=settings.issuer, leeway=settings.leeway_seconds,
            options={"require": ["exp", "iss", "aud"]})
    except jwt.PyJWTError:
        return None
    name = claims.get(settings.username_claim)
    if not isinstance(name, str) or not name:
        return None
    account = session.scalars(select(Account).where(Account.name == name)).one_or_none()
    return account if account is not None and account.active else None


def _jwks_client(request: Request, url: str) -> Any:
    import jwt

    state = request.app.state
    client = getattr(state, "jwks_client", None)
    if client is None:
        client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)
        state.jwks_client = client
    return client


def current_principal(request: Request, session: Annotated[Session, Depends(get_session)],
                      ) -> Principal:
    """The caller, from `Authorization: Bearer <API token or OIDC JWT>`; 401 otherwise."""
    settings = get_settings(request)
    limiter: RateLimiter = request.app.state.limiter
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    principal: Principal | None = None
    if scheme.lower() == "bearer" and credential:
        if credential.startswith(TOKEN_PREFIX):
            row = find_token(session, credential)
            if row is not None:
                now = utcnow()
                if row.last_used is None or now - row.last_used > LAST_USED_EVERY:
                    row.last_used = now
                principal = Principal(row.account, "token", row.id)
        elif settings.oidc is not None and credential.count(".") == 2:
            account = _oidc_account(session, settings.oidc, credential, request)
            if account is not None:
                principal = Principal(account, "oidc")
    if principal is None:
        address = audit.client_address(request)
        wait = limiter.hit(f"failed:{address}")
        if wait is not None:
            raise Problem(429, "too many failed sign-ins from this address",
                          headers={"Retry-After": str(wait)})
        detail = ("missing bearer token" if not credential else
                  "unknown, expired or revoked token")
        raise refuse(session, request, 401, detail, audit.LOGIN, headers=_BEARER)
    wait = limiter.hit(f"account:{principal.account.id}")
    if wait is not None:
        raise refuse(session, request, 429, f"more than {limiter.per_minute} requests a minute",
                     actor=principal.actor, headers={"Retry-After": str(wait)})
    request.state.account_id = principal.account.id
    session.commit()  # end the look-up's transaction: no lock held while the request works
    return principal


def require_role(*roles: str) -> Callable[..., Principal]:
    """A dependency: the caller, if its role is one of `roles` (admins pass every check)."""

    def check(request: Request, session: Annotated[Session, Depends(get_session)],
              principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.account.role in roles or principal.is_admin:
            return principal
        raise refuse(session, request, 403, f"this needs the {' or '.join(roles)} role",
                     actor=principal.actor)

    return check


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Clinician = Annotated[Principal, Depends(require_role("clinician"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
DbSession = Annotated[Session, Depends(get_session)]


def current_account(principal: CurrentPrincipal) -> Account:
    """The authenticated account (dependency)."""
    return principal.account
