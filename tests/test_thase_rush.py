"""Thase & Rush staging under the issue's defaults and options."""

from datetime import timedelta

import pytest

from builders import History


def _stage(h: History, policy: str = "default") -> int:
    return h.assess(policy=policy).staging.thase_rush.stage


def test_no_failed_trial_is_stage_zero() -> None:
    h = History()
    h.trial("sertraline", 100, outcome="response")
    assert _stage(h) == 0


def test_two_failures_of_one_class_stay_at_stage_one() -> None:
    h = History()
    h.trial("fluoxetine", 40)
    h.trial("sertraline", 150)
    assert _stage(h) == 1


@pytest.mark.parametrize(("trials", "stage"), [
    ([("sertraline", 100)], 1),
    ([("sertraline", 100), ("venlafaxine", 225)], 2),
    ([("sertraline", 100), ("venlafaxine", 225), ("nortriptyline", 100)], 3),
    ([("sertraline", 100), ("venlafaxine", 225), ("nortriptyline", 100),
      ("phenelzine", 60)], 4),
])
def test_stages_one_to_four(trials: list[tuple[str, float]], stage: int) -> None:
    h = History()
    for agent, dose in trials:
        h.trial(agent, dose)
    assert _stage(h) == stage


def _four_stage(h: History) -> None:
    for agent, dose in [("paroxetine", 40), ("duloxetine", 120), ("nortriptyline", 100),
                        ("tranylcypromine", 40)]:
        h.trial(agent, dose)


def test_stage_five_needs_a_failed_bilateral_ect_course() -> None:
    h = History()
    _four_stage(h)
    h.ect(sessions=10, laterality="bilateral")
    assert _stage(h) == 5


def test_unilateral_ect_does_not_reach_stage_five() -> None:
    h = History()
    _four_stage(h)
    h.ect(sessions=10, laterality="unilateral")
    result = h.assess().staging.thase_rush
    assert result.stage == 4
    assert any("unilateral" in c for c in result.caveats)


def test_unknown_laterality_counts_with_a_caveat() -> None:
    h = History()
    _four_stage(h)
    h.ect(sessions=10, laterality="unknown")
    result = h.assess().staging.thase_rush
    assert result.stage == 5
    assert any("laterality is unknown" in c for c in result.caveats)


def test_ect_course_below_the_minimum_sessions_is_not_a_failure() -> None:
    h = History()
    _four_stage(h)
    h.ect(sessions=5, laterality="bilateral")  # ect_min_sessions = 6 (typical course 6-12)
    assert _stage(h) == 4
    h2 = History()
    _four_stage(h2)
    h2.ect(sessions=None, laterality="bilateral")
    assert _stage(h2) == 4


def test_the_tca_and_maoi_must_be_further_distinct_trials() -> None:
    # Vignette D5: the MAOI is one of the two different classes, so no trial is left for IV.
    h = History()
    h.trial("phenelzine", 60)
    h.trial("escitalopram", 20)
    h.trial("imipramine", 200)
    assert _stage(h) == 3


def test_order_does_not_matter_by_default_but_does_under_sequential() -> None:
    h = History()
    h.trial("nortriptyline", 100)   # TCA first
    h.trial("sertraline", 100)
    h.trial("venlafaxine", 225)
    result = h.assess().staging.thase_rush
    assert result.stage == 3
    assert any("sequential reading gives stage 2" in c for c in result.caveats)
    assert _stage(h, "literal-sequential") == 2


def test_mechanism_taxonomy_separates_bupropion_and_mirtazapine_literal_does_not() -> None:
    # Vignette D7.
    h = History(severity="mild")
    h.trial("bupropion", 300)
    h.trial("mirtazapine", 30)
    assert _stage(h) == 2
    assert _stage(h, "literal-sequential") == 1


def test_rima_is_not_counted_as_an_maoi() -> None:
    h = History()
    for agent, dose in [("sertraline", 100), ("venlafaxine", 225), ("nortriptyline", 100),
                        ("moclobemide", 450)]:
        h.trial(agent, dose)
    result = h.assess().staging.thase_rush
    assert result.stage == 3
    assert any("RIMA" in c for c in result.caveats)


def test_caveats_for_augmentation_early_ect_and_treatments_outside_the_model() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=10, added=[("aripiprazole", 5, 2, 8)])
    h.ect(sessions=8, laterality="bilateral")
    h.course("esketamine")
    h.course("rtms")
    caveats = " | ".join(h.assess().staging.thase_rush.caveats)
    assert "augmentation or combination" in caveats and "aripiprazole" in caveats
    assert "not counted below stage IV" in caveats
    assert "esketamine" in caveats and "rtms" in caveats


def test_result_names_the_trials_it_counted() -> None:
    h = History()
    h.trial("sertraline", 100)
    h.trial("citalopram", 40)
    h.trial("venlafaxine", 225)
    result = h.assess().staging.thase_rush
    assert result.roles == {"first": "T1", "different_class": "T3"}
    assert any("not needed" in r and "T2" in r for r in result.reasons)


def test_sequential_ect_must_follow_the_maoi() -> None:
    h = History()
    course = h.ect(sessions=10, laterality="bilateral", start=h.cursor)
    h.cursor = course.end + timedelta(days=7)  # type: ignore[operator]
    _four_stage(h)
    assert _stage(h) == 5
    assert _stage(h, "literal-sequential") == 4
