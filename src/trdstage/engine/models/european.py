"""European staging model (Souery 1999): NR, TRD1-TRD5 by the number of failed adequate trials,
or CRD when failed adequate trials span the policy's months from the first start to the last end.
"""

from __future__ import annotations

from typing import Literal, cast

from trdstage.domain.results import EuropeanResult
from trdstage.engine.context import StagingContext
from trdstage.engine.timeline import months_between, months_reached

Category = Literal["none", "NR", "TRD1", "TRD2", "TRD3", "TRD4", "TRD5", "CRD"]


class EuropeanModel:
    id = "european"
    name = "European staging model (Souery 1999)"

    def assess(self, ctx: StagingContext) -> EuropeanResult:
        spec = ctx.knowledge.models.european
        failed = sorted(ctx.failed_trials, key=lambda t: t.start)
        n = len(failed)
        steps = spec.by_failed_trials
        category = next((s.category for s in steps if s.failed == n), steps[-1].category)
        reasons = [f"{n} failed adequate trial(s): {category}"]
        span: float | None = None
        one_class = ctx.policy.european_different_classes and n >= 2 and len(
            {t.mechanism for t in failed}) < 2
        if one_class:
            category = next(s.category for s in steps if s.failed == 1)
            reasons.append(f"every failed trial is of one class ({failed[0].mechanism_label}): "
                           f"{category} (policy {ctx.policy.name}: european_different_classes "
                           "= true needs two classes)")
        elif n >= spec.crd_min_failed_trials:
            last_end = max(t.end or ctx.as_of for t in failed)
            span = months_between(failed[0].start, last_end)
            if months_reached(failed[0].start, last_end, ctx.policy.european_crd_months):
                category = "CRD"
                reasons.append(
                    f"failed trials span {span:g} months (>= {ctx.policy.european_crd_months:g}) "
                    f"from {failed[0].start.isoformat()} to {last_end.isoformat()}: chronic "
                    "resistant depression (CRD)")
            else:
                reasons.append(f"failed trials span {span:g} months "
                               f"(< {ctx.policy.european_crd_months:g}): not CRD")
        caveats = [spec.by_failed_trials_note, spec.crd_note, spec.different_classes_note,
                   "ECT has no defined place in this model and is not counted"]
        return EuropeanResult(
            model=self.id, name=self.name, category=cast(Category, category), failed_trials=n,
            resistant_span_months=span, counted=[t.id for t in failed], reasons=reasons,
            caveats=caveats,
            sources=ctx.sources(spec.source, spec.by_failed_trials_source))
