"""Second agents alongside a trial: augmentation, combination or a cross-taper switch."""

from builders import History
from trdstage.domain import ConcurrentUse


def test_augmenter_for_28_days_is_augmentation_and_never_a_trial() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=10, added=[("lithium", 600, 4, 4)])
    a = h.assess()
    assert [t.agents for t in a.trials] == [["sertraline"]]
    (c,) = a.trials[0].concurrent
    assert c.role is ConcurrentUse.augmentation and c.counted and c.overlap_days == 28


def test_augmenter_for_under_28_days_is_not_counted() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=10, added=[("quetiapine", 150, 4, 3)])
    (c,) = h.assess().trials[0].concurrent
    assert not c.counted
    assert h.assess().staging.maudsley.components["augmentation"] == 0  # type: ignore[index]


def test_second_antidepressant_is_combination_and_a_trial_of_its_own() -> None:
    h = History()
    h.trial("venlafaxine", 225, weeks=12, added=[("mirtazapine", 30, 2, 8)])
    a = h.assess()
    assert sorted(t.agents[0] for t in a.trials) == ["mirtazapine", "venlafaxine"]
    assert all(t.failed for t in a.trials)  # both adequate; the regimen's outcome applies
    assert all(c.role is ConcurrentUse.combination for t in a.trials for c in t.concurrent)
    assert a.staging.thase_rush.stage == 2


def test_combined_antidepressant_below_dose_is_not_a_trial_of_its_class() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=12, added=[("bupropion", 150, 2, 8)])  # minimum 300
    a = h.assess()
    bupropion = next(t for t in a.trials if t.agents == ["bupropion"])
    assert not bupropion.adequate
    assert a.staging.thase_rush.stage == 1


def test_short_overlap_between_two_antidepressants_is_a_cross_taper() -> None:
    h = History(gap_days=-14)  # the next trial starts two weeks before this one ends
    h.trial("sertraline", 100, weeks=8)
    h.trial("venlafaxine", 225, weeks=8)
    a = h.assess()
    (c,) = a.trials[0].concurrent
    assert c.role is ConcurrentUse.cross_taper and not c.counted
    assert a.staging.maudsley.components["augmentation"] == 0  # type: ignore[index]


def test_augmenter_refills_merge_into_one_course() -> None:
    # lithium dispensed in three 14-day fills: one 42-day augmentation, not three short ones
    h = History()
    h.trial("sertraline", 100, weeks=10,
            added=[("lithium", 600, 2, 2), ("lithium", 600, 4, 2), ("lithium", 600, 6, 2)])
    (c,) = h.assess().trials[0].concurrent
    assert c.agent == "lithium" and c.counted and c.overlap_days == 42


def test_no_episode_by_the_as_of_date_is_warned() -> None:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 100)
    a = h.assess(as_of="2025-01-01")
    assert a.warnings[0].code == "no_episode_by_as_of"
    assert a.staging.thase_rush.stage == 0
