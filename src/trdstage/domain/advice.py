"""What the advice layer returns: next steps, safety alerts, a reassessment checklist and symptom
monitoring. Pure types, no I/O; the JSON contract is their dump.

Each guideline keeps its own grade vocabulary (CANMAT line + level of evidence, NICE verb, CPIC
strength, VA/DoD direction, label status): a `GuidelineGrade` names the guideline and states the
grade in that guideline's words. They are never merged into one invented scale.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AdviceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptionCategory(StrEnum):
    switch = "switch"
    optimize = "optimize"
    augment = "augment"
    combine = "combine"
    neuromodulation = "neuromodulation"
    rapid_acting = "rapid_acting"
    psychotherapy = "psychotherapy"
    lifestyle = "lifestyle"
    digital = "digital"
    investigational = "investigational"


class AlertSeverity(StrEnum):
    """`urgent` is for same-day clinical review (PHQ-9 item 9); the three safety severities are
    `contraindicated`, `warning` and `info`. Listed from most to least pressing."""

    urgent = "urgent"
    contraindicated = "contraindicated"
    warning = "warning"
    info = "info"


class GuidelineGrade(AdviceModel):
    """One guideline's grading of one option, in that guideline's own vocabulary."""

    guideline: str = Field(description="e.g. 'CANMAT 2023', 'NICE NG222', 'VA/DoD 2022', "
                           "'FDA label', 'CPIC'.")
    vocabulary: str = Field(description="How that guideline grades, e.g. 'line + level of "
                            "evidence', 'recommendation verb', 'GRADE direction x strength'.")
    grade: str = Field(description="The grade as that guideline states it, e.g. '1st line, "
                       "Level 1', 'consider', 'not recommended'.")
    note: str | None = None
    source: str = Field(description="Resolved citation of the source key.")
    source_key: str


class DoseRange(AdviceModel):
    low: float | None = None
    high: float | None = None
    unit: str = "mg/day"
    text: str = Field(description="The range as the source gives it.")
    source: str
    source_key: str


class Alert(AdviceModel):
    severity: AlertSeverity
    code: str = Field(description="Stable machine code, e.g. 'maoi_serotonergic_combination'.")
    message: str
    subjects: list[str] = Field(
        default_factory=list,
        description="Drugs, option ids or scales the alert concerns.")
    evidence: list[str] = Field(default_factory=list, description="What in the record triggered "
                                "the alert (trial ids, dates, flags, readings).")
    sources: list[str] = Field(default_factory=list, description="Resolved citations.")
    source_keys: list[str] = Field(default_factory=list)


class PgxPhenotypeUsed(AdviceModel):
    gene: str
    phenotype: str
    basis: str = Field(description="'phenotype given', 'activity score 1.5 -> NM', ...")


class PgxFinding(AdviceModel):
    """A CPIC recommendation for one drug given the patient's phenotypes, in CPIC's exact words,
    or the explicit statement that CPIC makes none."""

    drug: str
    genes: list[str]
    phenotypes: list[PgxPhenotypeUsed] = Field(default_factory=list)
    status: Literal["recommendation", "no_recommendation", "no_guideline", "phenotype_missing"]
    recommendation: str
    strength: str | None = Field(default=None, description="CPIC strength: Strong, Moderate, "
                                 "Optional or No recommendation.")
    applies_to: Literal["current", "option"]
    sources: list[str] = Field(default_factory=list)
    source_keys: list[str] = Field(default_factory=list)


class PriorUse(AdviceModel):
    """The option (or its drug) was already used: it is never proposed again as if new."""

    ids: list[str] = Field(description="Trial, ECT or course ids.")
    outcome: str
    summary: str


class Recommendation(AdviceModel):
    rank: int = Field(ge=1)
    intervention: str = Field(description="Stable option id from options.yaml.")
    label: str
    category: OptionCategory
    rationale: list[str] = Field(default_factory=list)
    dose_range: DoseRange | None = None
    grades: list[GuidelineGrade] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list, description="Resolved citations.")
    source_keys: list[str] = Field(default_factory=list)
    design_basis: str | None = Field(default=None, description="Why this option surfaces at "
                                     "this stage: the project's stage mapping (tag D/A), not a "
                                     "guideline statement.")
    alerts: list[Alert] = Field(default_factory=list)
    pharmacogenomics: list[PgxFinding] = Field(default_factory=list)
    previously_tried: PriorUse | None = None
    blocked: bool = False
    blocked_reason: str | None = None


class ChecklistStatus(StrEnum):
    found = "found"
    to_check = "to_check"


class ChecklistItem(AdviceModel):
    id: str
    domain: str
    check: str
    status: ChecklistStatus
    evidence: list[str] = Field(default_factory=list, description="What in the record was found.")
    sources: list[str] = Field(default_factory=list)
    source_keys: list[str] = Field(default_factory=list)


class ReadingPoint(AdviceModel):
    date: date
    total: float
    band: str | None
    change_from_previous: float | None = None
    item9: int | None = None


class ScaleSeries(AdviceModel):
    scale: str
    readings: list[ReadingPoint]
    latest_band: str | None
    baseline: float | None = Field(default=None, description="First reading of the episode.")
    latest: float | None = None
    reduction_pct: float | None = Field(default=None, description="From the episode's first "
                                        "reading to the latest.")
    response: bool | None = None
    remission: bool | None = None
    response_threshold_pct: float
    remission_threshold: str = Field(description="e.g. '< 5'.")
    sources: list[str] = Field(default_factory=list)


class TrialResponse(AdviceModel):
    """Response and remission for one trial, read on one scale."""

    trial_id: str
    label: str
    scale: str
    baseline_date: date
    baseline: float
    endpoint_date: date
    endpoint: float
    reduction_pct: float
    response: bool
    remission: bool
    early_improvement: bool | None = Field(default=None, description="At least the sourced "
                                           "reduction within 2-4 weeks, when a reading exists.")


class Monitoring(AdviceModel):
    scales: list[ScaleSeries] = Field(default_factory=list)
    trials: list[TrialResponse] = Field(default_factory=list)
    alert_codes: list[str] = Field(default_factory=list, description="Codes of the monitoring "
                                   "alerts in the assessment's alerts list.")
    notes: list[str] = Field(default_factory=list)


__all__ = [
    "AdviceModel",
    "Alert",
    "AlertSeverity",
    "ChecklistItem",
    "ChecklistStatus",
    "DoseRange",
    "GuidelineGrade",
    "Monitoring",
    "OptionCategory",
    "PgxFinding",
    "PgxPhenotypeUsed",
    "PriorUse",
    "ReadingPoint",
    "Recommendation",
    "ScaleSeries",
    "TrialResponse",
]
