"""The API's JSON shapes (pydantic), published in the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trdstage.domain.results import Assessment as AssessmentResult


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientOut(_Out):
    id: str = Field(description="The service's local id (random, no meaning).")
    version: int = Field(description="The current version (1 for a new patient).")
    created: datetime
    updated: datetime
    document: dict[str, Any] = Field(description="The native patient history of this version.")


class PatientSummary(_Out):
    id: str
    version: int
    created: datetime
    updated: datetime


class PatientPage(_Out):
    total: int
    offset: int
    items: list[PatientSummary]
    next: str | None = None


class VersionOut(_Out):
    version: int
    created: datetime
    author: str
    digest: str = Field(description="SHA-256 of the canonical JSON of the document.")


class VersionPage(_Out):
    patient: str
    items: list[VersionOut]


class VersionDocument(VersionOut):
    document: dict[str, Any]


class AssessmentOut(_Out):
    id: str
    patient: str
    patient_version: int
    as_of: date
    policy: str
    trdstage_version: str
    knowledge_version: str
    created: datetime
    author: str
    result: AssessmentResult


class AssessmentSummary(_Out):
    id: str
    patient_version: int
    as_of: date
    policy: str
    created: datetime


class AssessmentPage(_Out):
    patient: str
    total: int
    offset: int
    items: list[AssessmentSummary]
    next: str | None = None


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=1000)
    expires_days: float = Field(default=1, gt=0, le=30,
                                description="Lifetime of the token (at most 30 days).")


class TokenOut(_Out):
    token: str = Field(description="Shown once; send it as `Authorization: Bearer <token>`.")
    id: int
    account: str
    role: str
    expires: datetime | None


class AccountOut(_Out):
    name: str
    role: str
    active: bool
    created: datetime


class Health(_Out):
    status: str
    version: str
    database: str
    schema_revision: str | None = Field(alias="schema")
