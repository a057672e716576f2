"""The web app's backend on the service's database: its accounts, patients, assessments and
audit trail (trdstage.service.models), so that the app and the REST API see the same records.

Each call is one committed transaction, holding a write and its audit event together (the
service's `store` and `audit.record` on one session, as the REST API does). Where each version
came from and what a SMART launch or an upload read (FHIR references, what was ignored and
why) is stored beside the version (`VersionSource`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select

from trdstage.service import audit as service_audit
from trdstage.service import store
from trdstage.service.auth import verify_password
from trdstage.service.db import Database
from trdstage.service.models import Account as AccountRow
from trdstage.service.models import Assessment as AssessmentRow
from trdstage.service.models import AuditEvent, Patient, VersionSource
from trdstage.service.models import PatientVersion as VersionRow
from trdstage.service.webapp.backend import (
    Account,
    AssessmentEntry,
    AuditEntry,
    PatientVersion,
    Role,
    SavedEvent,
)

WEBAPP = "urn:trdstage:webapp"
_KINDS: dict[str, tuple[service_audit.Kind, service_audit.Action]] = {
    "read": (service_audit.rest("read"), service_audit.Action.read),
    "search": (service_audit.rest("search-type"), service_audit.Action.execute),
    "create": (service_audit.rest("create"), service_audit.Action.create),
    "update": (service_audit.rest("update"), service_audit.Action.update),
    "signin": (service_audit.LOGIN, service_audit.Action.execute),
    "signout": (service_audit.LOGOUT, service_audit.Action.execute),
}
_WORDS = {"search-type": "search", "110122": "signin", "110123": "signout"}


def _kind(action: str) -> tuple[service_audit.Kind, service_audit.Action]:
    if action in _KINDS:
        return _KINDS[action]
    verb = {"download": service_audit.Action.read, "checklist": service_audit.Action.update,
            "import": service_audit.Action.create}.get(action, service_audit.Action.execute)
    return (service_audit.Kind(service_audit.EVENT_TYPE, "rest", "Restful Operation", WEBAPP,
                               action, action), verb)


class DatabaseBackend:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------------------------------------------------------------- accounts
    def verify_password(self, name: str, password: str) -> Account | None:
        with self.db.session() as s:
            row = s.scalars(select(AccountRow).where(AccountRow.name == name)).one_or_none()
            ok = verify_password(row.password_hash if row else None, password)
            if row is None or not ok or not row.active:
                return None
            return Account(row.name, _role(row.role))

    def accounts(self) -> list[Account]:
        with self.db.session() as s:
            return [Account(r.name, _role(r.role))
                    for r in s.scalars(select(AccountRow).order_by(AccountRow.name))]

    def _row(self, s: Any, name: str) -> AccountRow:
        row = s.scalars(select(AccountRow).where(AccountRow.name == name)).one_or_none()
        if row is None:
            raise LookupError(f"no account {name!r}")
        return row  # type: ignore[no-any-return]

    def account(self, name: str, role: Role = "clinician") -> Account:
        with self.db.session() as s:
            row = s.scalars(select(AccountRow).where(AccountRow.name == name)).one_or_none()
            if row is None:
                row = AccountRow(name=name[:200], role=role, password_hash=None)
                s.add(row)
                s.commit()
            return Account(row.name, _role(row.role))

    # ---------------------------------------------------------------- patients
    def _version(self, s: Any, row: VersionRow, author: str) -> PatientVersion:
        source = s.get(VersionSource, row.id)
        origin, used = (source.origin, dict(source.data_used)) if source else ("api", {})
        return PatientVersion(row.patient_id, row.version, dict(row.document), row.created,
                              author, origin, used)

    def _author(self, s: Any, account_id: int) -> str:
        row = s.get(AccountRow, account_id)
        return row.name if row is not None else ""

    def save_patient(self, owner: str, key: str | None, document: dict[str, Any],
                     origin: str, data_used: dict[str, Any] | None = None, *,
                     event: SavedEvent | None = None) -> PatientVersion:
        with self.db.session() as s:
            account = self._row(s, owner)
            patient = store.find_patient(s, account, key) if key else None
            if patient is None:
                patient = store.create_patient(s, account, document)
                row = store.version_of(s, patient, 1)
            else:
                row = store.update_patient(s, patient, account, document)
            if row is None:  # pragma: no cover - create_patient always writes version 1
                raise LookupError(f"patient {patient.id} has no version")
            s.add(VersionSource(version_id=row.id, origin=origin[:20],
                                data_used=data_used or {}))
            s.flush()
            saved = self._version(s, row, owner)
            if event is not None:
                self._record(s, event(saved))
            s.commit()
            return saved

    def _patient(self, s: Any, owner: str, key: str) -> Patient | None:
        try:
            account = self._row(s, owner)
        except LookupError:
            return None
        return store.find_patient(s, account, key)

    def patient(self, owner: str, key: str, version: int | None = None
                ) -> PatientVersion | None:
        with self.db.session() as s:
            patient = self._patient(s, owner, key)
            if patient is None:
                return None
            row = store.version_of(s, patient, version)
            return self._version(s, row, self._author(s, row.author_id)) if row else None

    def versions(self, owner: str, key: str) -> list[PatientVersion]:
        with self.db.session() as s:
            patient = self._patient(s, owner, key)
            if patient is None:
                return []
            rows = s.scalars(select(VersionRow).where(VersionRow.patient_id == patient.id)
                             .order_by(VersionRow.version))
            return [self._version(s, r, self._author(s, r.author_id)) for r in rows]

    def search_patients(self, owner: str, text: str, limit: int = 50) -> list[PatientVersion]:
        needle = text.strip().lower()
        out = []
        with self.db.session() as s:
            try:
                account = self._row(s, owner)
            except LookupError:
                return []
            _, patients = store.list_patients(s, account, 0, 10_000)
            for patient in patients:
                row = store.version_of(s, patient)
                if row is None:
                    continue
                found = self._version(s, row, self._author(s, row.author_id))
                if not needle or needle in patient.id.lower() or needle in found.label.lower():
                    out.append(found)
        return sorted(out, key=lambda v: v.label)[:limit]

    def record_assessment(self, owner: str, entry: AssessmentEntry,
                          result: dict[str, Any], event: AuditEntry | None = None) -> None:
        with self.db.session() as s:
            store.add_assessment(s, self._row(s, owner), entry.local_id, entry.version,
                                 as_of=entry.as_of, policy=entry.policy, result=result)
            if event is not None:
                self._record(s, event)
            s.commit()

    def recent_assessments(self, owner: str, limit: int = 20) -> list[AssessmentEntry]:
        from trdstage.domain.results import Assessment
        from trdstage.service.webapp.views import one_line

        with self.db.session() as s:
            try:
                account = self._row(s, owner)
            except LookupError:
                return []
            rows = s.scalars(select(AssessmentRow).join(Patient, Patient.id ==
                                                        AssessmentRow.patient_id)
                             .where(Patient.owner_id == account.id)
                             .order_by(AssessmentRow.created.desc()).limit(limit))
            out = []
            for r in rows:
                try:
                    summary = one_line(Assessment.model_validate(r.result))
                except ValueError:
                    summary = ""
                out.append(AssessmentEntry(r.id, r.patient_id, r.patient_version, r.as_of,
                                           r.policy, summary, r.created,
                                           self._author(s, r.author_id)))
            return out

    # ---------------------------------------------------------------- audit
    def audit(self, *events: AuditEntry) -> None:
        with self.db.session() as s:
            for event in events:
                self._record(s, event)
            s.commit()

    def _record(self, s: Any, event: AuditEntry) -> None:
        """Add `event` to the session `s` (its commit writes it with the action)."""
        kind, action = _kind(event.action)
        account = s.scalars(select(AccountRow).where(AccountRow.name == event.who)
                            ).one_or_none()
        actor = (service_audit.Actor.of(account) if account is not None
                 else service_audit.Actor(event.who[:100], "anonymous"))
        patient = event.what.split("/", 1)[1] if event.what.startswith("Patient/") else None
        row = service_audit.record(
            s, actor=actor, kind=kind, action=action,
            outcome=(service_audit.Outcome.success if event.outcome == "success"
                     else service_audit.Outcome.minor_failure),
            patient_id=patient, entity=event.what if event.what and not patient else None,
            query=event.detail if event.outcome == "success" and event.detail else None,
            detail=event.detail if event.outcome != "success" else "")
        row.source_address = event.source[:64]
        row.path = "/app"

    def _events(self, who: str, what: str, action: str, since: date | None,
                limit: int) -> Any:
        query = select(AuditEvent)
        if who:
            query = query.where(AuditEvent.agent_name == who)
        if what:
            if what.startswith("Patient/"):
                query = query.where(AuditEvent.patient_id == what.split("/", 1)[1])
            else:
                query = query.where((AuditEvent.entity == what)
                                    | (AuditEvent.patient_id == what))
        if action:
            code = {v: k for k, v in _WORDS.items()}.get(action, action)
            query = query.where(AuditEvent.subtype_code == code)
        if since is not None:
            query = query.where(AuditEvent.recorded >= datetime.combine(since, time(),
                                                                         tzinfo=UTC))
        return query.order_by(AuditEvent.id.desc()).limit(limit)

    def audit_trail(self, who: str = "", what: str = "", action: str = "",
                    since: date | None = None, limit: int = 500) -> list[AuditEntry]:
        with self.db.session() as s:
            rows = s.scalars(self._events(who, what, action, since, limit))
            return [AuditEntry(
                at=r.recorded, who=r.agent_name,
                action=_WORDS.get(r.subtype_code, r.subtype_code),
                what=f"Patient/{r.patient_id}" if r.patient_id else (r.entity or ""),
                outcome="success" if r.outcome == 0 else "failure",
                detail=r.query or r.outcome_desc or "", source=r.source_address)
                for r in rows]

    def audit_export(self, who: str = "", what: str = "", action: str = "",
                     since: date | None = None, limit: int = 10_000) -> dict[str, Any]:
        with self.db.session() as s:
            rows = list(s.scalars(self._events(who, what, action, since, limit)))
            entries = [{"fullUrl": f"urn:trdstage:audit:{r.id}",
                        "resource": service_audit.to_fhir(r)} for r in rows]
        return {"resourceType": "Bundle", "type": "collection", "total": len(entries),
                "entry": entries}


def _role(value: str) -> Role:
    return "admin" if value == "admin" else "clinician"
