"""Typed shape of the knowledge data files. Unknown fields are refused, so a typo fails loudly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SourceTag = Literal["V", "S", "U", "D", "A"]


class Source(KnowledgeModel):
    citation: str
    tag: SourceTag
    note: str | None = None


class SourcesFile(KnowledgeModel):
    sources: dict[str, Source]


class MechanismClass(KnowledgeModel):
    id: str
    label: str
    literal_class: Literal["SSRI", "SNRI", "TCA", "MAOI", "other"]


class Antidepressant(KnowledgeModel):
    name: str
    aliases: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    rxnorm: str | None = None
    atc: str | None = None
    omop_concept_id: int | None = None
    mechanism: str
    min_adequate_mg: float | None = Field(default=None, gt=0)
    usual_max_mg: float | None = Field(default=None, gt=0)
    notes: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    ingredient_names: list[str] = Field(
        default_factory=list, description="RxNorm ingredient names besides the generic name "
        "(salts), matched in an OMOP `concept` table when omop_concept_id is null.")
    canmat_min_mg: float | None = Field(
        default=None, gt=0, description="Lower end of CANMAT 2023 Table 3.3's dose range where "
        "it lies above min_adequate_mg; used under the policy setting min_dose_basis: "
        "canmat_floor.")
    antidepressant_routes: list[str] = Field(
        default_factory=list, description="The routes at which a trial counts as an "
        "antidepressant trial (e.g. transdermal selegiline); empty: every route.")
    brand_caveats: dict[str, str] = Field(
        default_factory=dict, description="Brand name -> caveat added to a trial recorded "
        "under that brand (e.g. a brand licensed for another indication).")


class Augmenter(KnowledgeModel):
    name: str
    aliases: list[str] = Field(default_factory=list)
    group: str
    brands: list[str] = Field(default_factory=list)
    rxnorm: str | None = None
    atc: str | None = None
    omop_concept_id: int | None = None
    target_min_mg: float | None = None
    target_max_mg: float | None = None
    notes: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    ingredient_names: list[str] = Field(
        default_factory=list, description="RxNorm ingredient names besides the generic name "
        "(salts), matched in an OMOP `concept` table when omop_concept_id is null.")


class RapidActingAgent(KnowledgeModel):
    name: str
    course_kind: Literal["ketamine", "esketamine"]
    brands: list[str] = Field(default_factory=list)
    rxnorm: str | None = None
    omop_concept_id: int | None = None
    sources: dict[str, str] = Field(default_factory=dict)


class FormularyFile(KnowledgeModel):
    mechanism_classes: list[MechanismClass]
    mechanism_classes_source: str
    default_sources: dict[str, str]
    antidepressants: list[Antidepressant]
    augmenters: list[Augmenter]
    route_terms: dict[str, list[str]] = Field(default_factory=dict)
    route_terms_source: str = "project-assumption"
    rapid_acting: list[RapidActingAgent]


class Band(KnowledgeModel):
    label: str
    low: float
    high: float


class Threshold(KnowledgeModel):
    op: Literal["<", "<="]
    value: float

    def met(self, total: float) -> bool:
        return total < self.value if self.op == "<" else total <= self.value


class ScaleSpec(KnowledgeModel):
    id: str
    name: str
    min: float
    max: float
    items: int | None = None
    item_max: int | None = None
    range_source: str
    bands: list[Band]
    bands_source: str
    response_min_reduction_pct: float
    response_source: str
    remission: Threshold
    remission_source: str

    def band(self, total: float) -> str | None:
        for b in self.bands:
            if b.low <= total <= b.high:
                return b.label
        return None


class ScalesFile(KnowledgeModel):
    scales: list[ScaleSpec]


class StageLabel(KnowledgeModel):
    stage: int
    label: str


class ThaseRushSpec(KnowledgeModel):
    source: str
    stages: list[StageLabel]
    stage_3_mechanism: str
    stage_4_mechanism: str
    # classed with the TCAs, counted for stage III only under thase_rush_tca_atypicals
    stage_3_atypical_tcas: list[str] = Field(default_factory=list)
    stage_3_atypical_note: str = ""


class Points(KnowledgeModel):
    value: float
    source: str
    note: str | None = None


class MghSpec(KnowledgeModel):
    source: str
    points: dict[
        Literal[
            "failed_trial",
            "dose_optimisation",
            "duration_optimisation",
            "augmentation_or_combination",
            "failed_ect_course",
        ],
        Points,
    ]


class DurationBand(KnowledgeModel):
    max_months: float | None
    points: int
    label: str


class CountBand(KnowledgeModel):
    max: int | None
    points: int


class MaudsleySpec(KnowledgeModel):
    source: str
    duration_months: list[DurationBand]
    duration_source: str
    duration_note: str
    severity: dict[
        Literal["subsyndromal", "mild", "moderate", "severe", "severe_psychotic"], int
    ]
    severity_source: str
    failed_antidepressants: list[CountBand]
    failed_antidepressants_source: str
    augmentation_points: int
    ect_points: int
    binary_items_source: str
    combination_note: str = ""
    bands: list[Band]
    bands_source: str


class EuropeanStep(KnowledgeModel):
    failed: int
    category: str


class EuropeanSpec(KnowledgeModel):
    source: str
    by_failed_trials: list[EuropeanStep]
    by_failed_trials_source: str
    by_failed_trials_note: str
    crd_min_failed_trials: int
    crd_source: str
    crd_note: str
    different_classes_note: str = ""


class RegulatorySpec(KnowledgeModel):
    sources: list[str]


class StagingModelsFile(KnowledgeModel):
    thase_rush: ThaseRushSpec
    mgh: MghSpec
    maudsley: MaudsleySpec
    european: EuropeanSpec
    regulatory: RegulatorySpec
