"""Typed shape and loader of omop.yaml: the OMOP CDM tables trdstage reads, its concept sets and
the rules that turn rows into a history. Every source key must resolve in sources.yaml."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field

from trdstage.domain import Severity, Sex
from trdstage.knowledge.loader import (
    KnowledgeError,
    load_data_file,
    load_knowledge,
)
from trdstage.knowledge.schema import KnowledgeModel

ColumnType = Literal["int64", "int32", "float64", "date", "string"]


class Column(KnowledgeModel):
    name: str
    type: ColumnType
    required: bool = False


class TableSpec(KnowledgeModel):
    optional: bool = False
    note: str | None = None
    columns: list[Column]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


class Code(KnowledgeModel):
    vocabulary: str
    code: str


class ConceptSet(KnowledgeModel):
    label: str
    concepts: list[int] = Field(default_factory=list)
    codes: list[Code] = Field(default_factory=list)
    descendants: bool = False
    exclude: list[int] = Field(default_factory=list)
    source: str
    codes_source: str | None = None


class UnitFactor(KnowledgeModel):
    concept_id: int
    unit: str
    factor: float = Field(gt=0)


class GenderMap(KnowledgeModel):
    concept_id: int
    sex: Sex


class Rules(KnowledgeModel):
    episode_washout_days: int = Field(ge=0)
    episode_washout_days_source: str
    mdd_diagnosis_opens_episode: bool
    mdd_diagnosis_opens_episode_source: str
    require_mdd_diagnosis: bool
    require_mdd_diagnosis_source: str
    end_date_inclusive: bool
    end_date_inclusive_source: str
    augmenter_gap_days: int = Field(ge=0)
    augmenter_gap_days_source: str
    ect_course_gap_days: int = Field(ge=0)
    ect_course_gap_days_source: str
    rtms_course_gap_days: int = Field(ge=0)
    rtms_course_gap_days_source: str
    severity_window_days: int = Field(ge=0)
    severity_window_days_source: str
    severity_from_phq9: dict[str, Severity]
    severity_from_phq9_source: str
    # persons whose year of birth is after the as-of year, or more than this many years before
    # it, are a data error: counted and not staged
    max_age_years: int = Field(default=125, ge=1, le=200)
    max_age_years_source: str = "omop-adapter-assumptions"


class SyntheticSpec(KnowledgeModel):
    """Clinical numbers the synthesiser uses (its other shapes are synthetic settings)."""

    star_d_remission: list[float] = Field(min_length=4, max_length=4)
    star_d_remission_source: str


class ReportSpec(KnowledgeModel):
    """Settings of `trdstage cohort report`."""

    levels: list[str] = Field(min_length=2)
    levels_source: str
    thase_rush: dict[str, int]
    european: dict[str, int]
    maudsley: dict[str, int]
    mgh_upper_bounds: list[float]
    mgh_source: str
    regulatory: dict[str, int]
    age_bands: list[int] = Field(min_length=1)
    age_bands_source: str
    min_count: int = Field(ge=1)
    min_count_source: str


SetName = Literal["phq9_total", "mdd", "bipolar", "psychosis", "ect", "rtms", "phq9_item9"]


class OmopSpec(KnowledgeModel):
    cdm_version: str
    source: str
    tables: dict[str, TableSpec]
    concept_sets: dict[SetName, ConceptSet]
    units_to_mg: list[UnitFactor]
    units_source: str
    gender: list[GenderMap]
    gender_source: str
    rules: Rules
    synthetic: SyntheticSpec
    report: ReportSpec

    def with_rules(self, **changes: object) -> OmopSpec:
        """A copy with some rules changed (validated), for settings given on the command line."""
        rules = Rules.model_validate({**self.rules.model_dump(), **changes})
        return self.model_copy(update={"rules": rules})


@cache
def load_omop_spec() -> OmopSpec:
    spec, _ = load_data_file("omop.yaml", OmopSpec)
    phq9 = load_knowledge().scales.get("PHQ-9")
    if phq9 is None:
        raise KnowledgeError("omop.yaml: the PHQ-9 scale is missing from scales.yaml")
    bands = {b.label for b in phq9.bands}
    unknown = sorted(set(spec.rules.severity_from_phq9) - bands)
    if unknown:
        raise KnowledgeError(f"omop.yaml: rules.severity_from_phq9: unknown PHQ-9 band(s) "
                             f"{', '.join(unknown)} (known: {', '.join(sorted(bands))})")
    return spec


__all__ = ["Column", "ConceptSet", "OmopSpec", "Rules", "TableSpec", "load_omop_spec"]
