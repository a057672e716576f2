"""The pseudo-resistance checklist (knowledge/data/reassessment.yaml), run on every assessment:
each item is `found` (with the evidence from the record) or `to_check`."""

from __future__ import annotations

from trdstage.advice.context import AdviceContext
from trdstage.advice.safety import in_group
from trdstage.domain import Adherence
from trdstage.domain.advice import ChecklistItem, ChecklistStatus
from trdstage.knowledge.advice_schema import ChecklistSpec


def _inadequate(ctx: AdviceContext) -> list[str]:
    out = []
    for t in ctx.trials_in_scope:
        if t.adequate:
            continue
        why = [r for r in t.reasons if r.startswith("not adequate")] or ["not adequate"]
        out.append(f"{t.id} {', '.join(t.agents)}: {'; '.join(why)}")
    return out


def _adherence(ctx: AdviceContext) -> list[str]:
    return [f"{t.id} {', '.join(t.agents)}: adherence recorded as {t.adherence.value}"
            for t in ctx.trials_in_scope
            if t.adherence in (Adherence.partial, Adherence.poor)]


def _intolerance(ctx: AdviceContext) -> list[str]:
    return [f"{t.id} {', '.join(t.agents)}: stopped for intolerance"
            for t in ctx.trials_in_scope if t.outcome.value == "intolerance"]


def _pharmacokinetics(ctx: AdviceContext) -> list[str]:
    out = [f"{gene} {code} ({basis})" for gene, (code, basis) in ctx.phenotypes.items()
           if ctx.knowledge.cpic.likely.get(code, code) in ("UM", "RM", "PM", "IM")]
    out += ctx.pgx_notes
    if "st john's wort" in ctx.current_names() or "hypericum" in ctx.current_names():
        out.append("St John's wort recorded (CYP3A4 inducer)")
    return out


def _interactions(ctx: AdviceContext) -> list[str]:
    k = ctx.knowledge
    names = ctx.current_names()
    out = [f"{n} (current) inhibits CYP2D6" for n in names
           if in_group(k, "strong_2d6_inhibitor", n)]
    out += [f"{n} (current) inhibits CYP2C19" for n in names
            if in_group(k, "cyp2c19_inhibitor", n)]
    return out


def _detect(ctx: AdviceContext, spec: ChecklistSpec) -> list[str]:
    evidence = [f"flag: {f}" for f in spec.flags if f in ctx.flags]
    if spec.detector == "inadequate_trials":
        evidence += _inadequate(ctx)
    elif spec.detector == "adherence":
        evidence += _adherence(ctx)
    elif spec.detector == "side_effects":
        evidence += _intolerance(ctx)
    elif spec.detector == "pharmacokinetics":
        evidence += _pharmacokinetics(ctx)
    elif spec.detector == "interactions":
        evidence += _interactions(ctx)
    elif spec.detector == "psychotic_features" and ctx.assessment.episode.psychotic_features:
        evidence.append("current episode recorded with psychotic features")
    return list(dict.fromkeys(evidence))


def reassess(ctx: AdviceContext) -> list[ChecklistItem]:
    items = []
    for spec in ctx.knowledge.reassessment.items:
        evidence = _detect(ctx, spec)
        items.append(ChecklistItem(
            id=spec.id, domain=spec.domain, check=spec.check,
            status=ChecklistStatus.found if evidence else ChecklistStatus.to_check,
            evidence=evidence, sources=ctx.cite(spec.sources), source_keys=spec.sources))
    return items


def unknown_flags(ctx: AdviceContext) -> list[str]:
    return sorted(f for f in ctx.flags if f not in ctx.knowledge.reassessment.flags)
