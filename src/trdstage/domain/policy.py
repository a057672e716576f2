"""The adequacy and staging policy: every rule the literature leaves open, as a named setting.

The values themselves live in knowledge data (`knowledge/data/policies/*.yaml`), each with a
source key; this module only declares what a policy is. The bounds on each setting guard
against typing errors (a threshold of 500 %, a window of 10^9 days): they are ranges no published
definition comes near, not clinical limits.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trdstage.domain.enums import Outcome, Scale


class Scope(StrEnum):
    current_episode = "current_episode"
    lifetime = "lifetime"


class Taxonomy(StrEnum):
    mechanism = "mechanism"
    literal = "literal"


class StageOrder(StrEnum):
    any_order = "any_order"
    sequential = "sequential"


class MissingDose(StrEnum):
    """A trial whose dose is not recorded: not adequate (default), or judged on duration alone."""

    inadequate = "inadequate"
    duration_only = "duration_only"


class MinDoseBasis(StrEnum):
    """Minimum adequate dose: the MGH-ATRQ figure (default), or CANMAT 2023 Table 3.3's lowest
    listed dose where that is higher (mirtazapine, reboxetine)."""

    mgh_atrq = "mgh_atrq"
    canmat_floor = "canmat_floor"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    scope: Scope
    min_adequate_weeks: float = Field(gt=0, le=104)
    same_agent_gap_days: int = Field(ge=0, le=365)
    concurrent_min_days: int = Field(ge=1, le=365)
    poor_adherence_inadequate: bool
    missing_dose: MissingDose
    baseline_window_days: int = Field(ge=0, le=365)
    response_min_reduction_pct: float = Field(gt=0, le=100)
    partial_response_min_reduction_pct: float = Field(ge=0, le=100)
    failure_outcomes: list[Outcome] = Field(min_length=1, max_length=len(Outcome))
    outcome_scale_priority: list[Scale] = Field(min_length=1, max_length=len(Scale))
    thase_rush_taxonomy: Taxonomy
    thase_rush_order: StageOrder
    ect_min_sessions: int = Field(ge=1, le=100)
    mgh_duration_optimisation_weeks: float = Field(gt=0, le=104)
    european_crd_months: float = Field(gt=0, le=240)
    regulatory_min_failed_agents: int = Field(ge=1, le=20)
    failure_from_switch_days: int | None = Field(
        default=None, ge=0, le=365,
        description="Claims convention: an adequate trial with no recorded or rated outcome, "
        "followed within this many days of its end by another antidepressant or an augmenter, "
        "is read as non-response. None (default): never inferred.")
    sources: dict[str, str] = Field(
        default_factory=dict,
        description="Setting name -> source key (resolved in sources.yaml).",
    )
    min_dose_basis: MinDoseBasis = Field(
        default=MinDoseBasis.mgh_atrq,
        description="mgh_atrq (default): the MGH-ATRQ minimum adequate doses; canmat_floor: "
        "the higher of that and CANMAT 2023 Table 3.3's lowest dose (mirtazapine 30 mg, "
        "reboxetine 8 mg).")
    european_different_classes: bool = Field(
        default=False,
        description="European model: TRD needs failed trials of at least two mechanism "
        "classes (the secondary summaries' reading of Souery 1999). False (default): any two "
        "failed adequate trials.")
    thase_rush_tca_atypicals: bool = Field(
        default=True,
        description="Thase & Rush stage III: opipramol, maprotiline and amoxapine (classed with "
        "the TCAs) count as the tricyclic trial (default). False: only the tricyclics proper.")

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.partial_response_min_reduction_pct > self.response_min_reduction_pct:
            raise ValueError(
                f"partial_response_min_reduction_pct ({self.partial_response_min_reduction_pct:g})"
                f" is above response_min_reduction_pct ({self.response_min_reduction_pct:g})")
        for field in ("failure_outcomes", "outcome_scale_priority"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{field} lists a value twice")
        unknown = sorted(set(self.sources) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"sources name settings that do not exist: {', '.join(unknown)}")
        return self
