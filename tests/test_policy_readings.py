"""Policy settings for readings the literature leaves open: CANMAT's dose floor, the European
model's class requirement, Thase & Rush's atypical TCAs; the MSM combination reading stated."""

from __future__ import annotations

import pytest

from builders import AS_OF, History
from trdstage.adapters.errors import InputError
from trdstage.cohort.rules import agent_columns, check_policy
from trdstage.domain import Policy
from trdstage.engine import assess
from trdstage.knowledge import load_knowledge, load_policy


def policy(**update: object) -> Policy:
    return load_policy("default").model_copy(update={"name": "test", **update})


def test_mirtazapine_15_mg_is_adequate_by_default_but_not_under_the_canmat_floor() -> None:
    h = History(onset="2025-01-01")
    h.trial("mirtazapine", 15, weeks=8)
    patient = h.patient()
    default = assess(patient, AS_OF).trials[0]
    assert default.adequate and default.min_adequate_dose_mg == 15
    floor = assess(patient, AS_OF, policy="canmat-floor").trials[0]
    assert not floor.adequate and floor.min_adequate_dose_mg == 30


def test_reboxetine_floor_is_8_mg_and_other_agents_keep_their_minimum() -> None:
    k = load_knowledge()
    cols = agent_columns(k, load_policy("canmat-floor"))
    mins = dict(zip(cols["agent"], cols["min_mg"], strict=True))
    assert mins["reboxetine"] == 8 and mins["mirtazapine"] == 30
    assert mins["sertraline"] == k.antidepressants["sertraline"].min_adequate_mg
    default = dict(zip(*(agent_columns(k, load_policy("default"))[c] for c in ("agent", "min_mg")),
                       strict=True))
    assert default["reboxetine"] == 4 and default["mirtazapine"] == 15


def two_ssris() -> History:
    h = History(onset="2025-01-01")
    h.trial("sertraline", 150, weeks=8)
    h.trial("citalopram", 40, weeks=8)
    return h


def test_european_two_failed_trials_of_one_class_is_trd1_by_default() -> None:
    result = assess(two_ssris().patient(), AS_OF).staging.european
    assert result.category == "TRD1"
    assert any("different classes" in c for c in result.caveats)


def test_european_different_classes_setting_needs_two_classes() -> None:
    patient = two_ssris().patient()
    result = assess(patient, AS_OF, policy=policy(european_different_classes=True))
    assert result.staging.european.category == "NR"
    assert any("one class" in r for r in result.staging.european.reasons)
    h = two_ssris()
    h.trial("venlafaxine", 225, weeks=8)
    mixed = assess(h.patient(), AS_OF, policy=policy(european_different_classes=True))
    assert mixed.staging.european.category == "TRD2"


def stage_three_with(agent: str, dose: float) -> History:
    h = History(onset="2025-01-01")
    h.trial("sertraline", 150, weeks=8)
    h.trial("venlafaxine", 225, weeks=8)
    h.trial(agent, dose, weeks=8)
    return h


@pytest.mark.parametrize("agent", ["opipramol", "maprotiline", "amoxapine"])
def test_atypical_tcas_count_for_stage_three_by_default_and_say_so(agent: str) -> None:
    result = assess(stage_three_with(agent, 150).patient(), AS_OF).staging.thase_rush
    assert result.stage == 3
    assert any(agent in c and "[D]" in c for c in result.caveats)


@pytest.mark.parametrize("agent", ["opipramol", "maprotiline", "amoxapine"])
def test_atypical_tcas_do_not_count_when_the_setting_is_off(agent: str) -> None:
    patient = stage_three_with(agent, 150).patient()
    result = assess(patient, AS_OF, policy=policy(thase_rush_tca_atypicals=False))
    assert result.staging.thase_rush.stage == 2
    assert any("thase_rush_tca_atypicals = false" in c for c in result.staging.thase_rush.caveats)
    nortriptyline = assess(stage_three_with("nortriptyline", 100).patient(), AS_OF,
                           policy=policy(thase_rush_tca_atypicals=False))
    assert nortriptyline.staging.thase_rush.stage == 3


def test_msm_combination_read_as_augmentation_is_marked_derived() -> None:
    h = History(onset="2025-01-01")
    h.trial("sertraline", 150, weeks=12, added=[("mirtazapine", 30, 2, 8)])
    result = assess(h.patient(), AS_OF).staging.maudsley
    assert any("combination" in c and "[D]" in c for c in result.caveats)


def test_cohort_refuses_the_settings_it_does_not_implement() -> None:
    check_policy(load_policy("canmat-floor"))  # implemented through the agent table
    with pytest.raises(InputError, match="european_different_classes"):
        check_policy(policy(european_different_classes=True))
    with pytest.raises(InputError, match="thase_rush_tca_atypicals"):
        check_policy(policy(thase_rush_tca_atypicals=False))
