"""What the web app needs from the service: accounts, versioned patients, assessments, audit.

`WebBackend` is the seam; the service's database implements it (`service.webapp.store`), and
`MemoryBackend` keeps everything in memory for tests of the pages alone. Patient documents are
native patient mappings (the `trdstage assess` file format), stored whole per version.

Every write carries its audit event and the backend stores both together (one transaction in
the database): a saved version with the event naming it, an assessment with the read or
download that made it, a checklist's ticks with one event each.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable
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

    @property
    def label(self) -> str:
        """The patient's own local id (the document's `id`, a pseudonym)."""
        return str(self.document.get("id") or self.local_id)


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
    def account(self, name: str, role: Role = "clinician") -> Account:
        """The account `name`, created without a password if new (SMART users)."""
        ...
    def save_patient(self, owner: str, key: str | None, document: dict[str, Any],
                     origin: str, data_used: dict[str, Any] | None = None, *,
                     event: SavedEvent | None = None) -> PatientVersion:
        """A new version (a new patient when `key` is None), with `event(saved)` audited in
        the same transaction."""
        ...
    def patient(self, owner: str, key: str, version: int | None = None
                ) -> PatientVersion | None: ...
    def versions(self, owner: str, key: str) -> list[PatientVersion]: ...
    def search_patients(self, owner: str, text: str, limit: int = 50
                        ) -> list[PatientVersion]: ...
    def record_assessment(self, owner: str, entry: AssessmentEntry,
                          result: dict[str, Any], event: AuditEntry | None = None) -> None:
        """Store a result with the audit event of the request that made it, together."""
        ...
    def recent_assessments(self, owner: str, limit: int = 20) -> list[AssessmentEntry]: ...
    def audit(self, *events: AuditEntry) -> None:
        """Record the events together (all or none)."""
        ...
    def audit_trail(self, who: str = "", what: str = "", action: str = "",
                    since: date | None = None, limit: int = 500) -> list[AuditEntry]: ...
    def audit_export(self, who: str = "", what: str = "", action: str = "",
                     since: date | None = None) -> dict[str, Any]:
        """The trail (filtered as audit_trail) as a FHIR R4 Bundle of AuditEvents."""
        ...


SavedEvent = Callable[[PatientVersion], AuditEntry]


def now() -> datetime:
    return datetime.now(UTC)


class MemoryBackend:
    """Everything in memory, behind one lock: for tests and `create_test_app`."""

    def __init__(self, users: dict[str, tuple[str, Role]] | None = None) -> None:
        self._users = dict(users or {})
        self._patients: dict[str, list[PatientVersion]] = {}
        self._owners: dict[str, str] = {}
        self._assessments: list[tuple[str, AssessmentEntry]] = []
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


    def account(self, name: str, role: Role = "clinician") -> Account:
        with self._lock:
            if name not in self._users:
                self._users[name] = ("", role)
            return Account(name, self._users[name][1])

    def save_patient(self, owner: str, key: str | None, document: dict[str, Any],
                     origin: str, data_used: dict[str, Any] | None = None, *,
                     event: SavedEvent | None = None) -> PatientVersion:
        with self._lock:
            if key is None or key not in self._patients:
                key = key or secrets.token_hex(6)
                self._owners[key] = owner
            versions = self._patients.setdefault(key, [])
            saved = PatientVersion(key, len(versions) + 1, document, now(), owner, origin,
                                   data_used or {})
            versions.append(saved)
            if event is not None:
                self._audit.append(event(saved))
            return saved

    def _mine(self, owner: str, key: str) -> list[PatientVersion]:
        return self._patients.get(key, []) if self._owners.get(key) == owner else []

    def patient(self, owner: str, key: str, version: int | None = None
                ) -> PatientVersion | None:
        versions = self._mine(owner, key)
        if not versions:
            return None
        if version is None:
            return versions[-1]
        return versions[version - 1] if 1 <= version <= len(versions) else None

    def versions(self, owner: str, key: str) -> list[PatientVersion]:
        return list(self._mine(owner, key))

    def search_patients(self, owner: str, text: str, limit: int = 50) -> list[PatientVersion]:
        needle = text.strip().lower()
        found = [v[-1] for k, v in self._patients.items() if self._owners.get(k) == owner
                 and (not needle or needle in k.lower() or needle in v[-1].label.lower())]
        return sorted(found, key=lambda v: v.label)[:limit]

    def record_assessment(self, owner: str, entry: AssessmentEntry,
                          result: dict[str, Any], event: AuditEntry | None = None) -> None:
        with self._lock:
            self._assessments.append((owner, entry))
            if event is not None:
                self._audit.append(event)

    def recent_assessments(self, owner: str, limit: int = 20) -> list[AssessmentEntry]:
        return [e for o, e in reversed(self._assessments) if o == owner][:limit]

    def audit(self, *events: AuditEntry) -> None:
        with self._lock:
            self._audit.extend(events)

    def audit_trail(self, who: str = "", what: str = "", action: str = "",
                    since: date | None = None, limit: int = 500) -> list[AuditEntry]:
        out = [e for e in reversed(self._audit)
               if (not who or e.who == who) and (not what or what in e.what)
               and (not action or e.action == action)
               and (since is None or e.at.date() >= since)]
        return out[:limit]

    def audit_export(self, who: str = "", what: str = "", action: str = "",
                     since: date | None = None) -> dict[str, Any]:
        return audit_bundle(self.audit_trail(who, what, action, since, limit=100_000))


AUDIT_CODES: dict[str, tuple[str, str]] = {
    "read": ("R", "rest"), "search": ("E", "rest"), "create": ("C", "rest"),
    "update": ("U", "rest"), "download": ("R", "export"), "import": ("C", "import"),
    "signin": ("E", "110122"), "signout": ("E", "110123"), "denied": ("E", "rest"),
    "checklist": ("U", "rest"), "smart-launch": ("E", "110114"),
}


def audit_bundle(rows: list[AuditEntry]) -> dict[str, Any]:
    """The audit trail as a FHIR R4 Bundle (collection) of AuditEvents."""
    entries = []
    for i, e in enumerate(rows):
        action, subtype = AUDIT_CODES.get(e.action, ("E", "rest"))
        event: dict[str, Any] = {
            "resourceType": "AuditEvent", "id": f"a{i + 1}",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                     "code": "rest"} if subtype in ("rest", "export", "import") else
            {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114",
             "display": "User Authentication"},
            "subtype": [{"system": "urn:trdstage:audit-action", "code": e.action}],
            "action": action, "recorded": e.at.isoformat(),
            "outcome": "0" if e.outcome == "success" else "4",
            "outcomeDesc": e.detail,
            "agent": [{"who": {"display": e.who}, "requestor": True,
                       "network": {"address": e.source, "type": "2"} if e.source else None}],
            "source": {"observer": {"display": "trdstage web app"}},
        }
        if not e.detail:
            del event["outcomeDesc"]
        if not event["agent"][0]["network"]:
            del event["agent"][0]["network"]
        if e.what.startswith("Patient/"):
            event["entity"] = [{"what": {"identifier": {"value": e.what.split("/", 1)[1]}},
                                "type": {"system": "http://terminology.hl7.org/CodeSystem/"
                                         "audit-entity-type", "code": "1"}}]
        entries.append({"fullUrl": f"urn:uuid:{_uuid(i, e)}", "resource": event})
    return {"resourceType": "Bundle", "type": "collection", "total": len(entries),
            "entry": entries}


def _uuid(i: int, e: AuditEntry) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{i}:{e.at.isoformat()}:{e.who}:{e.action}"))
