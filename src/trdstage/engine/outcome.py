"""Outcome of a treatment period: explicit when recorded, otherwise from rating-scale readings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from trdstage.domain import Outcome, Policy, RatingReading, Scale
from trdstage.domain.results import OutcomeBasis
from trdstage.engine.timeline import Period


@dataclass(frozen=True, slots=True)
class OutcomeVerdict:
    outcome: Outcome
    basis: OutcomeBasis
    reason: str


def classify_reduction(reduction_pct: float, policy: Policy) -> Outcome:
    if reduction_pct >= policy.response_min_reduction_pct:
        return Outcome.response
    if reduction_pct >= policy.partial_response_min_reduction_pct:
        return Outcome.partial_response
    return Outcome.non_response


def from_ratings(
    period: Period, readings_by_scale: dict[Scale, list[RatingReading]], policy: Policy
) -> OutcomeVerdict | None:
    """Baseline: the last reading on or up to the policy's window before the start; endpoint: the
    last reading during the period. Scales are tried in the policy's priority order."""
    window_start = period.start - timedelta(days=policy.baseline_window_days)
    for scale in policy.outcome_scale_priority:
        readings = readings_by_scale.get(scale)
        if not readings:
            continue
        baseline = None
        endpoint = None
        for r in readings:  # sorted by date
            if window_start <= r.date <= period.start:
                baseline = r
            elif period.start < r.date <= period.end:
                endpoint = r
        if baseline is None or endpoint is None:
            continue
        if baseline.total <= 0:
            continue
        reduction = (baseline.total - endpoint.total) / baseline.total * 100
        outcome = classify_reduction(reduction, policy)
        reason = (
            f"outcome from {scale.value}: {baseline.total:g} on {baseline.date.isoformat()} -> "
            f"{endpoint.total:g} on {endpoint.date.isoformat()} ({reduction:.0f} % reduction: "
            f"{outcome.value.replace('_', ' ')})"
        )
        return OutcomeVerdict(outcome, "ratings", reason)
    return None


def judge_outcome(
    explicit: Outcome | None,
    period: Period,
    readings_by_scale: dict[Scale, list[RatingReading]],
    policy: Policy,
) -> OutcomeVerdict:
    if explicit is not None and explicit is not Outcome.unknown:
        return OutcomeVerdict(explicit, "explicit",
                              f"outcome recorded: {explicit.value.replace('_', ' ')}")
    rated = from_ratings(period, readings_by_scale, policy)
    if rated is not None:
        return rated
    return OutcomeVerdict(
        Outcome.unknown,
        "none",
        "outcome unknown: no recorded outcome and no baseline and in-trial readings on one scale",
    )
