"""Maudsley Staging Method (Fekadu 2009; standardised 2018): 3-15, bands mild/moderate/severe.

Duration of the current episode, baseline severity, failed antidepressants counted as distinct
agents, augmentation or combination used (0/1), ECT used (0/1). Not applicable with no failed
antidepressant (the minimum total of 3 implies one).
"""

from __future__ import annotations

from typing import Literal

from trdstage.domain import Scope, Severity
from trdstage.domain.results import MaudsleyResult
from trdstage.engine.context import StagingContext
from trdstage.engine.timeline import within_months

BandLabel = Literal["mild", "moderate", "severe"]


class MaudsleyModel:
    id = "maudsley"
    name = "Maudsley Staging Method (Fekadu 2009)"

    def assess(self, ctx: StagingContext) -> MaudsleyResult:
        spec = ctx.knowledge.models.maudsley
        sources = ctx.sources(spec.source, "fekadu-2009")
        caveats: list[str] = []
        if ctx.policy.scope is Scope.lifetime:
            caveats.append("the MSM is defined on the current episode; policy "
                           f"{ctx.policy.name} counts failures over the lifetime")
        failed = ctx.failed_trials
        agents = sorted({a for t in failed for a in t.agents})
        if not agents:
            return MaudsleyResult(
                model=self.id, name=self.name, score=None, band=None,
                reasons=["not applicable: no failed adequate antidepressant in scope"],
                caveats=caveats, sources=sources)
        ep = ctx.episode_summary
        if ep.severity is None:
            return MaudsleyResult(
                model=self.id, name=self.name, score=None, band=None,
                counted=[t.id for t in failed],
                reasons=["not computable: the episode's severity is not recorded"],
                caveats=caveats, sources=sources)

        months = ep.duration_months
        episode_end = min(ep.end, ctx.as_of) if ep.end else ctx.as_of
        duration = next(b for b in spec.duration_months
                        if b.max_months is None
                        or within_months(ep.onset, episode_end, b.max_months))
        if ep.psychotic_features and ep.severity is Severity.severe:
            severity_key = "severe_psychotic"
        else:
            severity_key = ep.severity.value
            if ep.psychotic_features:
                caveats.append("psychotic features recorded with a severity below severe: "
                               "scored on the recorded severity")
        severity = spec.severity[severity_key]  # type: ignore[index]
        n = len(agents)
        level = next(b for b in spec.failed_antidepressants if b.max is None or n <= b.max)
        aug_used = any(c.counted for t in ctx.scoped_trials for c in t.concurrent)
        ect_used = bool(ctx.scoped_ect)
        components = {
            "duration": duration.points,
            "severity": severity,
            "failed_antidepressants": level.points,
            "augmentation": spec.augmentation_points if aug_used else 0,
            "ect": spec.ect_points if ect_used else 0,
        }
        score = sum(components.values())
        band: BandLabel | None = None
        for b in spec.bands:
            if b.low <= score <= b.high:
                band = b.label  # type: ignore[assignment]
        reasons = [
            f"duration {months:g} months ({duration.label}): {duration.points}",
            f"severity {severity_key.replace('_psychotic', ' with psychotic features')}: "
            f"{severity}",
            f"{n} failed antidepressant(s) ({', '.join(agents)}): {level.points}",
            f"augmentation or combination {'used' if aug_used else 'not used'}: "
            f"{components['augmentation']}",
            f"ECT {'used' if ect_used else 'not used'}: {components['ect']}",
        ]
        caveats.append(spec.duration_note)
        if spec.combination_note:
            caveats.append(spec.combination_note)
        caveats.append("severity is the episode's recorded severity; the MSM does not map "
                       "rating-scale scores onto its categories")
        return MaudsleyResult(
            model=self.id, name=self.name, score=score, band=band, components=components,
            counted=[t.id for t in failed] + [c.id for c in ctx.scoped_ect],
            reasons=reasons, caveats=caveats, sources=sources)
