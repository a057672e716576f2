"""What both cohort engines share and neither needs Ibis for: the exclusion reasons, the agent
order and columns, the Thase & Rush class of a mechanism, and the policies the engines cover."""

from __future__ import annotations

from typing import Any

from trdstage.adapters.errors import InputError
from trdstage.adapters.omop import Concepts
from trdstage.domain import Policy, StageOrder, Taxonomy
from trdstage.knowledge import Knowledge
from trdstage.knowledge.loader import min_adequate_dose

BAD_SUPPLY = "drug_exposure: negative days_supply"
BAD_END = "drug_exposure: end before start"
PHQ9_OUT_OF_RANGE = "observation: PHQ-9 value out of range"


def agent_names(concepts: Concepts) -> list[str]:
    """The formulary agents the drug concepts map to, in name order (`agent_index`)."""
    return sorted({dc.agent for agents in concepts.drugs.values() for dc in agents})


def class_of(k: Knowledge, policy: Policy, mechanism: str) -> str:
    """The Thase & Rush class of a mechanism under the policy's taxonomy."""
    if policy.thase_rush_taxonomy is Taxonomy.literal:
        return k.classes[mechanism].literal_class
    return mechanism


def agent_columns(k: Knowledge, policy: Policy) -> dict[str, list[Any]]:
    """Per antidepressant: mechanism, Thase & Rush class, minimum adequate dose (mg/day)."""
    cols: dict[str, list[Any]] = {"agent": [], "mechanism": [], "cls": [], "min_mg": []}
    for name, ad in k.antidepressants.items():
        cols["agent"].append(name)
        cols["mechanism"].append(ad.mechanism)
        cols["cls"].append(class_of(k, policy, ad.mechanism))
        cols["min_mg"].append(min_adequate_dose(ad, policy))
    return cols


def check_policy(policy: Policy) -> None:
    """The cohort engine covers the policy options claims data can express."""
    if policy.thase_rush_order is not StageOrder.any_order:
        raise InputError(f"policy {policy.name}", "thase_rush_order 'sequential' is not "
                         "supported by the cohort engine (use a policy with any_order)")
    if policy.european_different_classes:
        raise InputError(f"policy {policy.name}", "european_different_classes: true is not "
                         "supported by the cohort engine (use a policy with false)")
    if not policy.thase_rush_tca_atypicals:
        raise InputError(f"policy {policy.name}", "thase_rush_tca_atypicals: false is not "
                         "supported by the cohort engine (use a policy with true)")




def augmenter_gap_days(rules: Any, policy: Policy) -> int:
    """The gap that joins rows of one augmenter into one addition. The OMOP adapter joins refills
    up to `augmenter_gap_days` (omop.yaml) into a regimen, and `engine.assess` then merges
    regimens of one augmenter up to the policy's `same_agent_gap_days`, as it does for
    antidepressants; both are gaps-and-islands on the same rows, so together they are one
    gaps-and-islands pass with the larger of the two gaps."""
    return max(int(rules.augmenter_gap_days), policy.same_agent_gap_days)


__all__ = ["BAD_END", "BAD_SUPPLY", "PHQ9_OUT_OF_RANGE", "agent_columns", "agent_names",
           "augmenter_gap_days", "check_policy", "class_of"]
