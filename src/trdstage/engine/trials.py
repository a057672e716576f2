"""From a patient's records to antidepressant trials, each with an adequacy and outcome verdict.

Steps: every medication record (and every antidepressant added to a regimen) becomes an exposure;
exposures of one agent with gaps up to the policy's limit merge into one trial; other agents
taken alongside a trial are read as augmentation, combination or a cross-taper; then each trial
is judged for adequacy (dose, duration, adherence) and outcome (explicit or from ratings).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, timedelta

from trdstage.domain import (
    Adherence,
    ConcurrentUse,
    DoseStep,
    MissingDose,
    Outcome,
    Patient,
    Policy,
    RatingReading,
    Scale,
)
from trdstage.domain.results import ConcurrentAgent, Notice, TrialVerdict
from trdstage.engine.outcome import OutcomeVerdict, judge_outcome
from trdstage.engine.timeline import Period, union_days, weeks
from trdstage.knowledge import Knowledge

_ADHERENCE_RANK = {Adherence.good: 0, Adherence.partial: 1, Adherence.poor: 2}


@dataclass(slots=True)
class Exposure:
    """One record of one agent over dated dose steps (sorted by start)."""

    agent: str
    steps: list[tuple[Period, float | None]]
    adherence: Adherence
    outcome: Outcome | None
    record: str
    period: Period = field(init=False)

    def __post_init__(self) -> None:
        self.period = Period(self.steps[0][0].start, max(p.end for p, _ in self.steps))


@dataclass(slots=True)
class Trial:
    """Exposures of one agent merged across short gaps; `period` spans them all."""

    agent: str
    exposures: list[Exposure]
    period: Period

    def add(self, exposure: Exposure) -> None:
        self.exposures.append(exposure)
        if exposure.period.end > self.period.end:
            self.period = Period(self.period.start, exposure.period.end)


def _step_periods(steps: list[DoseStep], as_of: date) -> list[tuple[Period, float | None]]:
    """Each step's period; an open step ends where the next starts, or at the as-of date."""
    ordered = sorted(steps, key=lambda s: s.start)
    out: list[tuple[Period, float | None]] = []
    for i, step in enumerate(ordered):
        if step.end is not None:
            end = step.end
        elif i + 1 < len(ordered):
            end = ordered[i + 1].start
        else:
            end = as_of
        out.append((Period(step.start, min(end, as_of)), step.daily_dose_mg))
    return out


def _worst(a: Adherence, b: Adherence) -> Adherence:
    if a is Adherence.unknown:
        return b
    if b is Adherence.unknown:
        return a
    return a if _ADHERENCE_RANK[a] >= _ADHERENCE_RANK[b] else b


@dataclass
class TrialSet:
    verdicts: list[TrialVerdict]
    augmentation: list[Trial]  # augmenter courses, refills merged
    notices: list[Notice]


def _collect(
    patient: Patient, as_of: date, knowledge: Knowledge
) -> tuple[list[Exposure], list[Exposure], list[Notice], dict[str, bool]]:
    antidepressants: list[Exposure] = []
    augmenters: list[Exposure] = []
    notices: list[Notice] = []
    open_records: dict[str, bool] = {}
    counter = 0
    for e_index, episode in enumerate(patient.episodes):
        for m_index, regimen in enumerate(episode.medications):
            counter += 1
            record = regimen.id or f"episodes[{e_index}].medications[{m_index}]"
            if regimen.start > as_of:
                notices.append(Notice(code="after_as_of", where=record,
                                      message=f"{regimen.agent} starts after the as-of date; "
                                      "not assessed"))
                continue
            entries: list[tuple[str, list[DoseStep], Adherence, Outcome | None, str]] = [
                (regimen.agent, regimen.steps, regimen.adherence, regimen.outcome, record)]
            for a_index, added in enumerate(regimen.added):
                entries.append((
                    added.agent, added.steps, added.adherence or regimen.adherence,
                    added.outcome if added.outcome is not None else regimen.outcome,
                    f"{record}.added[{a_index}]"))
            for agent, steps, adherence, outcome, where in entries:
                kept = [s for s in steps if s.start <= as_of]
                if not kept:
                    notices.append(Notice(code="after_as_of", where=where,
                                          message=f"{agent} starts after the as-of date; "
                                          "not assessed"))
                    continue
                last = max(kept, key=lambda s: s.start)
                open_records[where] = last.end is None or last.end > as_of
                exposure = Exposure(agent, _step_periods(kept, as_of), adherence, outcome, where)
                if agent in knowledge.antidepressants:
                    antidepressants.append(exposure)
                elif agent in knowledge.augmenters:
                    augmenters.append(exposure)
                else:
                    notices.append(Notice(code="agent_not_assessed", where=where,
                                          message=f"{agent} is neither an antidepressant nor an "
                                          "augmenter in the formulary; not assessed"))
    return antidepressants, augmenters, notices, open_records


def _merge(exposures: list[Exposure], gap_days: int) -> list[Trial]:
    by_agent: dict[str, list[Exposure]] = {}
    for exp in exposures:
        by_agent.setdefault(exp.agent, []).append(exp)
    trials: list[Trial] = []
    gap = timedelta(days=gap_days)
    for agent, group in by_agent.items():
        group.sort(key=lambda e: e.period.start)
        current = Trial(agent, [group[0]], group[0].period)
        for exp in group[1:]:
            if exp.period.start - current.period.end <= gap:
                current.add(exp)
            else:
                trials.append(current)
                current = Trial(agent, [exp], exp.period)
        trials.append(current)
    trials.sort(key=lambda t: (t.period.start, t.agent))
    return trials


def build_trials(
    patient: Patient,
    as_of: date,
    scope_start: date | None,
    policy: Policy,
    knowledge: Knowledge,
) -> TrialSet:
    """All antidepressant trials of the history, judged. `scope_start` None means lifetime."""
    ad_exposures, aug_exposures, notices, open_records = _collect(patient, as_of, knowledge)
    trials = _merge(ad_exposures, policy.same_agent_gap_days)
    # augmenter refills merge by the same gap rule: one lithium course, not one per refill
    augmentation = _merge(aug_exposures, policy.same_agent_gap_days)
    readings = readings_by_scale(patient)
    others = sorted([(t.period, t.agent, False) for t in trials]
                    + [(a.period, a.agent, True) for a in augmentation],
                    key=lambda o: o[0].start)
    starts = [o[0].start for o in others]
    verdicts = [
        _judge(i + 1, trial, trials, augmentation, _concurrent(trial, others, starts, policy),
               as_of, scope_start, policy, knowledge, readings, open_records)
        for i, trial in enumerate(trials)
    ]
    for aug in augmentation:
        if not any(aug.period.overlap_days(t.period) > 0 for t in trials):
            notices.append(Notice(
                code="augmenter_without_trial",
                where=", ".join(dict.fromkeys(e.record for e in aug.exposures)),
                message=f"{aug.agent} ({aug.period.start.isoformat()} to "
                f"{aug.period.end.isoformat()}) overlaps no antidepressant trial: not counted "
                "as augmentation; its safety checks still apply"))
    return TrialSet(verdicts, augmentation, notices)


def readings_by_scale(patient: Patient) -> dict[Scale, list[RatingReading]]:
    out: dict[Scale, list[RatingReading]] = {}
    for episode in patient.episodes:
        for r in episode.ratings:
            out.setdefault(r.scale, []).append(r)
    for lst in out.values():
        lst.sort(key=lambda r: r.date)
    return out


def _concurrent(
    trial: Trial, others: list[tuple[Period, str, bool]], starts: list[date], policy: Policy
) -> list[ConcurrentAgent]:
    """Agents overlapping the trial. `others` holds (period, agent, is_augmenter) sorted by
    start, with `starts` their start dates, so only candidates starting before the trial's end
    are visited."""
    period = trial.period
    found: list[ConcurrentAgent] = []
    for other, agent, is_augmenter in others[:bisect_left(starts, period.end)]:
        if other.end <= period.start or agent == trial.agent:
            continue
        overlap = period.overlap_days(other)
        if overlap <= 0:
            continue
        counted = overlap >= policy.concurrent_min_days
        if is_augmenter:
            role = ConcurrentUse.augmentation
        else:
            role = ConcurrentUse.combination if counted else ConcurrentUse.cross_taper
        found.append(ConcurrentAgent(agent=agent, role=role, start=other.start, end=other.end,
                                     overlap_days=overlap, counted=counted))
    found.sort(key=lambda c: (c.start, c.agent))
    return found


def _failure_from_switch(
    trial: Trial, trials: list[Trial], augmenters: list[Trial], policy: Policy
) -> OutcomeVerdict | None:
    """The claims convention: a switch to, or the addition of, another antidepressant or an
    augmenter after the trial started and within the policy's days of its end."""
    if policy.failure_from_switch_days is None:
        return None
    period = trial.period
    limit = period.end + timedelta(days=policy.failure_from_switch_days)
    followers = [(t.period.start, t.agent) for t in trials if t.agent != trial.agent]
    followers += [(a.period.start, a.agent) for a in augmenters]
    later = sorted((start, agent) for start, agent in followers
                   if period.start < start <= limit)
    if not later:
        return None
    start, agent = later[0]
    return OutcomeVerdict(
        Outcome.non_response, "switch",
        f"no recorded or rated outcome; {agent} started on {start.isoformat()}, within "
        f"{policy.failure_from_switch_days} days of this trial's end: read as non-response "
        "(claims convention)")


def _judge(
    number: int,
    trial: Trial,
    trials: list[Trial],
    augmenters: list[Trial],
    concurrent: list[ConcurrentAgent],
    as_of: date,
    scope_start: date | None,
    policy: Policy,
    knowledge: Knowledge,
    readings: dict[Scale, list[RatingReading]],
    open_records: dict[str, bool],
) -> TrialVerdict:
    drug = knowledge.antidepressants[trial.agent]
    mechanism = knowledge.classes[drug.mechanism]
    period = trial.period
    reasons: list[str] = []
    in_scope = scope_start is None or period.start >= scope_start
    if not in_scope:
        reasons.append("outside scope: started before the current episode's onset "
                       f"({scope_start.isoformat() if scope_start else ''})")
    if len(trial.exposures) > 1:
        reasons.append(f"{len(trial.exposures)} records of {trial.agent} with gaps of at most "
                       f"{policy.same_agent_gap_days} days merged into one trial")

    steps = sorted((s for e in trial.exposures for s in e.steps), key=lambda s: s[0].start)
    doses = [d for _, d in steps if d is not None]
    max_dose = max(doses) if doses else None
    minimum = drug.min_adequate_mg
    dose_missing = any(d is None for _, d in steps)
    adherence = Adherence.unknown
    for e in trial.exposures:
        adherence = _worst(adherence, e.adherence)

    min_days = round(policy.min_adequate_weeks * 7)
    total_days = union_days([p for p, _ in steps])
    duration_only = False
    if minimum is not None:
        adequate_days = union_days([p for p, d in steps if d is not None and d >= minimum])
        if dose_missing and policy.missing_dose is MissingDose.duration_only:
            adequate_days = union_days(
                [p for p, d in steps if d is None or d >= minimum])
            duration_only = True
    elif policy.missing_dose is MissingDose.duration_only:
        adequate_days = total_days
        duration_only = True
    else:
        adequate_days = 0

    adequate = True
    if minimum is None and not duration_only:
        adequate = False
        reasons.append(f"not adequate: no sourced minimum adequate dose for {trial.agent}")
    elif not doses and not duration_only:
        adequate = False
        reasons.append(f"not adequate: duration known ({weeks(total_days)} weeks) but no dose "
                       f"recorded; policy {policy.name} (missing_dose = "
                       f"{policy.missing_dose.value}) needs a dose to judge adequacy")
    elif dose_missing and not duration_only and adequate_days < min_days:
        adequate = False
        reasons.append("not adequate: dose not recorded for part of the trial, and the recorded "
                       f"doses reach {weeks(adequate_days)} weeks at or above {minimum:g} mg/day")
    elif adequate_days < min_days:
        adequate = False
        reasons.append(
            f"not adequate: {weeks(adequate_days)} weeks at or above {minimum or 0:g} mg/day "
            f"(needs {policy.min_adequate_weeks:g})")
    else:
        floor = f"at or above {minimum:g} mg/day" if minimum is not None else "(dose unknown)"
        reasons.append(f"{weeks(adequate_days)} weeks {floor} "
                       f"(needs {policy.min_adequate_weeks:g})")
    if duration_only:
        reasons.append("dose not recorded: adequacy judged on duration alone "
                       f"(policy {policy.name}: missing_dose = duration_only)")
    if adherence is Adherence.poor and policy.poor_adherence_inadequate:
        adequate = False
        reasons.append("not adequate: adherence recorded as poor")

    explicit: Outcome | None = None
    for e in trial.exposures:
        if e.outcome is not None and e.outcome is not Outcome.unknown:
            explicit = e.outcome
    judged = judge_outcome(explicit, period, readings, policy)
    if judged.outcome is Outcome.unknown and adequate:
        judged = _failure_from_switch(trial, trials, augmenters, policy) or judged
    reasons.append(judged.reason)
    outcome = judged.outcome

    failed = False
    if outcome is Outcome.intolerance:
        reasons.append("stopped for intolerance: not a failure")
    elif outcome is Outcome.unknown:
        reasons.append("outcome unknown: not counted as a failure")
    elif outcome in policy.failure_outcomes:
        if adequate:
            failed = True
            reasons.append(f"failed: adequate trial with {outcome.value.replace('_', ' ')}")
        else:
            reasons.append(f"{outcome.value.replace('_', ' ')}, but the trial was not adequate: "
                           "not a failure")
    else:
        reasons.append(f"{outcome.value.replace('_', ' ')}: not a failure under policy "
                       f"{policy.name}")

    dose_optimised = False
    if minimum is not None:
        prev: float | None = None
        for _, d in steps:
            if d is not None and prev is not None and d > prev and d > minimum:
                dose_optimised = True
            if d is not None:
                prev = d

    for c in concurrent:
        if c.counted:
            reasons.append(f"{c.role.value} with {c.agent} for {c.overlap_days} days")
        elif c.role is ConcurrentUse.cross_taper:
            reasons.append(f"overlap of {c.overlap_days} days with {c.agent}: a cross-taper "
                           "switch, not a combination")
        else:
            reasons.append(f"{c.agent} alongside for {c.overlap_days} days: under "
                           f"{policy.concurrent_min_days} days, not counted as augmentation")

    ongoing = any(open_records.get(e.record, False) for e in trial.exposures)
    return TrialVerdict(
        id=f"T{number}",
        agents=[trial.agent],
        mechanism=mechanism.id,
        mechanism_label=mechanism.label,
        start=period.start,
        end=None if ongoing else period.end,
        ongoing=ongoing,
        in_scope=in_scope,
        weeks=weeks(total_days),
        weeks_at_adequate_dose=weeks(adequate_days),
        max_daily_dose_mg=max_dose,
        min_adequate_dose_mg=minimum,
        adherence=adherence,
        adequate=adequate,
        outcome=outcome,
        outcome_basis=judged.basis,
        failed=failed,
        dose_optimised=dose_optimised,
        duration_only=duration_only,
        concurrent=concurrent,
        records=[e.record for e in trial.exposures],
        reasons=reasons,
    )


__all__ = ["TrialSet", "build_trials"]

