"""Trial adequacy, merging and scope: the rules of issue 2 §3 under policy `default`."""

from datetime import date, timedelta

from builders import History
from trdstage.domain import Outcome


def test_six_weeks_at_minimum_dose_is_adequate_and_fails() -> None:
    h = History()
    h.trial("sertraline", 50, weeks=6)
    t = h.assess().trials[0]
    assert t.adequate and t.failed
    assert t.weeks_at_adequate_dose == 6


def test_under_six_weeks_is_not_adequate() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=5.8)
    t = h.assess().trials[0]
    assert not t.adequate and not t.failed
    assert any("needs 6" in r for r in t.reasons)


def test_dose_below_minimum_is_not_adequate() -> None:
    h = History()
    h.trial("escitalopram", 5, weeks=12)  # minimum 10 mg (MGH-ATRQ COMP006 form)
    t = h.assess().trials[0]
    assert not t.adequate and not t.failed
    assert t.min_adequate_dose_mg == 10


def test_only_weeks_at_or_above_minimum_count() -> None:
    h = History()
    # venlafaxine minimum 150: 4 weeks at 75 do not count, 5 weeks at 225 are not enough
    h.trial("venlafaxine", None, steps=[(75, 4), (225, 5)])
    t = h.assess().trials[0]
    assert t.weeks == 9 and t.weeks_at_adequate_dose == 5
    assert not t.adequate


def test_poor_adherence_makes_a_trial_inadequate() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=10, adherence="poor")
    t = h.assess().trials[0]
    assert not t.adequate
    assert any("adherence" in r for r in t.reasons)


def test_partial_adherence_does_not() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=10, adherence="partial")
    assert h.assess().trials[0].failed


def test_intolerance_is_not_a_failure() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8, outcome="intolerance")
    t = h.assess().trials[0]
    assert t.adequate and not t.failed
    assert t.outcome is Outcome.intolerance


def test_unknown_outcome_is_not_a_failure_and_says_so() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8, outcome=None)
    t = h.assess().trials[0]
    assert t.outcome is Outcome.unknown and not t.failed
    assert any("not counted as a failure" in r for r in t.reasons)


def test_records_of_one_agent_with_gap_up_to_30_days_merge() -> None:
    h = History()
    first = h.trial("sertraline", 100, weeks=4)
    h.trial("sertraline", 100, weeks=4, start=first.steps[-1].end + timedelta(days=30))
    a = h.assess()
    assert len(a.trials) == 1
    assert a.trials[0].records == ["rx1", "rx2"]
    assert a.trials[0].adequate  # 8 weeks at dose in total


def test_gap_over_30_days_starts_a_new_trial() -> None:
    h = History()
    first = h.trial("sertraline", 100, weeks=4)
    h.trial("sertraline", 100, weeks=4, start=first.steps[-1].end + timedelta(days=31))
    a = h.assess()
    assert len(a.trials) == 2
    assert not any(t.adequate for t in a.trials)


def test_current_episode_scope_excludes_earlier_trials() -> None:
    h = History(onset="2024-06-01")
    h.trial("fluoxetine", 40, weeks=8, start="2023-01-01")  # before this episode's onset
    h.trial("venlafaxine", 225, weeks=8)
    a = h.assess()
    out, inside = a.trials
    assert not out.in_scope and inside.in_scope
    assert a.staging.thase_rush.stage == 1
    assert h.assess(policy="lifetime").staging.thase_rush.stage == 2


def test_ongoing_trial_is_clipped_to_the_as_of_date() -> None:
    h = History(onset="2025-10-01")
    h.trial("sertraline", 100, weeks=20, ongoing=True)
    a = h.assess(as_of=date(2025, 11, 26))  # 6 weeks after the start on 2025-10-15
    t = a.trials[0]
    assert t.ongoing and t.end is None
    assert t.weeks == 6 and t.adequate


def test_trial_after_the_as_of_date_is_not_assessed_and_warned() -> None:
    h = History(onset="2024-01-01")
    h.trial("sertraline", 100, weeks=8, start="2025-06-01")
    a = h.assess(as_of=date(2025, 1, 1))
    assert a.trials == []
    assert [w.code for w in a.warnings] == ["after_as_of"]


def test_missing_dose_is_inadequate_by_default_and_duration_only_under_claims() -> None:
    h = History()
    h.trial("sertraline", None, weeks=8)
    assert not h.assess().trials[0].adequate
    claims = h.assess(policy="claims").trials[0]
    assert claims.adequate and claims.failed
    assert any("duration alone" in r for r in claims.reasons)


def test_agent_without_sourced_minimum_dose_cannot_be_adequate() -> None:
    h = History()
    h.trial("dosulepin", 150, weeks=8)
    t = h.assess().trials[0]
    assert not t.adequate
    assert any("no sourced minimum" in r for r in t.reasons)


def test_claims_policy_reads_a_switch_within_180_days_as_failure() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8, outcome=None)
    h.trial("venlafaxine", 225, weeks=8, outcome=None)
    a = h.assess(policy="claims")
    first, second = a.trials
    assert first.failed and first.outcome_basis == "switch"
    assert second.outcome is Outcome.unknown  # nothing followed it
    assert not h.assess().trials[0].failed  # default policy infers nothing
