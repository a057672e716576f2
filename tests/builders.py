"""A history builder for tests: each test reads as the clinical story it checks.

    h = History(onset="2024-01-01", severity="moderate")
    h.trial("sertraline", 100, weeks=8)                  # failed (non-response) by default
    h.trial("venlafaxine", 225, weeks=8, outcome="response")
    h.ect(sessions=10, laterality="bilateral")
    result = h.assess()
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from trdstage.domain import (
    AddedAgent,
    DoseStep,
    ECTCourse,
    Episode,
    MedicationRegimen,
    Patient,
    RatingReading,
    TreatmentCourse,
)
from trdstage.domain.results import Assessment
from trdstage.engine import assess

AS_OF = date(2026, 1, 1)


def d(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


class History:
    def __init__(self, onset: str | date = "2024-01-01", severity: str | None = "moderate",
                 psychotic: bool = False, flags: list[str] | None = None,
                 gap_days: int = 7) -> None:
        self.onset = d(onset)
        self.severity = severity
        self.psychotic = psychotic
        self.flags = flags or []
        self.gap = timedelta(days=gap_days)
        self.cursor = self.onset + timedelta(days=14)
        self.medications: list[MedicationRegimen] = []
        self.ect_courses: list[ECTCourse] = []
        self.courses: list[TreatmentCourse] = []
        self.ratings: list[RatingReading] = []
        self.earlier: list[Episode] = []

    def trial(self, agent: str, dose: float | None, weeks: float = 8,
              outcome: str | None = "non_response", start: str | date | None = None,
              adherence: str = "good", steps: list[tuple[float | None, float]] | None = None,
              added: list[tuple[str, float, float, float]] | None = None,
              ongoing: bool = False) -> MedicationRegimen:
        """A regimen; `steps` as (dose, weeks) pairs overrides `dose`/`weeks`; `added` as
        (agent, dose, start_week, weeks) pairs adds augmenters or a second antidepressant."""
        begin = d(start) if start is not None else self.cursor
        plan = steps or [(dose, weeks)]
        dose_steps = []
        t = begin
        for i, (step_dose, step_weeks) in enumerate(plan):
            end = t + timedelta(days=round(step_weeks * 7))
            last = i == len(plan) - 1
            dose_steps.append(DoseStep(start=t, end=None if (ongoing and last) else end,
                                       daily_dose_mg=step_dose))
            t = end
        extra = [AddedAgent(agent=a, steps=[DoseStep(
            start=begin + timedelta(days=round(w0 * 7)),
            end=begin + timedelta(days=round((w0 + w) * 7)), daily_dose_mg=ad)])
            for a, ad, w0, w in (added or [])]
        regimen = MedicationRegimen(
            id=f"rx{len(self.medications) + 1}", agent=agent, steps=dose_steps,
            adherence=adherence, outcome=outcome, added=extra)
        self.medications.append(regimen)
        self.cursor = max(self.cursor, t + self.gap)
        return regimen

    def ect(self, sessions: int | None = 10, laterality: str = "bilateral",
            outcome: str | None = "non_response", weeks: float = 4,
            start: str | date | None = None) -> ECTCourse:
        begin = d(start) if start is not None else self.cursor
        course = ECTCourse(id=f"ect{len(self.ect_courses) + 1}", start=begin,
                           end=begin + timedelta(days=round(weeks * 7)), sessions=sessions,
                           laterality=laterality, outcome=outcome)
        self.ect_courses.append(course)
        self.cursor = max(self.cursor, course.end + self.gap)  # type: ignore[operator]
        return course

    def course(self, kind: str, weeks: float = 6, outcome: str | None = "non_response",
               **kw: Any) -> TreatmentCourse:
        begin = self.cursor
        course = TreatmentCourse(kind=kind, start=begin,
                                 end=begin + timedelta(days=round(weeks * 7)),
                                 outcome=outcome, **kw)
        self.courses.append(course)
        self.cursor = course.end + self.gap  # type: ignore[operator]
        return course

    def rating(self, scale: str, when: str | date, total: float) -> None:
        self.ratings.append(RatingReading(scale=scale, date=d(when), total=total))

    def patient(self) -> Patient:
        current = Episode(onset=self.onset, severity=self.severity,
                          psychotic_features=self.psychotic, flags=self.flags,
                          medications=self.medications, ect=self.ect_courses,
                          courses=self.courses, ratings=self.ratings)
        return Patient(id="test", episodes=[*self.earlier, current])

    def assess(self, as_of: str | date = AS_OF, policy: str = "default") -> Assessment:
        return assess(self.patient(), as_of=d(as_of), policy=policy)
