"""What the CDS service keeps: the cards it issued, the feedback on them, the assessments behind
the staging cards and an audit event for every request. `CdsStore` is the interface; the
service's database implements it (`trdstage serve`), `MemoryStore` is the one the sandbox
and the router's own tests use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from trdstage.domain.results import Assessment
from trdstage.service.cds.models import FeedbackItem


@dataclass
class AuditRecord:
    """One audited CDS request. Never the JWT or the FHIR access token; the patient id only in
    `patient` (the audit trail's subject)."""

    action: str  # cds.discovery | cds.hook | cds.feedback
    outcome: str  # success | denied | failed
    service: str | None = None
    hook: str | None = None
    hook_instance: str | None = None
    iss: str | None = None
    tenant: str | None = None
    jti: str | None = None
    user: str | None = None
    patient: str | None = None
    status: int = 200
    detail: str | None = None  # the reason of a refusal, for the audit trail only
    cards: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    client_ip: str | None = None
    recorded: datetime = field(default_factory=lambda: datetime.now(UTC))
    request: Any = field(default=None, repr=False, compare=False)  # the HTTP request


@dataclass
class IssuedCard:
    uuid: str
    service: str
    hook: str
    hook_instance: str
    iss: str
    tenant: str | None
    patient: str
    indicator: str
    summary: str
    card: dict[str, Any]
    assessment_id: str | None = None


@dataclass
class FeedbackRecord:
    card: str
    service: str
    iss: str
    outcome: str
    accepted: list[str]
    reason: dict[str, Any] | None
    comment: str | None
    outcome_timestamp: str


class CdsStore(Protocol):
    def audit(self, record: AuditRecord) -> None: ...

    def issue(self, cards: list[IssuedCard], assessment_id: str | None,
              assessment: Assessment | None, record: AuditRecord) -> None:
        """Store the cards (and the assessment behind them) with the request's audit event,
        in one transaction."""

    def feedback(self, service: str, iss: str, tenant: str | None, items: list[FeedbackItem],
                 record: AuditRecord) -> list[str]:
        """Store feedback on cards this client was issued by this service; returns the card
        uuids not found (left out)."""


def feedback_records(service: str, iss: str, items: list[FeedbackItem]) -> list[FeedbackRecord]:
    out = []
    for item in items:
        reason = item.overrideReason
        out.append(FeedbackRecord(
            card=item.card, service=service, iss=iss, outcome=item.outcome,
            accepted=[s.id for s in item.acceptedSuggestions or []],
            reason=reason.reason if reason else None,
            comment=reason.userComment if reason else None,
            outcome_timestamp=item.outcomeTimestamp))
    return out


class MemoryStore:
    """In memory (the sandbox, the router tests): lost when the process ends."""

    def __init__(self) -> None:
        self.events: list[AuditRecord] = []
        self.cards: dict[str, IssuedCard] = {}
        self.assessments: dict[str, Assessment] = {}
        self.feedbacks: list[FeedbackRecord] = []
        self._lock = threading.Lock()

    def audit(self, record: AuditRecord) -> None:
        with self._lock:
            self.events.append(record)

    def issue(self, cards: list[IssuedCard], assessment_id: str | None,
              assessment: Assessment | None, record: AuditRecord) -> None:
        with self._lock:
            for c in cards:
                self.cards[c.uuid] = c
            if assessment_id is not None and assessment is not None:
                self.assessments[assessment_id] = assessment
            self.events.append(record)

    def feedback(self, service: str, iss: str, tenant: str | None, items: list[FeedbackItem],
                 record: AuditRecord) -> list[str]:
        with self._lock:
            known = [i for i in items if (c := self.cards.get(i.card)) is not None
                     and c.service == service and c.iss == iss and c.tenant == tenant]
            self.feedbacks += feedback_records(service, iss, known)
            self.events.append(record)
            return [i.card for i in items if i not in known]
