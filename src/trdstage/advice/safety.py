"""Safety alerts from knowledge/data/safety.yaml over the current drugs and each proposed drug.

Contraindicated combinations and flag contraindications block an option (it stays listed, with
the reason); washouts, dose ceilings, interactions and monitoring are warnings or information.
"""

from __future__ import annotations

from datetime import timedelta

from trdstage.advice.context import AdviceContext, DrugUse
from trdstage.domain.advice import Alert, AlertSeverity
from trdstage.knowledge.advice_schema import AdviceKnowledge, CeilingRule


def in_group(k: AdviceKnowledge, group: str, name: str) -> bool:
    g = k.safety.groups[group]
    if name in g.except_agents:
        return False
    if name in g.agents:
        return True
    ad = k.base.antidepressants.get(name)
    if ad is not None and ad.mechanism in g.mechanisms:
        return True
    aug = k.base.augmenters.get(name)
    return aug is not None and aug.group in g.augmenter_groups


def _alert(ctx: AdviceContext, severity: str, code: str, message: str, sources: list[str],
           subjects: list[str], evidence: list[str] | None = None) -> Alert:
    return Alert(severity=AlertSeverity(severity), code=code, message=message,
                 subjects=list(dict.fromkeys(subjects)), evidence=evidence or [],
                 sources=ctx.cite(sources), source_keys=list(dict.fromkeys(sources)))


def _describe(use: DrugUse) -> str:
    state = "current" if use.end is None else f"stopped {use.end.isoformat()}"
    return f"{use.name} ({use.where}, {state})"


def _pair_alerts(ctx: AdviceContext, a: str, b: DrugUse) -> list[Alert]:
    """Combination rules for drug `a` taken together with `b` (either order)."""
    k = ctx.knowledge
    out = []
    for rule in k.safety.combinations:
        if rule.min_age is not None and (ctx.age is None or ctx.age < rule.min_age):
            continue
        if (in_group(k, rule.a, a) and in_group(k, rule.b, b.name)) or (
                in_group(k, rule.b, a) and in_group(k, rule.a, b.name)):
            evidence = [_describe(b)]
            if rule.min_age is not None:
                evidence.append(f"age {ctx.age}")
            out.append(_alert(ctx, rule.severity, rule.code, rule.message, rule.sources,
                              [a, b.name], evidence))
    return out


def _washout_alerts(ctx: AdviceContext, to: str, sources_of: list[DrugUse]) -> list[Alert]:
    """Washout needed before starting `to` after the drugs in `sources_of` (current ones will be
    stopped by the switch; stopped ones only while the interval has not passed)."""
    k = ctx.knowledge
    out = []
    for prev in sources_of:
        if prev.name == to:
            continue
        for rule in k.safety.washouts:
            if not (in_group(k, rule.from_group, prev.name) and in_group(k, rule.to_group, to)):
                continue
            if prev.end is None:
                message = (f"Switching from {prev.name} to {to}: washout {rule.text}. "
                           "Done in, or with advice from, secondary care.")
                out.append(_alert(ctx, "warning", rule.code, message, rule.sources,
                                  [prev.name, to], [_describe(prev)]))
            else:
                ready = prev.end + timedelta(days=rule.days)
                if ready > ctx.as_of:
                    message = (f"{prev.name} was stopped on {prev.end.isoformat()}: washout "
                               f"{rule.text}; do not start {to} before {ready.isoformat()}.")
                    out.append(_alert(ctx, "contraindicated", rule.code, message, rule.sources,
                                      [prev.name, to], [_describe(prev)]))
            break  # the first (most specific) matching rule applies
    return out


def _ceiling(ctx: AdviceContext, rule: CeilingRule) -> tuple[float, list[str], list[str]]:
    """The lowest applicable maximum daily dose, why, and the sources."""
    limit, why, sources = rule.max_mg, [rule.why], list(rule.sources)
    current = ctx.current_names()
    for c in rule.conditions:
        if c.min_age is not None and (ctx.age is None or ctx.age < c.min_age):
            continue
        if c.over_age is not None and (ctx.age is None or ctx.age <= c.over_age):
            continue
        if c.phenotypes and not all(
                ctx.phenotypes.get(g, ("", ""))[0] in codes for g, codes in c.phenotypes.items()):
            continue
        if c.flags and not (set(c.flags) & ctx.flags):
            continue
        if c.with_group and not any(in_group(ctx.knowledge, c.with_group, n) for n in current
                                    if n != rule.agent):
            continue
        if c.max_mg < limit:
            limit, why, sources = c.max_mg, [c.why], list(c.sources)
        elif c.max_mg == limit:
            why.append(c.why)
            sources += c.sources
    return limit, why, sources


def agent_alerts(ctx: AdviceContext, agent: str, together_with: list[DrugUse],
                 washout_from: list[DrugUse], proposed_dose: bool = True,
                 dose_mg: float | None = None) -> list[Alert]:
    """Every rule that fires for starting (or continuing) `agent`; with `dose_mg` (an order's
    daily dose) the ceiling alert fires only when that dose is above the patient's maximum."""
    k = ctx.knowledge
    out: list[Alert] = []
    for other in together_with:
        if other.name != agent:
            out += _pair_alerts(ctx, agent, other)
    out += _washout_alerts(ctx, agent, washout_from)
    for rule in k.safety.flag_rules:
        hit = sorted(set(rule.flags) & ctx.flags)
        if hit and in_group(k, rule.group, agent):
            out.append(_alert(ctx, rule.severity, rule.code, rule.message, rule.sources,
                              [agent], [f"flag: {f}" for f in hit]))
    for age_rule in k.safety.age_rules:
        if ctx.age is None or not in_group(k, age_rule.group, agent):
            continue
        if age_rule.max_age is not None and ctx.age > age_rule.max_age:
            continue
        if age_rule.min_age is not None and ctx.age < age_rule.min_age:
            continue
        out.append(_alert(ctx, age_rule.severity, age_rule.code, age_rule.message,
                          age_rule.sources, [agent], [f"age {ctx.age}"]))
    for ceiling in k.safety.ceilings:
        if ceiling.agent != agent:
            continue
        limit, why, sources = _ceiling(ctx, ceiling)
        if dose_mg is not None:
            if dose_mg > limit:
                out.append(_alert(ctx, "warning", ceiling.code,
                                  f"{agent} {dose_mg:g} mg/day is above the maximum of "
                                  f"{limit:g} mg/day for this patient ({'; '.join(why)}).",
                                  sources, [agent]))
        elif proposed_dose and limit < ceiling.max_mg:
            out.append(_alert(ctx, "warning", ceiling.code,
                              f"{agent}: maximum {limit:g} mg/day for this patient "
                              f"({'; '.join(why)}).", sources, [agent]))
    for mon in k.safety.monitoring:
        if in_group(k, mon.group, agent):
            out.append(_alert(ctx, mon.severity, mon.code, mon.message, mon.sources, [agent]))
    return out


def current_alerts(ctx: AdviceContext) -> list[Alert]:
    """Alerts over the drugs the patient takes now: pairs, flags, age, dose ceilings, monitoring."""
    k = ctx.knowledge
    out: list[Alert] = []
    current = ctx.current
    seen_pairs: set[tuple[str, ...]] = set()
    for i, a in enumerate(current):
        for b in current[i + 1:]:
            if a.name == b.name:
                continue
            for alert in _pair_alerts(ctx, a.name, b):
                key = (alert.code, *sorted((a.name, b.name)))
                if key not in seen_pairs:
                    seen_pairs.add(key)
                    alert.evidence.insert(0, _describe(a))
                    out.append(alert)
    for use in current:
        if use.role == "other":
            continue
        # a current drug started within a washout of a stopped one
        if use.start is not None:
            earlier = [s for s in ctx.stopped if s.end is not None and s.end <= use.start]
            for prev in earlier:
                for rule in k.safety.washouts:
                    if in_group(k, rule.from_group, prev.name) and in_group(
                            k, rule.to_group, use.name):
                        gap = (use.start - prev.end).days if prev.end else 0
                        if gap < rule.days:
                            out.append(_alert(
                                ctx, "warning", rule.code + "_not_respected",
                                f"{use.name} was started {gap} days after stopping {prev.name}; "
                                f"the washout is {rule.text}.", rule.sources,
                                [prev.name, use.name], [_describe(prev), _describe(use)]))
                        break
        for alert in agent_alerts(ctx, use.name, [], [], proposed_dose=False):
            out.append(alert)
        for ceiling in k.safety.ceilings:
            if ceiling.agent == use.name and use.dose_mg is not None:
                limit, why, sources = _ceiling(ctx, ceiling)
                if use.dose_mg > limit:
                    out.append(_alert(ctx, "warning", ceiling.code,
                                      f"{use.name} {use.dose_mg:g} mg/day is above the maximum "
                                      f"of {limit:g} mg/day for this patient ({'; '.join(why)}).",
                                      sources, [use.name], [_describe(use)]))
    return out


def dose_ceiling(ctx: AdviceContext, agent: str) -> tuple[float, list[str]] | None:
    """The maximum daily dose for this patient where a ceiling rule exists, and why."""
    for rule in ctx.knowledge.safety.ceilings:
        if rule.agent == agent:
            limit, why, _ = _ceiling(ctx, rule)
            return limit, why
    return None


def blocking_reason(alerts: list[Alert]) -> str | None:
    hard = [a.message for a in alerts if a.severity is AlertSeverity.contraindicated]
    return " ".join(hard) if hard else None
