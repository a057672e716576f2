"""Outcome from rating scales: baseline on or up to 30 days before, last reading during."""

from datetime import timedelta

import pytest

from builders import History
from trdstage.domain import Outcome


def _rated(baseline: float, endpoint: float, scale: str = "HAM-D17",
           baseline_days_before: int = 3) -> History:
    h = History()
    rx = h.trial("sertraline", 100, weeks=8, outcome=None)
    start = rx.steps[0].start
    h.rating(scale, start - timedelta(days=baseline_days_before), baseline)
    h.rating(scale, start + timedelta(weeks=8), endpoint)
    return h


@pytest.mark.parametrize(("baseline", "endpoint", "expected"), [
    (20, 10, Outcome.response),           # exactly 50 %: response
    (20, 11, Outcome.partial_response),   # 45 %
    (20, 15, Outcome.partial_response),   # exactly 25 %: partial response
    (20, 16, Outcome.non_response),       # 20 %
    (20, 24, Outcome.non_response),       # worse
])
def test_reduction_bands(baseline: float, endpoint: float, expected: Outcome) -> None:
    t = _rated(baseline, endpoint).assess().trials[0]
    assert t.outcome is expected and t.outcome_basis == "ratings"


def test_partial_response_fails_by_default_but_not_under_non_response_only() -> None:
    h = _rated(20, 12)  # 40 %
    assert h.assess().trials[0].failed
    assert not h.assess(policy="non-response-only").trials[0].failed


def test_baseline_more_than_30_days_before_the_start_is_not_used() -> None:
    t = _rated(20, 18, baseline_days_before=31).assess().trials[0]
    assert t.outcome is Outcome.unknown and not t.failed


def test_explicit_outcome_wins_over_ratings() -> None:
    h = History()
    rx = h.trial("sertraline", 100, weeks=8, outcome="response")
    h.rating("PHQ-9", rx.steps[0].start, 20)
    h.rating("PHQ-9", rx.steps[0].start + timedelta(weeks=8), 19)
    t = h.assess().trials[0]
    assert t.outcome is Outcome.response and t.outcome_basis == "explicit"


def test_readings_on_two_scales_are_never_mixed() -> None:
    h = History()
    rx = h.trial("sertraline", 100, weeks=8, outcome=None)
    h.rating("PHQ-9", rx.steps[0].start, 20)
    h.rating("MADRS", rx.steps[0].start + timedelta(weeks=8), 5)
    assert h.assess().trials[0].outcome is Outcome.unknown


def test_clinician_scale_is_preferred_when_both_are_available() -> None:
    h = History()
    rx = h.trial("sertraline", 100, weeks=8, outcome=None)
    s = rx.steps[0].start
    h.rating("PHQ-9", s, 20)
    h.rating("PHQ-9", s + timedelta(weeks=8), 5)    # PHQ-9 alone says response
    h.rating("HAM-D17", s, 24)
    h.rating("HAM-D17", s + timedelta(weeks=8), 22)  # HAM-D17 says non-response
    t = h.assess().trials[0]
    assert t.outcome is Outcome.non_response
    assert any("HAM-D17" in r for r in t.reasons)
