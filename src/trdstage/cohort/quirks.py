"""Where the per-patient engine's arithmetic is subtle, this module turns it into plain integer
thresholds and lookup rows that a SQL engine can apply exactly. Nothing else in trdstage.cohort
knows how the engine rounds.

- MGH "more than N weeks at an adequate dose": the engine compares `round(days / 7, 2) > N`
  (Python's round); the cohort compares days with the smallest integer that passes.
- Maudsley duration bands and the European CRD span compare calendar months
  (`timeline.within_months` / `months_reached`): a whole number of months added with the month's
  last day as a clamp (what SQL `date + INTERVAL n MONTH` does), plus a fractional part as
  `round(fraction * 365.25 / 12)` days.
- Thase & Rush's distinct-trial rule (`stage_trials`, order `any_order`) reduces to counts of
  classes: see `trdstage.cohort.engine._thase_rush`.
"""

from __future__ import annotations

from trdstage.engine.timeline import months_split, weeks


def min_days_over_weeks(limit_weeks: float) -> int:
    """Smallest whole number of days whose engine weeks (`round(d / 7, 2)`) exceed the limit."""
    days = max(0, int(limit_weeks * 7) - 2)
    while weeks(days) <= limit_weeks:
        days += 1
    return days


__all__ = ["min_days_over_weeks", "months_split"]
