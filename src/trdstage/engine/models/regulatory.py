"""Regulatory TRD (EMA and FDA esketamine indication): at least two different antidepressant
agents failed at adequate dose and duration in the current episode."""

from __future__ import annotations

from trdstage.domain import Scope, Severity
from trdstage.domain.results import RegulatoryResult
from trdstage.engine.context import StagingContext


class RegulatoryModel:
    id = "regulatory"
    name = "Regulatory TRD definition (EMA/FDA esketamine indication)"

    def assess(self, ctx: StagingContext) -> RegulatoryResult:
        onset = ctx.episode_summary.onset
        failed = [t for t in ctx.trials if t.failed and t.start >= onset]
        agents = sorted({a for t in failed for a in t.agents})
        needed = ctx.policy.regulatory_min_failed_agents
        met = len(agents) >= needed
        first_met = None
        seen: set[str] = set()
        for t in sorted(failed, key=lambda t: (t.end or ctx.as_of, t.start)):
            seen.update(t.agents)
            if len(seen) >= needed:
                first_met = t.end or ctx.as_of
                break
        reasons = [f"{len(agents)} different antidepressant agent(s) failed in the current "
                   f"episode ({', '.join(agents) or 'none'}); the definition needs {needed}"]
        caveats: list[str] = []
        if ctx.policy.scope is Scope.lifetime:
            caveats.append("counts the current episode only, whatever the policy's scope")
        if ctx.episode_summary.severity in (Severity.mild, Severity.subsyndromal):
            caveats.append("the EMA indication concerns a moderate to severe episode; this "
                           f"episode is recorded as {ctx.episode_summary.severity.value}")
        if "bipolar_features" in ctx.episode_summary.flags:
            caveats.append("bipolar features are recorded: the indication concerns major "
                           "depressive disorder")
        return RegulatoryResult(
            model=self.id, name=self.name, met=met, failed_agents=agents, first_met=first_met,
            counted=[t.id for t in failed], reasons=reasons, caveats=caveats,
            sources=ctx.sources(*ctx.knowledge.models.regulatory.sources))
