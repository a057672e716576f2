"""Small date arithmetic shared by the engine: periods, overlaps and unions of intervals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DAYS_PER_WEEK = 7
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open period [start, end) in days; `end` is the recorded end or the as-of date."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return max(0, (self.end - self.start).days)

    def overlap_days(self, other: Period) -> int:
        lo = max(self.start, other.start)
        hi = min(self.end, other.end)
        return max(0, (hi - lo).days)


def union_days(periods: list[Period]) -> int:
    """Days covered by at least one period (overlaps counted once)."""
    total = 0
    cur_start: date | None = None
    cur_end: date | None = None
    for p in sorted(periods, key=lambda p: p.start):
        if cur_end is None or cur_start is None or p.start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += (cur_end - cur_start).days
            cur_start, cur_end = p.start, p.end
        elif p.end > cur_end:
            cur_end = p.end
    if cur_end is not None and cur_start is not None:
        total += (cur_end - cur_start).days
    return total


def weeks(days: int) -> float:
    return round(days / DAYS_PER_WEEK, 2)


def months_between(start: date, end: date) -> float:
    return round(max(0, (end - start).days) / DAYS_PER_MONTH, 2)


def add_months(start: date, months: int) -> date:
    """The same day `months` calendar months later (clamped to the month's last day)."""
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    month = month0 + 1
    for day in (start.day, 30, 29, 28):
        try:
            return date(year, month, min(start.day, day))
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {start}")  # pragma: no cover


def months_split(months: float) -> tuple[int, int]:
    """A month count as (whole calendar months, extra days of an average month)."""
    whole = int(months)
    return whole, round((months - whole) * DAYS_PER_MONTH)


def within_months(start: date, end: date, months: float) -> bool:
    """True when `end` is no later than `months` calendar months after `start`."""
    whole, extra = months_split(months)
    return (end - add_months(start, whole)).days <= extra


def months_reached(start: date, end: date, months: float) -> bool:
    """True when `end` is at least `months` calendar months after `start`."""
    whole, extra = months_split(months)
    return (end - add_months(start, whole)).days >= extra
