"""The adequacy and staging policy: every rule the literature leaves open, as a named setting.

The values themselves live in knowledge data (`knowledge/data/policies/*.yaml`), each with a
source key; this module only declares what a policy is.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

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


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    scope: Scope
    min_adequate_weeks: float = Field(gt=0)
    same_agent_gap_days: int = Field(ge=0)
    concurrent_min_days: int = Field(ge=1)
    poor_adherence_inadequate: bool
    missing_dose: MissingDose
    baseline_window_days: int = Field(ge=0)
    response_min_reduction_pct: float = Field(gt=0, le=100)
    partial_response_min_reduction_pct: float = Field(ge=0, le=100)
    failure_outcomes: list[Outcome] = Field(min_length=1)
    outcome_scale_priority: list[Scale] = Field(min_length=1)
    thase_rush_taxonomy: Taxonomy
    thase_rush_order: StageOrder
    ect_min_sessions: int = Field(ge=1)
    mgh_duration_optimisation_weeks: float = Field(gt=0)
    european_crd_months: float = Field(gt=0)
    regulatory_min_failed_agents: int = Field(ge=1)
    failure_from_switch_days: int | None = Field(
        default=None, ge=0,
        description="Claims convention: an adequate trial with no recorded or rated outcome, "
        "followed within this many days of its end by another antidepressant or an augmenter, "
        "is read as non-response. None (default): never inferred.")
    sources: dict[str, str] = Field(
        default_factory=dict,
        description="Setting name -> source key (resolved in sources.yaml).",
    )
