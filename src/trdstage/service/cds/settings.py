"""The `[cds]` settings: the CDS clients (EHRs) allowed to call the service.

```toml
[cds]
fhir_deadline_s = 2.0
cors_origins = ["https://sandbox.cds-hooks.org"]

[[cds.clients]]
iss = "https://ehr.example.org"
jwks_url = "https://ehr.example.org/.well-known/jwks.json"   # or: jwks = { keys = [...] }
fhir_servers = ["https://ehr.example.org/fhir/r4"]
tenant = "hospital-a"         # optional: then the JWT's tenant claim must equal it
algorithms = ["ES384", "RS384"]
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Algorithm = Literal["ES384", "RS384", "ES256", "RS256"]
DEFAULT_ALGORITHMS: list[Algorithm] = ["ES384", "RS384"]


def _http_url(value: str, what: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{what} must be an http(s) URL")
    return value


class CdsClient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, description="The JWT issuer the EHR signs with.")
    jwks_url: str | None = Field(default=None, description="Where its public keys are (the "
                                 "only `jku` accepted).")
    jwks: dict[str, Any] | None = Field(default=None, description="Its public keys inline "
                                        "(a JWK Set), instead of jwks_url.")
    fhir_servers: list[str] = Field(default_factory=list, description="FHIR bases the service "
                                    "may call with this client's fhirAuthorization.")
    tenant: str | None = None
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))

    @field_validator("jwks_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _http_url(v, "jwks_url")

    @field_validator("fhir_servers")
    @classmethod
    def _bases(cls, v: list[str]) -> list[str]:
        return [_http_url(b, "fhir_servers entry").rstrip("/") for b in v]

    @model_validator(mode="after")
    def _one_key_source(self) -> CdsClient:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError(f"client {self.iss!r}: give exactly one of jwks_url or jwks")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError(f"client {self.iss!r}: jwks must be a JWK Set ({{keys = [...]}})")
        return self

    def allows_fhir(self, base: str) -> bool:
        return base.rstrip("/") in self.fhir_servers


class CdsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    policy: str = Field(default="default", description="Policy the hooks assess under "
                        "(bundled name or file).")
    clients: list[CdsClient] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    fhir_deadline_s: float = Field(default=2.0, gt=0, le=30)
    leeway_s: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on "
                          "exp/nbf/iat.")
    max_token_lifetime_s: int = Field(default=3600, ge=60, le=3600, description="A JWT whose "
                                      "exp is further than this past its iat is refused (the "
                                      "jti store keeps ids this long).")
    jwks_timeout_s: float = Field(default=2.0, gt=0, le=30)
    jwks_cache_s: int = Field(default=300, ge=0)
    docs_url: str = "https://github.com/trdstage/trdstage/blob/main/docs/cds-hooks.md"
    app_launch_url: str | None = Field(default=None, description="SMART launch URL of the "
                                       "clinician app (default: <base_url>/app/launch).")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for o in v:
            if o in ("*", "null") or not o.startswith(("https://", "http://")):
                raise ValueError(f"CORS origin {o!r}: give an exact http(s) origin")
        return v

    @model_validator(mode="after")
    def _unique(self) -> CdsSettings:
        seen = [(c.iss, c.tenant) for c in self.clients]
        if len(seen) != len(set(seen)):
            raise ValueError("two [[cds.clients]] with the same iss and tenant")
        return self

    def client(self, iss: str, tenant: str | None) -> CdsClient | None:
        """The configured client for this issuer (and tenant, where clients name one)."""
        for c in self.clients:
            if c.iss == iss and (c.tenant is None or c.tenant == tenant):
                return c
        return None
