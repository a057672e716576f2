"""The web app's settings: the `[webapp]` and `[[smart.ehrs]]` tables of the service's TOML file.

```toml
[webapp]
idle_minutes = 15          # a session idle this long is signed out
cookie_secure = true       # session cookie only over HTTPS (keep true behind TLS)
default_policy = "default"

[[smart.ehrs]]
name = "Test EHR"
iss = "https://ehr.example.org/fhir"       # the FHIR base the EHR sends as iss
client_id = "trdstage"
client_secret = "..."                      # confidential client (client_secret_basic)
redirect_uri = "https://trdstage.example.org/app/smart/callback"
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCOPES = ("openid fhirUser patient/Patient.rs patient/Condition.rs "
          "patient/MedicationRequest.rs patient/MedicationStatement.rs "
          "patient/MedicationDispense.rs patient/Medication.rs patient/Procedure.rs "
          "patient/Observation.rs")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class SmartEhr:
    iss: str
    client_id: str
    client_secret: str
    redirect_uri: str
    name: str = ""
    scope: str = SCOPES

    @property
    def label(self) -> str:
        return self.name or self.iss


@dataclass(frozen=True)
class WebSettings:
    idle_minutes: float = 15.0
    cookie_secure: bool = True
    default_policy: str = "default"
    ehrs: tuple[SmartEhr, ...] = field(default_factory=tuple)

    def ehr(self, iss: str) -> SmartEhr | None:
        wanted = iss.rstrip("/")
        return next((e for e in self.ehrs if e.iss.rstrip("/") == wanted), None)

    @classmethod
    def from_mapping(cls, config: dict[str, Any]) -> WebSettings:
        """From the parsed TOML file (its `webapp` and `smart` tables); unknown keys refused."""
        app = dict(config.get("webapp") or {})
        known = {"idle_minutes", "cookie_secure", "default_policy"}
        if unknown := sorted(set(app) - known):
            raise SettingsError(f"[webapp]: unknown key(s) {', '.join(unknown)}")
        ehrs = []
        for i, raw in enumerate((config.get("smart") or {}).get("ehrs") or []):
            where = f"[[smart.ehrs]] #{i + 1}"
            fields = {"iss", "client_id", "client_secret", "redirect_uri", "name", "scope"}
            if not isinstance(raw, dict):
                raise SettingsError(f"{where}: expected a table")
            if unknown := sorted(set(raw) - fields):
                raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")
            missing = [k for k in ("iss", "client_id", "client_secret", "redirect_uri")
                       if not raw.get(k)]
            if missing:
                raise SettingsError(f"{where}: missing {', '.join(missing)}")
            if not str(raw["iss"]).startswith(("https://", "http://")):
                raise SettingsError(f"{where}: iss must be an http(s) URL")
            ehrs.append(SmartEhr(**{k: str(v) for k, v in raw.items()}))
        values: dict[str, Any] = {"ehrs": tuple(ehrs)}
        if "idle_minutes" in app:
            values["idle_minutes"] = float(app["idle_minutes"])
        if "cookie_secure" in app:
            values["cookie_secure"] = bool(app["cookie_secure"])
        if "default_policy" in app:
            values["default_policy"] = str(app["default_policy"])
        return cls(**values)
