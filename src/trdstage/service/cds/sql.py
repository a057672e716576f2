"""The CDS store in the service's database: issued cards, feedback, the assessments behind the
staging cards, and an AuditEvent per request (service/audit.py), each request in one
transaction committed before the answer is sent.

The EHR's patient id is kept as given (`patient_ref`): it names the patient in the EHR that
called, not a trdstage patient.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from trdstage.domain.results import Assessment
from trdstage.service import audit
from trdstage.service.cds.models import FeedbackItem
from trdstage.service.cds.store import AuditRecord, IssuedCard, feedback_records
from trdstage.service.db import Database
from trdstage.service.models import Base, utcnow


class CdsCard(Base):
    __tablename__ = "cds_card"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    service: Mapped[str] = mapped_column(String(64), index=True)
    hook: Mapped[str] = mapped_column(String(64))
    hook_instance: Mapped[str] = mapped_column(String(64), index=True)
    iss: Mapped[str] = mapped_column(String(300))
    tenant: Mapped[str | None] = mapped_column(String(200), default=None)
    patient_ref: Mapped[str] = mapped_column(String(64), index=True)
    indicator: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(String(140))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    assessment_id: Mapped[str | None] = mapped_column(ForeignKey("cds_assessment.id"),
                                                      default=None)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class CdsAssessment(Base):
    __tablename__ = "cds_assessment"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    iss: Mapped[str] = mapped_column(String(300))
    tenant: Mapped[str | None] = mapped_column(String(200), default=None)
    patient_ref: Mapped[str] = mapped_column(String(64), index=True)
    as_of: Mapped[date] = mapped_column(Date)
    policy: Mapped[str] = mapped_column(String(200))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class CdsFeedback(Base):
    __tablename__ = "cds_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_uuid: Mapped[str] = mapped_column(ForeignKey("cds_card.uuid"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    accepted: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    outcome_timestamp: Mapped[str] = mapped_column(String(40))
    created: Mapped[datetime] = mapped_column(default=utcnow)


class CdsJti(Base):
    """JWT ids seen (SHA-256 of iss and jti), kept until the token expires: a replay is refused
    by every server process sharing the database, and after a restart."""

    __tablename__ = "cds_jti"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires: Mapped[float] = mapped_column(Float, index=True)


class SqlReplayCache:
    PURGE_EVERY = 500

    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls = 0

    def add(self, iss: str, jti: str, until: float) -> bool:
        digest = hashlib.sha256(f"{iss}\n{jti}".encode()).hexdigest()
        now = time.time()
        self.calls += 1
        with self.db.session() as session:
            if self.calls % self.PURGE_EVERY == 1:
                session.execute(delete(CdsJti).where(CdsJti.expires < now))
            row = session.get(CdsJti, digest)
            if row is not None and row.expires > now:
                return False
            if row is None:
                session.add(CdsJti(digest=digest, expires=until))
            else:
                row.expires = until
            try:
                session.commit()
            except IntegrityError:  # the same jti, at the same moment, in another process
                return False
        return True


KINDS = {"cds.discovery": (audit.rest("capabilities"), audit.Action.read),
         "cds.hook": (audit.rest("operation"), audit.Action.execute),
         "cds.feedback": (audit.rest("create"), audit.Action.create)}


def _audit(session: Session, r: AuditRecord) -> None:
    kind, action = KINDS[r.action]
    outcome = audit.Outcome.success if r.outcome == "success" else audit.Outcome.minor_failure
    query = "; ".join(f"{k}={v}" for k, v in (
        ("hook", r.hook), ("user", r.user), ("tenant", r.tenant), ("jti", r.jti),
        ("status", r.status), ("fetched", ",".join(r.fetched) or None),
        ("cards", ",".join(r.cards) or None)) if v)
    audit.record(session, actor=audit.Actor(r.iss or "unauthenticated",
                                            "client" if r.iss else "anonymous"),
                 kind=kind, action=action, outcome=outcome, request=r.request,
                 patient_id=r.patient, entity=f"{r.service}/{r.hook_instance}"
                 if r.service and r.hook_instance else r.service, query=query or None,
                 detail=r.detail or "")


class SqlStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def audit(self, record: AuditRecord) -> None:
        with self.db.session() as session:
            _audit(session, record)
            session.commit()

    def issue(self, cards: list[IssuedCard], assessment_id: str | None,
              assessment: Assessment | None, record: AuditRecord) -> None:
        with self.db.session() as session:
            if assessment_id is not None and assessment is not None and cards:
                session.add(CdsAssessment(
                    id=assessment_id, iss=cards[0].iss, tenant=cards[0].tenant,
                    patient_ref=cards[0].patient, as_of=assessment.as_of,
                    policy=assessment.policy, result=assessment.model_dump(mode="json")))
                session.flush()
            for c in cards:
                session.add(CdsCard(uuid=c.uuid, service=c.service, hook=c.hook,
                                    hook_instance=c.hook_instance[:64], iss=c.iss,
                                    tenant=c.tenant, patient_ref=c.patient,
                                    indicator=c.indicator, summary=c.summary, card=c.card,
                                    assessment_id=c.assessment_id))
            _audit(session, record)
            session.commit()

    def feedback(self, service: str, iss: str, tenant: str | None, items: list[FeedbackItem],
                 record: AuditRecord) -> list[str]:
        with self.db.session() as session:
            wanted = {i.card for i in items}
            known = set(session.scalars(select(CdsCard.uuid).where(
                CdsCard.uuid.in_(wanted), CdsCard.service == service, CdsCard.iss == iss,
                CdsCard.tenant.is_(None) if tenant is None else CdsCard.tenant == tenant)))
            for f in feedback_records(service, iss, [i for i in items if i.card in known]):
                session.add(CdsFeedback(card_uuid=f.card, outcome=f.outcome,
                                        accepted=f.accepted, reason=f.reason,
                                        comment=f.comment,
                                        outcome_timestamp=f.outcome_timestamp))
            _audit(session, record)
            session.commit()
            return [i.card for i in items if i.card not in known]
