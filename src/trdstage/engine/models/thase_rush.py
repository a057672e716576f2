"""Thase & Rush (1997) staging, stage 0-5, on distinct failed adequate trials.

I one failed trial; II two failed trials of different classes; III those two plus a further
failed TCA; IV those three plus a further failed irreversible MAOI; V those four plus a failed
ECT course that is bilateral or of unknown laterality. Order does not matter by default; the
`sequential` policy option requires the TCA to start after the two, the MAOI after the TCA and
the ECT after the MAOI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trdstage.domain import CourseKind, Laterality, StageOrder, Taxonomy
from trdstage.domain.results import ECTVerdict, ThaseRushResult, TrialVerdict
from trdstage.engine.context import StagingContext

OUTSIDE_MODEL = {
    CourseKind.esketamine, CourseKind.ketamine, CourseKind.rtms, CourseKind.itbs,
    CourseKind.vns, CourseKind.dbs,
}


@dataclass(frozen=True)
class _Staged:
    stage: int
    roles: dict[str, str]


def _pair(trials: list[TrialVerdict], cls: Callable[[TrialVerdict], str],
          exclude: set[str], before: TrialVerdict | None = None,
          ) -> tuple[TrialVerdict, TrialVerdict] | None:
    """The earliest two failed trials of different classes, skipping `exclude` and, when `before`
    is given, keeping only trials that started before it."""
    pool = [t for t in trials if t.id not in exclude
            and (before is None or t.start < before.start)]
    if not pool:
        return None
    first = pool[0]
    for other in pool[1:]:
        if cls(other) != cls(first):
            return first, other
    return None


def stage_trials(
    trials: list[TrialVerdict],
    ect: list[ECTVerdict],
    cls: Callable[[TrialVerdict], str],
    tca: str,
    maoi: str,
    order: StageOrder,
    not_tca: frozenset[str] = frozenset(),
) -> _Staged:
    """Highest stage reachable with distinct trials (failed trials sorted by start)."""
    if not trials:
        return _Staged(0, {})
    sequential = order is StageOrder.sequential
    best = _Staged(1, {"first": trials[0].id})
    pair = _pair(trials, cls, set())
    if pair is None:
        return best
    best = _Staged(2, {"first": pair[0].id, "different_class": pair[1].id})
    eligible_ect = [c for c in ect if c.laterality is not Laterality.unilateral]
    for t in (t for t in trials if t.mechanism == tca and not set(t.agents) & not_tca):
        p3 = _pair(trials, cls, {t.id}, before=t if sequential else None)
        if p3 is None:
            continue
        roles = {"first": p3[0].id, "different_class": p3[1].id, "tca": t.id}
        if best.stage < 3:
            best = _Staged(3, roles)
        for m in (m for m in trials if m.mechanism == maoi):
            if sequential and not m.start > t.start:
                continue
            if not sequential:
                p4 = _pair(trials, cls, {t.id, m.id})
                if p4 is None:
                    continue
                roles4 = {"first": p4[0].id, "different_class": p4[1].id, "tca": t.id,
                          "maoi": m.id}
            else:
                roles4 = {**roles, "maoi": m.id}
            if best.stage < 4:
                best = _Staged(4, roles4)
            for c in eligible_ect:
                if sequential and not c.start > m.start:
                    continue
                return _Staged(5, {**roles4, "ect": c.id})
    return best


class ThaseRushModel:
    id = "thase_rush"
    name = "Thase & Rush staging (1997)"

    def assess(self, ctx: StagingContext) -> ThaseRushResult:
        policy = ctx.policy
        spec = ctx.knowledge.models.thase_rush
        classes = ctx.knowledge.classes
        literal = policy.thase_rush_taxonomy is Taxonomy.literal

        def cls(t: TrialVerdict) -> str:
            if t.mechanism is None:
                return "other"
            return classes[t.mechanism].literal_class if literal else t.mechanism

        def label(t: TrialVerdict) -> str:
            if t.mechanism is None or literal:
                return cls(t)
            return classes[t.mechanism].label

        failed = sorted(ctx.failed_trials, key=lambda t: (t.start, t.id))
        failed_ect = ctx.failed_ect
        not_tca = (frozenset() if policy.thase_rush_tca_atypicals
                   else frozenset(spec.stage_3_atypical_tcas))
        staged = stage_trials(failed, failed_ect, cls, spec.stage_3_mechanism,
                              spec.stage_4_mechanism, policy.thase_rush_order, not_tca)
        stage_label = {s.stage: s.label for s in spec.stages}[staged.stage]
        by_id = {t.id: t for t in failed}
        reasons = []
        for role, ident in staged.roles.items():
            if ident in by_id:
                t = by_id[ident]
                reasons.append(f"{role.replace('_', ' ')}: {ident} {', '.join(t.agents)} "
                               f"({label(t)}) failed")
            else:
                reasons.append(f"{role}: {ident} failed ECT course")
        if staged.stage == 0:
            reasons.append("no failed adequate antidepressant trial in scope")
        unused = [t.id for t in failed if t.id not in staged.roles.values()]
        if unused:
            reasons.append(f"failed trials not needed for the stage: {', '.join(unused)}")

        caveats: list[str] = []
        aug = sorted({c.agent for t in ctx.scoped_trials for c in t.concurrent if c.counted})
        if aug:
            caveats.append("augmentation or combination in the history is not counted by this "
                           f"model ({', '.join(aug)})")
        if failed_ect and staged.stage < 4:
            caveats.append("a failed ECT course is not counted below stage IV "
                           f"({', '.join(c.id for c in failed_ect)})")
        if any(c.laterality is Laterality.unilateral for c in failed_ect):
            caveats.append("failed unilateral ECT does not count for stage V (bilateral only)")
        if "ect" in staged.roles:
            used = next(c for c in failed_ect if c.id == staged.roles["ect"])
            if used.laterality is Laterality.unknown:
                caveats.append(f"stage V counts ECT course {used.id} whose laterality is unknown")
        outside = sorted({c.kind.value for c in ctx.scoped_courses if c.kind in OUTSIDE_MODEL})
        if outside:
            caveats.append("treatments outside the model are in the history and not counted: "
                           + ", ".join(outside))
        rima = [t.id for t in failed if t.mechanism == "rima"]
        if rima:
            caveats.append("a failed RIMA (reversible MAO-A inhibitor) is not counted as an "
                           f"MAOI for stage IV ({', '.join(rima)})")
        other_order = (StageOrder.sequential if policy.thase_rush_order is StageOrder.any_order
                       else StageOrder.any_order)
        atypical = sorted({a for t in failed if t.mechanism == spec.stage_3_mechanism
                           for a in t.agents if a in spec.stage_3_atypical_tcas})
        if atypical:
            caveats.append(f"{', '.join(atypical)}: " + (
                spec.stage_3_atypical_note if policy.thase_rush_tca_atypicals else
                f"not counted as the tricyclic trial of stage III (policy {policy.name}: "
                "thase_rush_tca_atypicals = false)"))
        alt = stage_trials(failed, failed_ect, cls, spec.stage_3_mechanism,
                           spec.stage_4_mechanism, other_order, not_tca)
        if alt.stage != staged.stage:
            caveats.append(f"the order of trials matters here: the {other_order.value} reading "
                           f"gives stage {alt.stage}")
        return ThaseRushResult(
            model=self.id, name=self.name, stage=staged.stage, stage_label=stage_label,
            taxonomy=policy.thase_rush_taxonomy.value, order=policy.thase_rush_order.value,
            roles=staged.roles, counted=list(staged.roles.values()), reasons=reasons,
            caveats=caveats, sources=ctx.sources(spec.source, "class-taxonomy-project"))
