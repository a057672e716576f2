"""Ranked next steps from the stage under every model, the last trial's outcome, what was tried,
and the patient's flags.

The backbone is the project's stage mapping (key
design-stage-mapping, tag D): no guideline indexes options by stage. Within it the guidelines'
own sequencing decides the order (CANMAT Q7.c: no response -> switch first; partial response
with good tolerability -> adjunct first; no early improvement by 4 weeks -> dose increase or
switch; neuromodulation after a failed switch or adjunct), then the CANMAT line and level.
Ranking choices beyond that are project defaults (issue-4-defaults, tag A), documented in
docs/advice.md. A drug or procedure already used is never proposed as new: it moves after the
new options and says when and how it was used. A contraindicated option stays listed, blocked,
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trdstage.advice.context import AdviceContext, DrugUse
from trdstage.advice.pharmacogenomics import advises_alternative, findings_for
from trdstage.advice.safety import agent_alerts, blocking_reason, dose_ceiling
from trdstage.domain import Outcome
from trdstage.domain.advice import (
    Alert,
    DoseRange,
    GuidelineGrade,
    OptionCategory,
    PgxFinding,
    PriorUse,
    Recommendation,
)
from trdstage.domain.results import TrialVerdict
from trdstage.knowledge.advice_schema import (
    CanmatGrade,
    Grade,
    LabelGrade,
    NiceGrade,
    OptionSpec,
    VadodGrade,
)

ROMAN = ["0", "I", "II", "III", "IV", "V"]
LINE_RANK = {"1st": 0, "2nd": 1, "3rd": 2, "investigational": 3, "not recommended": 4}


@dataclass
class Pattern:
    """How the last trial went, read the way CANMAT sequences the next step."""

    kind: str  # none | response | partial_response | non_response | intolerance | unknown
    trial: TrialVerdict | None
    early_non_improvement: bool = False
    optimize_first: bool = False
    reasons: list[str] = field(default_factory=list)


def read_pattern(ctx: AdviceContext, early: dict[str, bool | None]) -> Pattern:
    trials = sorted(ctx.trials_in_scope, key=lambda t: (t.ongoing, t.start))
    if not trials:
        return Pattern("none", None, reasons=["no antidepressant trial in the current episode"])
    last = trials[-1]
    kind = {Outcome.response: "response", Outcome.partial_response: "partial_response",
            Outcome.non_response: "non_response", Outcome.intolerance: "intolerance"}.get(
                last.outcome, "unknown")
    label = f"{last.id} {', '.join(last.agents)}"
    state = "ongoing" if last.ongoing else "ended"
    p = Pattern(kind, last)
    p.reasons.append(f"last trial {label} ({state}): {last.outcome.value.replace('_', ' ')}")
    if kind in ("non_response", "intolerance"):
        p.reasons.append("CANMAT: switch first after no response or troublesome side effects")
    elif kind == "partial_response":
        p.reasons.append("CANMAT: add an adjunct first after a partial response to a "
                         "well-tolerated antidepressant")
    if last.ongoing and early.get(last.id) is False:
        p.early_non_improvement = True
        p.optimize_first = True
        p.reasons.append("less than 20% improvement 2-4 weeks after the start: CANMAT advises a "
                         "dose increase or a switch (Level 2)")
    if last.ongoing and not last.adequate and kind not in ("intolerance", "response"):
        p.optimize_first = True
        p.reasons.append(f"{label} is not yet an adequate trial: optimise dose and duration "
                         "before judging it a failure (CANMAT Q7.c, NICE 1.9.1)")
    return p


def adjunct_failed(ctx: AdviceContext) -> list[str]:
    """In-scope trials where a counted augmentation or combination did not bring a response."""
    return [f"{t.id} {', '.join(t.agents)} + {c.agent}" for t in ctx.trials_in_scope
            for c in t.concurrent if c.counted and c.role.value in ("augmentation", "combination")
            and t.outcome in (Outcome.non_response, Outcome.partial_response)]


def category_order(p: Pattern, stage: int, adjunct_and_switch_failed: bool = False) -> list[str]:
    """The project's ordering of categories (issue-4-defaults): response pattern first (CANMAT),
    then the stage backbone (neuromodulation and rapid-acting treatments rise from stage II and
    lead from stage IV, or from stage II once both a switch and an adjunct strategy have failed:
    CANMAT Q7.c considers neuromodulation after a failed switch or adjunct strategy)."""
    if p.kind == "partial_response" or (stage >= 2 and p.kind != "intolerance"):
        # partial response: adjunct first (CANMAT Q7.c); from stage II, after a failed switch,
        # monotherapy response rates diminish (CANMAT Q7.c), so adjuncts lead (project default)
        pharm = ["augment", "combine", "switch"]
    else:
        pharm = ["switch", "augment", "combine"]
    if stage >= 4 or (stage >= 2 and adjunct_and_switch_failed):
        core = ["neuromodulation", "rapid_acting", *pharm, "psychotherapy"]
    elif stage >= 2:
        core = [*pharm, "neuromodulation", "rapid_acting", "psychotherapy"]
    else:
        core = [*pharm, "psychotherapy", "neuromodulation", "rapid_acting"]
    head = ["optimize"] if (p.optimize_first or p.kind == "response") else []
    tail = [] if head else ["optimize"]
    return [*head, *core, *tail, "lifestyle", "digital", "investigational"]


def _grade(ctx: AdviceContext, g: Grade) -> GuidelineGrade:
    cite = ctx.knowledge.cite(g.source)
    if isinstance(g, CanmatGrade):
        level = f", Level {g.level}" if g.level is not None else ", level uncertain"
        return GuidelineGrade(guideline="CANMAT 2023", vocabulary="line of treatment + level of "
                              "evidence (1-4)", grade=f"{g.line} line{level}"
                              if g.line in ("1st", "2nd", "3rd") else f"{g.line}{level}",
                              note="; ".join(x for x in (g.context, g.level_note) if x) or None,
                              source=cite, source_key=g.source)
    if isinstance(g, NiceGrade):
        name = {"nice_ng222": "NICE NG222", "nice_ta854": "NICE TA854",
                "nice_ta59": "NICE TA59"}[g.guideline]
        return GuidelineGrade(guideline=name, vocabulary="recommendation verb / appraisal "
                              "decision", grade=g.verb + (f" (rec. {g.rec})" if g.rec else ""),
                              note=g.context, source=cite, source_key=g.source)
    if isinstance(g, VadodGrade):
        return GuidelineGrade(guideline="VA/DoD 2022", vocabulary="GRADE direction x strength",
                              grade=f"{g.direction} (strength {g.strength})", note=g.context,
                              source=cite, source_key=g.source)
    assert isinstance(g, LabelGrade)  # noqa: S101 - exhaustive union
    return GuidelineGrade(guideline=f"{g.authority} label", vocabulary="regulatory status",
                          grade=g.status, source=cite, source_key=g.source)


def _best_line(spec: OptionSpec) -> tuple[int, int]:
    canmat = [g for g in spec.grades if isinstance(g, CanmatGrade)]
    if not canmat:
        return (5, 5)
    return min((LINE_RANK[g.line], g.level or 4) for g in canmat)


def _tried_agents(ctx: AdviceContext) -> dict[str, list[TrialVerdict]]:
    out: dict[str, list[TrialVerdict]] = {}
    for t in ctx.assessment.trials:
        for a in t.agents:
            out.setdefault(a, []).append(t)
    return out


def _trial_phrase(t: TrialVerdict) -> str:
    scope = "" if t.in_scope else ", earlier episode"
    return (f"{t.id} {', '.join(t.agents)} {t.start.isoformat()}: "
            f"{t.outcome.value.replace('_', ' ')}{'' if t.adequate else ', not adequate'}{scope}")


def prior_use(ctx: AdviceContext, spec: OptionSpec) -> PriorUse | None:
    """Earlier use of an add-on drug, a procedure or a psychotherapy (switches: by candidate)."""
    ids: list[str] = []
    outcomes: list[str] = []
    parts: list[str] = []
    a = ctx.assessment
    if spec.mode == "add" and spec.category in ("augment", "combine"):
        for t in a.trials:
            for c in t.concurrent:
                if c.agent in spec.agents and c.counted:
                    ids.append(t.id)
                    outcomes.append(t.outcome.value)
                    parts.append(f"{c.agent} added to {', '.join(t.agents)} ({t.id}, "
                                 f"{c.start.isoformat()}, {c.overlap_days} days): "
                                 f"{t.outcome.value.replace('_', ' ')}")
    if "ect" in spec.course_kinds:
        for e in a.ect:
            ids.append(e.id)
            outcomes.append(e.outcome.value)
            parts.append(f"ECT {e.id} {e.start.isoformat()}, {e.laterality.value}, "
                         f"{e.sessions if e.sessions is not None else '?'} sessions: "
                         f"{e.outcome.value.replace('_', ' ')}")
    modalities = {m.lower() for m in spec.modalities}
    for course in a.courses:
        if course.kind.value not in spec.course_kinds:
            continue
        modality = course.modality or ""
        if course.kind.value == "psychotherapy" and modality.lower() not in modalities:
            continue
        ids.append(course.id)
        outcomes.append(course.outcome.value)
        parts.append(f"{course.kind.value}{' ' + modality if modality else ''} {course.id} "
                     f"{course.start.isoformat()}: {course.outcome.value.replace('_', ' ')}")
    if not ids:
        return None
    outcome = "response" if "response" in outcomes else outcomes[-1]
    return PriorUse(ids=list(dict.fromkeys(ids)), outcome=outcome, summary="; ".join(parts))


def _staging_line(ctx: AdviceContext) -> str:
    s = ctx.assessment.staging
    msm = f"{s.maudsley.score} ({s.maudsley.band})" if s.maudsley.score is not None else "n/a"
    return (f"Thase & Rush stage {ROMAN[s.thase_rush.stage]}, MGH-S {s.mgh.score:g}, MSM {msm}, "
            f"European {s.european.category}, regulatory TRD "
            f"{'met' if s.regulatory.met else 'not met'}; {len(ctx.failed_trials)} failed "
            "adequate trial(s) in scope")


@dataclass
class _Item:
    spec: OptionSpec
    index: int
    rationale: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    pgx: list[PgxFinding] = field(default_factory=list)
    dose: DoseRange | None = None
    prior: PriorUse | None = None
    demoted: bool = False
    urgent: bool = False
    subrank: int = 0
    blocked_reason: str | None = None


def _dedupe(alerts: list[Alert]) -> list[Alert]:
    seen: set[tuple[str, str]] = set()
    out = []
    for a in alerts:
        if (a.code, a.message) not in seen:
            seen.add((a.code, a.message))
            out.append(a)
    return out


def _switch(ctx: AdviceContext, item: _Item, tried: dict[str, list[TrialVerdict]],
            keep: list[DrugUse], washout_from: list[DrugUse]) -> None:
    k = ctx.knowledge
    spec = item.spec
    failed_mechanisms = {t.mechanism for t in ctx.failed_trials}
    candidates: list[str] = []
    for agent in spec.agents:
        if agent in tried:
            item.rationale.append("already tried, not proposed again: "
                                  + "; ".join(_trial_phrase(t) for t in tried[agent]))
            continue
        alerts = agent_alerts(ctx, agent, keep, washout_from)
        reason = blocking_reason(alerts)
        item.alerts += alerts
        if reason:
            item.rationale.append(f"{agent} excluded: {reason}")
            continue
        candidates.append(agent)
    if not candidates:
        used = [t for a in spec.agents for t in tried.get(a, [])]
        excluded = [r for r in item.rationale if " excluded: " in r]
        if used:
            item.prior = PriorUse(ids=[t.id for t in used], outcome=used[-1].outcome.value,
                                  summary="; ".join(_trial_phrase(t) for t in used))
            item.demoted = True
        if excluded:
            item.blocked_reason = "every untried drug of this option is contraindicated: " + (
                "; ".join(excluded))
        return
    item.pgx = findings_for(ctx, candidates, "option")
    steer_away = {f.drug for f in item.pgx if advises_alternative(f)}
    if steer_away:
        candidates = [c for c in candidates if c not in steer_away] + [
            c for c in candidates if c in steer_away]
        item.rationale.append("CPIC advises an alternative for "
                              + ", ".join(sorted(steer_away)) + " at this genotype (listed last)")
    mechanisms = {k.base.antidepressants[c].mechanism for c in candidates}
    if mechanisms & failed_mechanisms:
        item.subrank = 1
        item.rationale.append("a switch within a class that has already failed (NICE allows it; "
                              "CANMAT prefers a distinct mechanism after no response)")
    else:
        item.rationale.append("a mechanism not yet failed in this episode (CANMAT Figure 7.1)")
    doses = k.options.switch_doses
    parts = [f"{doses[c].label or c} {doses[c].low:g}-{doses[c].high:g} mg"
             + (f" (CANMAT {doses[c].line} line)" if doses[c].line != _line_of(spec) else "")
             for c in candidates if c in doses]
    item.rationale.insert(0, "candidates: " + ", ".join(candidates))
    if parts:
        item.dose = DoseRange(text="; ".join(parts) + " per day", source=k.cite(
            k.options.switch_doses_source), source_key=k.options.switch_doses_source)
    if "vortioxetine" in candidates and len(ctx.failed_trials) < 2:
        item.subrank = max(item.subrank, 1)
        item.rationale.append("NICE 1.9.7: only consider vortioxetine after no or limited "
                              "response to at least 2 antidepressants")


def _line_of(spec: OptionSpec) -> str | None:
    canmat = [g for g in spec.grades if isinstance(g, CanmatGrade)]
    return canmat[0].line if canmat else None


def _dose_of(ctx: AdviceContext, spec: OptionSpec) -> DoseRange | None:
    if spec.dose is None:
        return None
    d = spec.dose
    return DoseRange(low=d.low, high=d.high, unit=d.unit, text=d.text,
                     source=ctx.knowledge.cite(d.source), source_key=d.source)


def recommend(ctx: AdviceContext, early: dict[str, bool | None]) -> list[Recommendation]:
    k = ctx.knowledge
    stage = ctx.assessment.staging.thase_rush.stage
    pattern = read_pattern(ctx, early)
    current_ads = [u for u in ctx.current if u.role == "antidepressant"]
    for use in current_ads:
        sd = k.options.switch_doses.get(use.name)
        cap = dose_ceiling(ctx, use.name)
        top = min(x for x in (sd.high if sd else None, cap[0] if cap else None) if x is not None) \
            if (sd or cap) else None
        if pattern.optimize_first and top is not None and use.dose_mg is not None \
                and use.dose_mg >= top:
            pattern.optimize_first = False
            pattern.reasons.append(f"{use.name} is already at {use.dose_mg:g} mg/day, the top "
                                   f"of its range for this patient ({top:g} mg/day): no dose "
                                   "increase; a switch or an adjunct comes first")
    adjuncts = adjunct_failed(ctx)
    order = category_order(pattern, stage, bool(adjuncts))
    if stage >= 2 and pattern.kind not in ("intolerance", "partial_response"):
        pattern.reasons.append("a switch has already failed (stage II or more): CANMAT notes that "
                               "response rates from monotherapy diminish after the first switch; "
                               "the project ranks adjunct strategies before a further switch")
    if stage >= 2 and adjuncts:
        pattern.reasons.append("switch and adjunct strategies have both failed ("
                               + "; ".join(adjuncts) + "): CANMAT considers neuromodulation "
                               "next; the project ranks it first from here")
    tried = _tried_agents(ctx)
    n_failed = len(ctx.failed_trials)
    keep = [u for u in ctx.current if u.role != "antidepressant"]
    staging = _staging_line(ctx)
    items: list[_Item] = []
    for index, spec in enumerate(k.options.options):
        item = _Item(spec=spec, index=index)
        surface = spec.surface
        earliest = surface.earliest_stage
        if pattern.kind == "partial_response" and surface.earliest_stage_if_partial_response \
                is not None:
            earliest = min(earliest, surface.earliest_stage_if_partial_response)
        severe = ctx.assessment.episode.severity is not None and \
            ctx.assessment.episode.severity.value == "severe"
        urgent = sorted({f for f in surface.any_stage_if if f in ctx.flags}
                        | {f for f in surface.any_stage_if_severe if severe and f in ctx.flags})
        if spec.id == "continue_current" and not (pattern.kind == "response"
                                                   and pattern.trial and pattern.trial.ongoing):
            continue
        if spec.id == "optimize_dose" and (not current_ads or pattern.kind == "response"):
            continue
        switch_now = pattern.kind == "intolerance" or pattern.early_non_improvement
        if spec.category == "switch" and switch_now and earliest <= 1:
            earliest = min(earliest, stage)  # switch for side effects or no early improvement
        if not urgent and stage < earliest:
            continue
        if not urgent and surface.min_failed_trials is not None \
                and n_failed < surface.min_failed_trials:
            continue
        item.urgent = bool(urgent)
        if urgent:
            item.rationale.append("surfaces at any stage because of: " + ", ".join(urgent)
                                  + " (CANMAT Table 8.3: ECT first line in severe MDE with "
                                  "psychotic or catatonic features, severe suicidal ideation or "
                                  "a deteriorating physical condition)")
        if surface.min_failed_trials is not None and n_failed >= surface.min_failed_trials:
            item.rationale.append(f"{n_failed} failed adequate trials in the current episode: "
                                  f"{surface.min_failed_trials_note or 'gate met'}")
        item.dose = _dose_of(ctx, spec)
        if spec.mode == "replace":
            _switch(ctx, item, tried, keep, [*current_ads, *ctx.stopped])
        elif spec.mode == "modify":
            for use in current_ads:
                item.alerts += agent_alerts(ctx, use.name, [u for u in ctx.current
                                                            if u is not use], [])
                sd = k.options.switch_doses.get(use.name)
                dose = f"{use.dose_mg:g} mg/day" if use.dose_mg is not None else "dose not recorded"
                item.rationale.append(f"current: {use.name} ({dose}, since "
                                      f"{use.start.isoformat() if use.start else '?'})")
                if sd is not None and spec.id == "optimize_dose":
                    item.dose = DoseRange(low=sd.low, high=sd.high, text=f"{sd.label or use.name} "
                                          f"{sd.low:g}-{sd.high:g} mg/day (CANMAT Table 3.3)",
                                          source=k.cite(k.options.switch_doses_source),
                                          source_key=k.options.switch_doses_source)
                    if use.dose_mg is not None and use.dose_mg >= sd.high:
                        item.rationale.append("already at the top of the CANMAT range: "
                                              "further increase not supported")
                        item.subrank = 2
            item.pgx = findings_for(ctx, [u.name for u in current_ads], "current")
        else:
            agents = list(spec.agents) or (["ect"] if "ect" in spec.course_kinds else [])
            for agent in agents:
                item.alerts += agent_alerts(ctx, agent, ctx.current, ctx.stopped)
            item.pgx = findings_for(ctx, agents, "option")
            item.prior = prior_use(ctx, spec)
            if spec.category in ("augment", "combine", "rapid_acting") and spec.mode == "add":
                if current_ads:
                    item.rationale.append("added to the current "
                                          + ", ".join(u.name for u in current_ads))
                else:
                    item.rationale.append("an adjunct: needs an antidepressant to add to (none is "
                                          "recorded as ongoing)")
            if item.prior is not None:
                if item.prior.outcome == "response":
                    item.rationale.append("used before with a response: "
                                          + item.prior.summary)
                else:
                    item.demoted = True
                    item.rationale.append("already tried, not proposed as new: "
                                          + item.prior.summary)
                    if "ect" in spec.course_kinds:
                        item.rationale.append("NICE 1.13.5: repeat ECT after non-response only "
                                              "after reviewing the adequacy of the previous course "
                                              "(CANMAT first-line protocols: bifrontal 1.5x or "
                                              "right unilateral 6x seizure threshold)")
        item.alerts = _dedupe(item.alerts)
        reason = blocking_reason(item.alerts) if spec.mode != "replace" else None
        item.blocked_reason = item.blocked_reason or reason
        if spec.mode == "replace" and item.blocked_reason is None and not any(
                r.startswith("candidates:") for r in item.rationale) and item.prior is None:
            continue  # nothing left to propose and nothing tried: silently empty (no agents)
        items.append(item)

    def key(it: _Item) -> tuple[int, int, int, int, int, int, int]:
        cat = it.spec.category
        bucket = -1 if it.urgent else order.index(cat) if cat in order else len(order)
        line, level = _best_line(it.spec)
        return (1 if it.blocked_reason else 0, 1 if it.demoted else 0, bucket, it.subrank,
                line, level, it.index)

    items.sort(key=key)
    out = []
    for rank, it in enumerate(items, start=1):
        spec = it.spec
        rationale = [*it.rationale]
        if rank == 1 or it.spec.category in ("switch", "augment", "combine", "optimize"):
            rationale = [*pattern.reasons, *rationale] if rank == 1 else rationale
        design = (f"The project's stage mapping surfaces this option from Thase & Rush stage "
                  f"{ROMAN[spec.surface.earliest_stage]} (design-stage-mapping, tag D: no "
                  f"guideline indexes options by stage). Patient: {staging}.")
        sources = list(dict.fromkeys([*spec.sources, spec.surface.source]))
        out.append(Recommendation(
            rank=rank, intervention=spec.id, label=spec.label,
            category=OptionCategory(spec.category), rationale=rationale, dose_range=it.dose,
            grades=[_grade(ctx, g) for g in spec.grades], sources=ctx.cite(sources),
            source_keys=sources, design_basis=design, alerts=it.alerts,
            pharmacogenomics=it.pgx, previously_tried=it.prior,
            blocked=it.blocked_reason is not None, blocked_reason=it.blocked_reason))
    return out


__all__ = ["Pattern", "category_order", "prior_use", "read_pattern", "recommend"]
