"""A patient's depression treatment history: pure, typed, validated values with no I/O.

Doses are normalised to milligrams per day before they reach these types (the adapters convert
units); agents are canonical generic names from the formulary.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trdstage.domain.enums import (
    Adherence,
    CourseKind,
    Laterality,
    Outcome,
    Scale,
    Severity,
    Sex,
)
from trdstage.domain.units import parse_dose


class DomainModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_period(start: date, end: date | None, what: str) -> None:
    if end is not None and end < start:
        raise ValueError(f"{what}: end {end.isoformat()} is before start {start.isoformat()}")


NonNegativeMg = Annotated[float, Field(ge=0)]


def _dose_schema(schema: dict[str, Any]) -> None:
    schema["properties"]["dose"] = {
        "description": "Daily dose: a number (mg), a string such as '150 mg', '0.6 g' or "
        "'50 mcg', or {value, unit}. Alternative to daily_dose_mg.",
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"type": "string"},
            {"type": "object", "properties": {"value": {"type": "number", "minimum": 0},
                                              "unit": {"type": "string"}},
             "required": ["value"], "additionalProperties": False},
            {"type": "null"},
        ],
    }


class DoseStep(DomainModel):
    """One dated daily dose. `end` None means ongoing at the assessment date.

    Files may give `dose` instead of `daily_dose_mg`: a number (mg), a string such as "150 mg",
    "0.6 g" or "50 mcg", or {value, unit}; it is converted to mg per day."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_dose_schema)

    start: date
    end: date | None = None
    daily_dose_mg: NonNegativeMg | None = None

    @model_validator(mode="before")
    @classmethod
    def _dose(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dose" in data:
            data = dict(data)
            raw = data.pop("dose")
            if "daily_dose_mg" in data:
                raise ValueError("give either dose or daily_dose_mg, not both")
            try:
                data["daily_dose_mg"] = None if raw is None else parse_dose(raw)
            except ValueError as exc:
                raise ValueError(f"dose: {exc}") from exc
        return data

    @model_validator(mode="after")
    def _period(self) -> Self:
        _check_period(self.start, self.end, "dose step")
        return self


class AddedAgent(DomainModel):
    """An agent added to a regimen: an augmenter (lithium, T3, an atypical antipsychotic) or a
    second antidepressant (combination). Its outcome, when absent, is the regimen's."""

    agent: str
    steps: list[DoseStep] = Field(min_length=1)
    adherence: Adherence | None = None
    outcome: Outcome | None = None


class MedicationRegimen(DomainModel):
    id: str | None = None
    agent: str
    steps: list[DoseStep] = Field(min_length=1)
    adherence: Adherence = Adherence.unknown
    outcome: Outcome | None = None
    added: list[AddedAgent] = Field(default_factory=list)

    @property
    def start(self) -> date:
        return min(s.start for s in self.steps)


class ECTCourse(DomainModel):
    id: str | None = None
    start: date
    end: date | None = None
    sessions: int | None = Field(default=None, ge=0)
    laterality: Laterality = Laterality.unknown
    outcome: Outcome | None = None

    @model_validator(mode="after")
    def _period(self) -> Self:
        _check_period(self.start, self.end, "ECT course")
        return self


class TreatmentCourse(DomainModel):
    """rTMS/iTBS, VNS, DBS, ketamine/esketamine or psychotherapy: outside Thase & Rush, needed by
    the later models and by the advice."""

    id: str | None = None
    kind: CourseKind
    modality: str | None = None  # e.g. "CBT", "IV", "intranasal"
    start: date
    end: date | None = None
    sessions: int | None = Field(default=None, ge=0)
    outcome: Outcome | None = None

    @model_validator(mode="after")
    def _period(self) -> Self:
        _check_period(self.start, self.end, f"{self.kind} course")
        return self


class RatingReading(DomainModel):
    scale: Scale
    date: date
    total: float = Field(ge=0)
    items: list[int] | None = None  # PHQ-9 items 1..9, each 0..3


class ItemReading(DomainModel):
    """One item answer of a rating scale recorded without a usable total: a stand-alone PHQ-9
    item Observation, an item of an incomplete panel, an item kept from a panel whose other
    items were unusable, an OMOP item concept. It carries no total (staging never reads it);
    the item alerts (PHQ-9 item 9) read it as they read the items of a full reading.
    `item` is 1-based in questionnaire order."""

    scale: Scale
    date: date
    item: int = Field(ge=1)
    score: int = Field(ge=0)


class Episode(DomainModel):
    id: str | None = None
    onset: date
    end: date | None = None
    severity: Severity | None = None
    psychotic_features: bool = False
    flags: list[str] = Field(default_factory=list)  # e.g. bipolar_features
    medications: list[MedicationRegimen] = Field(default_factory=list)
    ect: list[ECTCourse] = Field(default_factory=list)
    courses: list[TreatmentCourse] = Field(default_factory=list)
    ratings: list[RatingReading] = Field(default_factory=list)
    item_readings: list[ItemReading] = Field(default_factory=list)

    @model_validator(mode="after")
    def _period(self) -> Self:
        _check_period(self.onset, self.end, "episode")
        return self


_PHENOTYPE_NAMES = {
    "um": "UM", "ultrarapid": "UM", "ultrarapid metabolizer": "UM",
    "ultrarapid metaboliser": "UM",
    "rm": "RM", "rapid": "RM", "rapid metabolizer": "RM", "rapid metaboliser": "RM",
    "nm": "NM", "normal": "NM", "normal metabolizer": "NM", "normal metaboliser": "NM",
    "im": "IM", "intermediate": "IM", "intermediate metabolizer": "IM",
    "intermediate metaboliser": "IM",
    "likely im": "Likely IM", "likely intermediate metabolizer": "Likely IM",
    "likely intermediate metaboliser": "Likely IM",
    "pm": "PM", "poor": "PM", "poor metabolizer": "PM", "poor metaboliser": "PM",
    "likely pm": "Likely PM", "likely poor metabolizer": "Likely PM",
    "likely poor metaboliser": "Likely PM",
}


class PgxResult(DomainModel):
    """A pharmacogenomic result for one gene: a phenotype (UM, RM, NM, IM, Likely IM, PM,
    Likely PM, or the spelled-out CPIC names), or for CYP2D6 an activity score (mapped to a
    phenotype by the documented CPIC bands in knowledge/data/cpic.yaml). A diplotype alone is
    kept for the record but not interpreted: give the laboratory's phenotype with it."""

    gene: Literal["CYP2D6", "CYP2C19", "CYP2B6"]
    phenotype: str | None = None
    activity_score: float | None = Field(default=None, ge=0)
    diplotype: str | None = None
    test_date: date | None = None

    @field_validator("phenotype")
    @classmethod
    def _phenotype_code(cls, value: str | None) -> str | None:
        """Spelled-out CPIC names and abbreviations, any case, to one code."""
        if value is None:
            return None
        code = _PHENOTYPE_NAMES.get(" ".join(value.lower().split()))
        if code is None:
            raise ValueError(f"unknown phenotype {value!r} (use UM, RM, NM, IM, "
                             "Likely IM, PM or Likely PM)")
        return code

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.phenotype is None and self.activity_score is None and self.diplotype is None:
            raise ValueError("give a phenotype, an activity score or a diplotype")
        if self.activity_score is not None and self.gene != "CYP2D6":
            raise ValueError("an activity score is only interpreted for CYP2D6")
        return self


class Patient(DomainModel):
    """`flags` (and Episode.flags) use the vocabulary documented in
    knowledge/data/reassessment.yaml (e.g. suicidality, seizure_disorder, eating_disorder,
    pregnancy, substance_use, hypothyroidism, bipolar_features); the advice layer reads them.
    `other_medications`: current non-antidepressant co-medications by generic name (e.g.
    hydrochlorothiazide, ibuprofen, tramadol, linezolid), read by the interaction checks.
    `pharmacogenomics`: CYP2D6 / CYP2C19 / CYP2B6 results.
    `death_date` / `deceased`: the patient has died (on `death_date` when known); the history
    ends there and no treatment advice is given. A death date implies `deceased`."""

    id: str = "patient"
    birth_date: date | None = None
    death_date: date | None = None
    deceased: bool = False
    sex: Sex = Sex.unknown
    flags: list[str] = Field(default_factory=list)
    episodes: list[Episode] = Field(min_length=1)
    other_medications: list[str] = Field(default_factory=list)
    pharmacogenomics: list[PgxResult] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _deceased(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("death_date") is not None:
            if data.get("deceased") is False:
                raise ValueError("deceased is false but a death_date is given")
            data = {**data, "deceased": True}
        return data

    @model_validator(mode="after")
    def _death(self) -> Self:
        if self.death_date is not None and self.birth_date is not None and \
                self.death_date < self.birth_date:
            raise ValueError(f"death_date {self.death_date.isoformat()} is before "
                             f"birth_date {self.birth_date.isoformat()}")
        return self

    def current_episode(self, as_of: date) -> Episode:
        """The episode with the latest onset on or before `as_of` (the first one if none is)."""
        started = [e for e in self.episodes if e.onset <= as_of]
        if not started:
            return min(self.episodes, key=lambda e: e.onset)
        return max(started, key=lambda e: e.onset)
