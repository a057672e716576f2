"""ECT courses and other treatment courses (rTMS, VNS, DBS, ketamine, psychotherapy), judged."""

from __future__ import annotations

from datetime import date

from trdstage.domain import Laterality, Outcome, Patient, Policy, RatingReading, Scale
from trdstage.domain.results import CourseSummary, ECTVerdict, Notice
from trdstage.engine.outcome import judge_outcome
from trdstage.engine.timeline import Period


def _in_scope(start: date, scope_start: date | None) -> bool:
    return scope_start is None or start >= scope_start


def judge_ect(
    patient: Patient,
    as_of: date,
    scope_start: date | None,
    policy: Policy,
    readings: dict[Scale, list[RatingReading]],
) -> tuple[list[ECTVerdict], list[Notice]]:
    courses = []
    notices: list[Notice] = []
    for e_index, episode in enumerate(patient.episodes):
        for c_index, course in enumerate(episode.ect):
            where = course.id or f"episodes[{e_index}].ect[{c_index}]"
            if course.start > as_of:
                notices.append(Notice(code="after_as_of", where=where,
                                      message="ECT course starts after the as-of date; "
                                      "not assessed"))
                continue
            courses.append((course, where))
    courses.sort(key=lambda c: c[0].start)
    verdicts: list[ECTVerdict] = []
    for number, (course, _where) in enumerate(courses, start=1):
        reasons: list[str] = []
        in_scope = _in_scope(course.start, scope_start)
        if not in_scope:
            reasons.append("outside scope: started before the current episode's onset")
        end = min(course.end or as_of, as_of)
        judged = judge_outcome(course.outcome, Period(course.start, end), readings, policy)
        reasons.append(judged.reason)
        failed = False
        if judged.outcome in policy.failure_outcomes:
            if course.sessions is None:
                reasons.append("number of sessions not recorded: cannot confirm an adequate "
                               f"course (needs {policy.ect_min_sessions}); not a failure")
            elif course.sessions < policy.ect_min_sessions:
                reasons.append(f"{course.sessions} sessions, under the "
                               f"{policy.ect_min_sessions} of an adequate course: not a failure")
            else:
                failed = True
                reasons.append(f"failed: {course.sessions} sessions with "
                               f"{judged.outcome.value.replace('_', ' ')}")
        elif judged.outcome is Outcome.unknown:
            reasons.append("outcome unknown: not counted as a failure")
        if course.laterality is Laterality.unknown:
            reasons.append("electrode placement not recorded")
        verdicts.append(ECTVerdict(
            id=course.id or f"E{number}", start=course.start, end=course.end,
            in_scope=in_scope, sessions=course.sessions, laterality=course.laterality,
            outcome=judged.outcome, outcome_basis=judged.basis, failed=failed, reasons=reasons))
    return verdicts, notices


def later_records(patient: Patient, as_of: date) -> list[Notice]:
    """Treatment courses (esketamine, ketamine, rTMS, psychotherapy...), ratings and item
    answers dated after the as-of date: not assessed, and named."""
    out: list[Notice] = []
    for e_index, episode in enumerate(patient.episodes):
        for c_index, course in enumerate(episode.courses):
            if course.start > as_of:
                out.append(Notice(code="after_as_of",
                                  where=course.id or f"episodes[{e_index}].courses[{c_index}]",
                                  message=f"{course.kind.value} course starts after the as-of "
                                  "date; not assessed"))
        later = [r.date for r in episode.ratings if r.date > as_of] + [
            i.date for i in episode.item_readings if i.date > as_of]
        if later:
            out.append(Notice(code="after_as_of", where=f"episodes[{e_index}]", message=(
                f"{len(later)} rating(s) or item answer(s) dated after the as-of date "
                f"({', '.join(sorted({d.isoformat() for d in later})[:10])}): not used")))
    return out


def summarise_courses(
    patient: Patient,
    as_of: date,
    scope_start: date | None,
    policy: Policy,
    readings: dict[Scale, list[RatingReading]],
) -> list[CourseSummary]:
    found = [c for ep in patient.episodes for c in ep.courses if c.start <= as_of]
    found.sort(key=lambda c: c.start)
    out: list[CourseSummary] = []
    for number, course in enumerate(found, start=1):
        end = min(course.end or as_of, as_of)
        judged = judge_outcome(course.outcome, Period(course.start, end), readings, policy)
        out.append(CourseSummary(
            id=course.id or f"C{number}", kind=course.kind, modality=course.modality,
            start=course.start, end=course.end, in_scope=_in_scope(course.start, scope_start),
            sessions=course.sessions, outcome=judged.outcome, outcome_basis=judged.basis))
    return out
