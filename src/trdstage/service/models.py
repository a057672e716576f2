"""The service's tables (SQLAlchemy 2 declarative). Other parts of the service (CDS Hooks,
web app) add their tables to the same `Base` and ship an Alembic revision for them.

Patient data lives in `patient_version.document` (the native history as JSON) and
`assessment.result`; patients are known by a random local id (`Patient.id`), never by a
name or medical record number.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A random, opaque local id (no meaning, nothing to guess)."""
    return secrets.token_hex(12)


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime,
                                                      dict[str, Any]: JSON}


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # "clinician" | "admin"
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="account")


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise it
    label: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[datetime | None] = mapped_column(default=None)
    last_used: Mapped[datetime | None] = mapped_column(default=None)

    account: Mapped[Account] = relationship(back_populates="tokens")


class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[PatientVersion]] = relationship(
        back_populates="patient", order_by="PatientVersion.version")


class PatientVersion(Base):
    """Every version of a patient's native history; a change adds a row, none is rewritten."""

    __tablename__ = "patient_version"
    __table_args__ = (UniqueConstraint("patient_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical JSON
    created: Mapped[datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int] = mapped_column(ForeignKey("account.id"))

    patient: Mapped[Patient] = relationship(back_populates="versions")


class VersionSource(Base):
    """Where a version stored by the web app came from, and what it read: `origin` (form,
    native-upload, fhir-upload, smart) and `data_used` (the FHIR references read per kind,
    the notices naming what was ignored or changed and why, when and from where)."""

    __tablename__ = "patient_version_source"

    version_id: Mapped[int] = mapped_column(ForeignKey("patient_version.id"),
                                            primary_key=True)
    origin: Mapped[str] = mapped_column(String(20))
    data_used: Mapped[dict[str, Any]] = mapped_column(JSON)


class Assessment(Base):
    __tablename__ = "assessment"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    patient_version: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    policy: Mapped[str] = mapped_column(String(200))
    trdstage_version: Mapped[str] = mapped_column(String(40))
    knowledge_version: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int] = mapped_column(ForeignKey("account.id"))


class AuditEvent(Base):
    """One audited action (IHE Basic Audit shape). Append-only: nothing updates or deletes
    rows. Holds ids and codes, never patient data."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_recorded", "recorded"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recorded: Mapped[datetime] = mapped_column(default=utcnow)
    type_system: Mapped[str] = mapped_column(String(200))
    type_code: Mapped[str] = mapped_column(String(40))
    subtype_system: Mapped[str] = mapped_column(String(200))
    subtype_code: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(1), index=True)  # C R U D E
    outcome: Mapped[int] = mapped_column(Integer)  # 0 success, 4 minor, 8 serious, 12 major
    outcome_desc: Mapped[str] = mapped_column(Text, default="")
    agent_kind: Mapped[str] = mapped_column(String(20))  # account | client | anonymous | system
    agent_name: Mapped[str] = mapped_column(String(300))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True,
                                                   default=None)
    source_address: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(10), default="")
    path: Mapped[str] = mapped_column(String(500), default="")
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    entity: Mapped[str | None] = mapped_column(String(200), default=None)
    query: Mapped[str | None] = mapped_column(Text, default=None)
