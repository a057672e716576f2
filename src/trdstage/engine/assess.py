"""`assess()`: one patient's history -> every staging model's result, each explained."""

from __future__ import annotations

from datetime import date

from trdstage.domain import DoseStep, Patient, Policy, Scope
from trdstage.domain.results import Assessment, EpisodeSummary, Notice, Staging
from trdstage.engine.context import StagingContext
from trdstage.engine.models import (
    EuropeanModel,
    MaudsleyModel,
    MghModel,
    RegulatoryModel,
    ThaseRushModel,
)
from trdstage.engine.procedures import judge_ect, later_records, summarise_courses
from trdstage.engine.timeline import months_between
from trdstage.engine.trials import build_trials, readings_by_scale
from trdstage.knowledge import Knowledge, load_knowledge, load_policy

THASE_RUSH = ThaseRushModel()
MGH = MghModel()
MAUDSLEY = MaudsleyModel()
EUROPEAN = EuropeanModel()
REGULATORY = RegulatoryModel()


def assess(
    patient: Patient,
    as_of: date | None = None,
    policy: Policy | str = "default",
    knowledge: Knowledge | None = None,
) -> Assessment:
    """Stage `patient` as of `as_of` (default today) under `policy` (a name, a file or a Policy)."""
    as_of = as_of or date.today()
    patient, as_of, death_notices = end_at_death(patient, as_of)
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    knowledge = knowledge or load_knowledge()
    episode = patient.current_episode(as_of)
    scope_start = episode.onset if policy.scope is Scope.current_episode else None
    trial_set = build_trials(patient, as_of, scope_start, policy, knowledge)
    readings = readings_by_scale(patient)
    ect, ect_notices = judge_ect(patient, as_of, scope_start, policy, readings)
    courses = summarise_courses(patient, as_of, scope_start, policy, readings)
    episode_end = min(episode.end, as_of) if episode.end else as_of
    summary = EpisodeSummary(
        id=episode.id, onset=episode.onset, end=episode.end,
        duration_months=months_between(episode.onset, episode_end),
        severity=episode.severity, psychotic_features=episode.psychotic_features,
        flags=sorted({*episode.flags, *patient.flags}))
    ctx = StagingContext(as_of=as_of, policy=policy, knowledge=knowledge, episode=episode,
                         episode_summary=summary, trials=trial_set.verdicts, ect=ect,
                         courses=courses)
    staging = Staging(
        thase_rush=THASE_RUSH.assess(ctx),
        mgh=MGH.assess(ctx),
        maudsley=MAUDSLEY.assess(ctx),
        european=EUROPEAN.assess(ctx),
        regulatory=REGULATORY.assess(ctx),
    )
    notices = [*death_notices, *trial_set.notices, *ect_notices,
               *later_records(patient, as_of)]
    if episode.onset > as_of:
        notices.insert(0, Notice(
            code="no_episode_by_as_of", where=episode.id,
            message=f"no episode has started by the as-of date; the earliest, from "
            f"{episode.onset.isoformat()}, is shown with nothing in scope"))
    return Assessment(
        as_of=as_of, patient_id=patient.id, policy=policy.name, policy_settings=policy,
        episode=summary,
        trials=trial_set.verdicts, ect=ect, courses=courses, staging=staging,
        deceased=patient.deceased, death_date=patient.death_date, warnings=notices)


def _close(end: date | None, death: date) -> date | None:
    return death if end is None or end > death else end


def end_at_death(patient: Patient, as_of: date) -> tuple[Patient, date, list[Notice]]:
    """A deceased patient's history ends at death: every medication step, ECT and treatment
    course still open (or running past the date of death) stops on it, and the assessment is
    made as of the date of death when that is earlier than `as_of`. Records that start after
    death are then after the as-of date and named by the usual warnings."""
    if not patient.deceased:
        return patient, as_of, []
    death = patient.death_date
    if death is None:
        return patient, as_of, [Notice(
            code="deceased", where="Patient.deceased", message=(
                "the patient is recorded as deceased without a date of death: the record is "
                f"read to the as-of date ({as_of.isoformat()}) and treatments with no end date "
                "are read as running to it; no treatment advice is given"))]
    closed: list[str] = []

    def steps(where: str, found: list[DoseStep]) -> list[DoseStep]:
        out = []
        for step in found:
            end = _close(step.end, death) if step.start <= death else step.end
            if end != step.end:
                closed.append(where)
                step = step.model_copy(update={"end": end})
            out.append(step)
        return out

    episodes = []
    for e_i, episode in enumerate(patient.episodes):
        meds = []
        for m_i, reg in enumerate(episode.medications):
            where = reg.id or f"episodes[{e_i}].medications[{m_i}]"
            added = [a.model_copy(update={"steps": steps(f"{where}.added[{a_i}]", a.steps)})
                     for a_i, a in enumerate(reg.added)]
            meds.append(reg.model_copy(update={"steps": steps(where, reg.steps),
                                               "added": added}))
        ects = []
        for c_i, ect in enumerate(episode.ect):
            end = _close(ect.end, death) if ect.start <= death else ect.end
            if end != ect.end:
                closed.append(ect.id or f"episodes[{e_i}].ect[{c_i}]")
            ects.append(ect.model_copy(update={"end": end}))
        courses = []
        for c_i, course in enumerate(episode.courses):
            end = _close(course.end, death) if course.start <= death else course.end
            if end != course.end:
                closed.append(course.id or f"episodes[{e_i}].courses[{c_i}]")
            courses.append(course.model_copy(update={"end": end}))
        ep_end = _close(episode.end, death) if episode.onset <= death else episode.end
        episodes.append(episode.model_copy(update={
            "medications": meds, "ect": ects, "courses": courses, "end": ep_end}))
    staged_on = min(as_of, death)
    message = f"the patient died on {death.isoformat()}: the history ends there"
    if staged_on < as_of:
        message += f" and is staged as of that date (not {as_of.isoformat()})"
    if closed:
        shown = ", ".join(list(dict.fromkeys(closed))[:10])
        message += f"; treatments still open or running past it stop at death ({shown})"
    message += "; no treatment advice is given"
    return (patient.model_copy(update={"episodes": episodes}), staged_on,
            [Notice(code="deceased", where="death_date",
                    message=message)])
