"""Service settings: a TOML file (`--config FILE` or `TRDSTAGE_CONFIG`), every key optional.

    [server]
    host = "127.0.0.1"            # loopback unless told otherwise
    port = 8080
    database = "sqlite:///trdstage-data/trdstage.sqlite"   # any SQLAlchemy URL
    max_body_mb = 32
    cors_origins = []             # exact origins allowed to call from a browser
    rate_limit_per_minute = 600   # per account (and per address for failed sign-ins); 0 = off
    base_url = ""                 # public URL behind a reverse proxy ("" = http://host:port)
    forwarded_allow_ips = []      # proxies trusted for X-Forwarded-For / -Proto
    log_level = "info"

    [oidc]                        # optional: bearer JWTs from the site's identity provider
    issuer = "https://idp.example.org"
    audience = "trdstage"
    jwks_url = "https://idp.example.org/.well-known/jwks.json"
    username_claim = "sub"        # the claim naming the trdstage account
    algorithms = ["RS256", "ES256"]

`[cds]`, `[smart]` and `[webapp]` belong to the CDS Hooks service and the web app: kept here as
tables (`settings.cds` ...) and read by those parts; any other top-level table is refused.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_VAR = "TRDSTAGE_CONFIG"
DEFAULT_DATABASE = "sqlite:///trdstage-data/trdstage.sqlite"


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    database: str = DEFAULT_DATABASE
    max_body_mb: float = Field(default=32, gt=0)
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(default=600, ge=0)
    base_url: str = ""
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    log_level: str = "info"

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcards(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin in ("*", "null") or not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an exact http(s) origin")
        return [o.rstrip("/") for o in value]

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


class OidcSettings(_Strict):
    issuer: str
    audience: str
    jwks_url: str
    username_claim: str = "sub"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    leeway_seconds: int = Field(default=30, ge=0, le=300)


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    oidc: OidcSettings | None = None
    # Owned by the CDS Hooks service and the web app (their own code validates them).
    cds: dict[str, Any] = Field(default_factory=dict)
    smart: dict[str, Any] = Field(default_factory=dict)
    webapp: dict[str, Any] = Field(default_factory=dict)
    # The TOML as read (empty for the embedded default), and where it came from.
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)
    source: str = Field(default="<defaults>", exclude=True)

    def with_server(self, **changes: Any) -> Settings:
        """A copy with some [server] keys replaced (command line options)."""
        server = self.server.model_copy(update={k: v for k, v in changes.items()
                                                if v is not None})
        return self.model_copy(update={"server": ServerSettings.model_validate(
            server.model_dump())})


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path`, else from $TRDSTAGE_CONFIG, else the embedded defaults."""
    if path is None and os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    if path is None:
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: malformed TOML: {exc}") from exc
    return settings_from_mapping(raw, str(path))


def settings_from_mapping(raw: dict[str, Any], source: str = "<settings>") -> Settings:
    try:
        parsed = Settings.model_validate({k: v for k, v in raw.items()
                                          if k not in ("raw", "source")})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = ("unknown key" if first["type"] == "extra_forbidden"
                   else first["msg"])
        raise SettingsError(f"{source}: {where}: {message}") from exc
    for key in ("raw", "source"):
        if key in raw:
            raise SettingsError(f"{source}: {key}: unknown key")
    return parsed.model_copy(update={"raw": raw, "source": source})
