"""`assess()`: one patient's history -> every staging model's result, each explained."""

from __future__ import annotations

from datetime import date

from trdstage.domain import Patient, Policy, Scope
from trdstage.domain.results import Assessment, EpisodeSummary, Notice, Staging
from trdstage.engine.context import StagingContext
from trdstage.engine.models import (
    EuropeanModel,
    MaudsleyModel,
    MghModel,
    RegulatoryModel,
    ThaseRushModel,
)
from trdstage.engine.procedures import judge_ect, summarise_courses
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
    notices = [*trial_set.notices, *ect_notices]
    if episode.onset > as_of:
        notices.insert(0, Notice(
            code="no_episode_by_as_of", where=episode.id,
            message=f"no episode has started by the as-of date; the earliest, from "
            f"{episode.onset.isoformat()}, is shown with nothing in scope"))
    return Assessment(
        as_of=as_of, patient_id=patient.id, policy=policy.name, policy_settings=policy,
        episode=summary,
        trials=trial_set.verdicts, ect=ect, courses=courses, staging=staging,
        warnings=notices)
