"""What the web app needs from the service: accounts, versioned patients, assessments, audit.

`WebBackend` is the seam; the service's database implements it (`service.webapp.store`), and
`MemoryBackend` keeps everything in memory for tests of the pages alone. Patient documents are
native patient mappings (the `trdstage assess` file format), stored whole per version.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

Role = Literal["clinician", "admin"]


@dataclass(frozen=True)
class Account:
    name: str
    role: Role


@dataclass(frozen=True)
class PatientVersion:
    local_id: str
    version: int
    document: dict[str, Any]
    saved_at: datetime
    saved_by: str
    origin: str = "form"  # form | native-upload | fhir-upload | smart
    data_used: dict[str, Any] = field(default_factory=dict)  # FHIR references read, ignored


@dataclass(frozen=True)
class AssessmentEntry:
    id: str
    local_id: str
    version: int
    as_of: date
    policy: str
    summary: str
    at: datetime
    by: str


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str
    action: str  # e.g. "read", "create", "update", "download", "signin", "signin-failed"
    what: str  # "Patient/<local id>" or "" for events without a patient
    outcome: Literal["success", "failure"]
    detail: str = ""
    source: str = ""  # client address


class WebBackend(Protocol):
    def verify_password(self, name: str, password: str) -> Account | None: ...
    def accounts(self) -> list[Account]: ...
    def save_patient(self, local_id: str, document: dict[str, Any], by: str, origin: str,
                     data_used: dict[str, Any] | None = None) -> PatientVersion: ...
    def patient(self, local_id: str, version: int | None = None) -> PatientVersion | None: ...
    def versions(self, local_id: str) -> list[PatientVersion]: ...
    def search_patients(self, text: str, limit: int = 50) -> list[PatientVersion]: ...
    def record_assessment(self, entry: AssessmentEntry, result_json: str) -> None: ...
    def recent_assessments(self, limit: int = 20) -> list[AssessmentEntry]: ...
    def audit(self, event: AuditEntry) -> None: ...
    def audit_trail(self, who: str = "", what: str = "", action: str = "",
                    since: date | None = None, limit: int = 500) -> list[AuditEntry]: ...


def now() -> datetime:
    return datetime.now(UTC)


class MemoryBackend:
    """Everything in memory, behind one lock: for tests and `create_test_app`."""

    def __init__(self, users: dict[str, tuple[str, Role]] | None = None) -> None:
        self._users = dict(users or {})
        self._patients: dict[str, list[PatientVersion]] = {}
        self._assessments: list[AssessmentEntry] = []
        self._audit: list[AuditEntry] = []
        self._lock = threading.Lock()

    def verify_password(self, name: str, password: str) -> Account | None:
        import hmac

        user = self._users.get(name)
        if user is None or not hmac.compare_digest(user[0], password):
            return None
        return Account(name, user[1])

    def accounts(self) -> list[Account]:
        return [Account(n, r) for n, (_, r) in sorted(self._users.items())]

    def save_patient(self, local_id: str, document: dict[str, Any], by: str, origin: str,
                     data_used: dict[str, Any] | None = None) -> PatientVersion:
        with self._lock:
            versions = self._patients.setdefault(local_id, [])
            saved = PatientVersion(local_id, len(versions) + 1, document, now(), by, origin,
                                   data_used or {})
            versions.append(saved)
            return saved

    def patient(self, local_id: str, version: int | None = None) -> PatientVersion | None:
        versions = self._patients.get(local_id) or []
        if not versions:
            return None
        if version is None:
            return versions[-1]
        return versions[version - 1] if 1 <= version <= len(versions) else None

    def versions(self, local_id: str) -> list[PatientVersion]:
        return list(self._patients.get(local_id) or [])

    def search_patients(self, text: str, limit: int = 50) -> list[PatientVersion]:
        needle = text.strip().lower()
        found = [v[-1] for k, v in sorted(self._patients.items())
                 if not needle or needle in k.lower()
                 or needle in str(v[-1].data_used.get("name", "")).lower()]
        return found[:limit]

    def record_assessment(self, entry: AssessmentEntry, result_json: str) -> None:
        with self._lock:
            self._assessments.append(entry)

    def recent_assessments(self, limit: int = 20) -> list[AssessmentEntry]:
        return list(reversed(self._assessments))[:limit]

    def audit(self, event: AuditEntry) -> None:
        with self._lock:
            self._audit.append(event)

    def audit_trail(self, who: str = "", what: str = "", action: str = "",
                    since: date | None = None, limit: int = 500) -> list[AuditEntry]:
        out = [e for e in reversed(self._audit)
               if (not who or e.who == who) and (not what or what in e.what)
               and (not action or e.action == action)
               and (since is None or e.at.date() >= since)]
        return out[:limit]
