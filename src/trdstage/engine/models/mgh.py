"""Massachusetts General Hospital staging score (Fava 2003), continuous, no ceiling.

Per failed adequate trial 1 point; +0.5 if the dose was raised during the trial above the
minimum adequate dose; +0.5 if it lasted longer than the policy's weeks at an adequate dose;
+0.5 if it was augmented or combined. Per failed ECT course 3 points.
"""

from __future__ import annotations

from trdstage.domain.results import MghResult, MghTrialPoints
from trdstage.engine.context import StagingContext


class MghModel:
    id = "mgh"
    name = "MGH staging score (Fava 2003)"

    def assess(self, ctx: StagingContext) -> MghResult:
        pts = ctx.knowledge.models.mgh.points
        limit = ctx.policy.mgh_duration_optimisation_weeks
        items: list[MghTrialPoints] = []
        for t in ctx.failed_trials:
            value = pts["failed_trial"].value
            parts = [f"failed adequate trial +{pts['failed_trial'].value:g}"]
            if t.dose_optimised:
                value += pts["dose_optimisation"].value
                parts.append(f"dose raised above the minimum +{pts['dose_optimisation'].value:g}")
            if t.weeks_at_adequate_dose > limit:
                value += pts["duration_optimisation"].value
                parts.append(f"over {limit:g} weeks at an adequate dose "
                             f"+{pts['duration_optimisation'].value:g}")
            concurrent = [c for c in t.concurrent if c.counted]
            if concurrent:
                value += pts["augmentation_or_combination"].value
                names = ", ".join(sorted({c.agent for c in concurrent}))
                parts.append(f"augmented or combined ({names}) "
                             f"+{pts['augmentation_or_combination'].value:g}")
            items.append(MghTrialPoints(id=t.id, points=value, parts=parts))
        for c in ctx.failed_ect:
            items.append(MghTrialPoints(
                id=c.id, points=pts["failed_ect_course"].value,
                parts=[f"failed ECT course +{pts['failed_ect_course'].value:g}"]))
        score = sum(i.points for i in items)
        reasons = [f"{i.id}: {i.points:g} ({'; '.join(i.parts)})" for i in items]
        if not items:
            reasons.append("no failed adequate trial or ECT course in scope: score 0")
        caveats = [
            f"duration optimisation (+{pts['duration_optimisation'].value:g}) is read as more "
            f"than {limit:g} weeks at an adequate dose: a project assumption",
            "combination scoring like augmentation and ECT scoring per failed course follow "
            "recalled wording of Fava 2003 (unverified)",
        ]
        keys = sorted({ctx.knowledge.models.mgh.source, *(p.source for p in pts.values())})
        return MghResult(model=self.id, name=self.name, score=score, items=items,
                         counted=[i.id for i in items], reasons=reasons, caveats=caveats,
                         sources=ctx.sources(*keys))
