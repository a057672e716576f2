"""What an assessment returns: typed, explained results (the JSON contract is their dump)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trdstage.domain.advice import Alert, ChecklistItem, Monitoring, Recommendation
from trdstage.domain.enums import (
    Adherence,
    ConcurrentUse,
    CourseKind,
    Laterality,
    Outcome,
    Severity,
)
from trdstage.domain.policy import Policy

DISCLAIMER = (
    "Decision support, not a medical device: trdstage computes published staging models from "
    "the history it was given. It does not diagnose or prescribe; a clinician must check the "
    "history, the assumptions listed and the result before acting on it."
)


class ResultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Notice(ResultModel):
    """A warning about the input: something read but not used, or clipped, with where it was."""

    code: str
    message: str
    where: str | None = None


class ConcurrentAgent(ResultModel):
    agent: str
    role: ConcurrentUse
    start: date
    end: date
    overlap_days: int
    counted: bool


OutcomeBasis = Literal["explicit", "ratings", "switch", "none"]


class TrialVerdict(ResultModel):
    id: str
    agents: list[str]
    mechanism: str | None
    mechanism_label: str | None
    start: date
    end: date | None
    ongoing: bool
    in_scope: bool
    weeks: float
    weeks_at_adequate_dose: float
    max_daily_dose_mg: float | None
    min_adequate_dose_mg: float | None
    adherence: Adherence
    adequate: bool
    outcome: Outcome
    outcome_basis: OutcomeBasis
    failed: bool
    dose_optimised: bool
    # adequacy judged on duration alone, the dose not being recorded (missing_dose policy)
    duration_only: bool = False
    concurrent: list[ConcurrentAgent] = Field(default_factory=list)
    records: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class ECTVerdict(ResultModel):
    id: str
    start: date
    end: date | None
    in_scope: bool
    sessions: int | None
    laterality: Laterality
    outcome: Outcome
    outcome_basis: OutcomeBasis
    failed: bool
    reasons: list[str] = Field(default_factory=list)


class CourseSummary(ResultModel):
    id: str
    kind: CourseKind
    modality: str | None
    start: date
    end: date | None
    in_scope: bool
    sessions: int | None
    outcome: Outcome
    outcome_basis: OutcomeBasis


class EpisodeSummary(ResultModel):
    id: str | None
    onset: date
    end: date | None
    duration_months: float
    severity: Severity | None
    psychotic_features: bool
    flags: list[str]


class ModelResult(ResultModel):
    """What every staging model reports besides its value."""

    model: str
    name: str
    counted: list[str] = Field(default_factory=list, description="Trial and ECT ids counted.")
    reasons: list[str] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)


class ThaseRushResult(ModelResult):
    stage: int = Field(ge=0, le=5)
    stage_label: str
    taxonomy: str
    order: str
    roles: dict[str, str] = Field(
        default_factory=dict, description="Role (first, different_class, tca, maoi, ect) -> id.")


class MghTrialPoints(ResultModel):
    id: str
    points: float
    parts: list[str]


class MghResult(ModelResult):
    score: float = Field(ge=0)
    items: list[MghTrialPoints] = Field(default_factory=list)


class MaudsleyResult(ModelResult):
    score: int | None
    band: Literal["mild", "moderate", "severe"] | None
    components: dict[str, int] | None = None


class EuropeanResult(ModelResult):
    category: Literal["none", "NR", "TRD1", "TRD2", "TRD3", "TRD4", "TRD5", "CRD"]
    failed_trials: int
    resistant_span_months: float | None = None


class RegulatoryResult(ModelResult):
    met: bool
    failed_agents: list[str] = Field(default_factory=list)
    first_met: date | None = Field(
        default=None,
        description="End of the failed trial that first completed the definition (as-of date "
        "for a trial still ongoing).")


class Staging(ResultModel):
    thase_rush: ThaseRushResult
    mgh: MghResult
    maudsley: MaudsleyResult
    european: EuropeanResult
    regulatory: RegulatoryResult


class Assessment(ResultModel):
    schema_version: str = "1"
    as_of: date
    patient_id: str
    policy: str
    policy_settings: Policy | None = Field(
        default=None, description="Every setting the result was computed under, with sources.")
    episode: EpisodeSummary
    trials: list[TrialVerdict]
    ect: list[ECTVerdict]
    courses: list[CourseSummary]
    staging: Staging
    deceased: bool = Field(default=False, description=(
        "The patient has died: the history ends at death and no treatment advice is given."))
    death_date: date | None = Field(default=None, description=(
        "Date of death when known; `as_of` is then no later than it."))
    warnings: list[Notice] = Field(default_factory=list)
    # Filled by trdstage.advice.advise() (empty when only the staging engine ran).
    recommendations: list[Recommendation] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    reassessment: list[ChecklistItem] = Field(default_factory=list)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    disclaimer: str = DISCLAIMER


def result_json_schema() -> dict[str, object]:
    """JSON Schema of the JSON result (serialisation mode: what `--format json` emits)."""
    schema = Assessment.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trdstage assessment result"
    return schema
