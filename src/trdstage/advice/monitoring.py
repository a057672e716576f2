"""Symptom monitoring: severity band per reading, response and remission per scale and per
trial, early improvement, worsening (PHQ-9 rise >= 5, Löwe 2004) and PHQ-9 item 9 alerts."""

from __future__ import annotations

from datetime import date, timedelta

from trdstage.advice.context import AdviceContext
from trdstage.domain import RatingReading
from trdstage.domain.advice import (
    Alert,
    AlertSeverity,
    Monitoring,
    ReadingPoint,
    ScaleSeries,
    TrialResponse,
)
from trdstage.knowledge.schema import ScaleSpec


def _readings(ctx: AdviceContext) -> dict[str, list[RatingReading]]:
    out: dict[str, list[RatingReading]] = {}
    for episode in ctx.patient.episodes:
        for r in episode.ratings:
            if r.date <= ctx.as_of:
                out.setdefault(r.scale.value, []).append(r)
    for lst in out.values():
        lst.sort(key=lambda r: r.date)
    return out


def _threshold(spec: ScaleSpec) -> str:
    return f"{spec.remission.op} {spec.remission.value:g}"


def _reduction(baseline: float, value: float) -> float | None:
    return None if baseline <= 0 else round((baseline - value) / baseline * 100, 1)


def _series(ctx: AdviceContext, spec: ScaleSpec, readings: list[RatingReading]) -> ScaleSeries:
    points = []
    prev: RatingReading | None = None
    for r in readings:
        item9 = r.items[8] if r.items is not None and len(r.items) >= 9 else None
        points.append(ReadingPoint(date=r.date, total=r.total, band=spec.band(r.total),
                                   change_from_previous=None if prev is None
                                   else r.total - prev.total, item9=item9))
        prev = r
    onset = ctx.assessment.episode.onset
    window = timedelta(days=ctx.knowledge.monitoring.baseline_window_days)
    episode_readings = [r for r in readings if r.date >= onset - window]
    base = episode_readings[0] if episode_readings else None
    latest = readings[-1]
    reduction = _reduction(base.total, latest.total) if base is not None and base is not latest \
        else None
    return ScaleSeries(
        scale=spec.id, readings=points, latest_band=spec.band(latest.total),
        baseline=base.total if base is not None else None, latest=latest.total,
        reduction_pct=reduction,
        response=None if reduction is None else reduction >= spec.response_min_reduction_pct,
        remission=spec.remission.met(latest.total),
        response_threshold_pct=spec.response_min_reduction_pct,
        remission_threshold=_threshold(spec),
        sources=ctx.cite([spec.bands_source, spec.response_source, spec.remission_source]))


def _trial_responses(ctx: AdviceContext, spec: ScaleSpec,
                     readings: list[RatingReading]) -> list[TrialResponse]:
    rules = ctx.knowledge.monitoring
    # the engine's own baseline rule when the assessment says which policy it used, so that a
    # trial's reduction here is the one behind its outcome
    settings = ctx.assessment.policy_settings
    window = timedelta(days=settings.baseline_window_days if settings is not None
                       else rules.baseline_window_days)
    lo, hi = rules.early_improvement.window_days
    out = []
    for t in ctx.assessment.trials:
        end = t.end or ctx.as_of
        baseline = None
        for r in readings:
            if t.start - window <= r.date <= t.start:
                baseline = r
        during = [r for r in readings if t.start < r.date <= end]
        if baseline is None or not during or baseline.total <= 0:
            continue
        endpoint = during[-1]
        reduction = _reduction(baseline.total, endpoint.total) or 0.0
        early = [r for r in during if t.start + timedelta(days=lo) <= r.date
                 <= t.start + timedelta(days=hi)]
        early_ok = None
        if early:
            early_red = _reduction(baseline.total, early[-1].total) or 0.0
            early_ok = early_red >= rules.early_improvement.min_reduction_pct
        out.append(TrialResponse(
            trial_id=t.id, label=", ".join(t.agents), scale=spec.id,
            baseline_date=baseline.date, baseline=baseline.total, endpoint_date=endpoint.date,
            endpoint=endpoint.total, reduction_pct=reduction,
            response=reduction >= spec.response_min_reduction_pct,
            remission=spec.remission.met(endpoint.total), early_improvement=early_ok))
    return out


def _alert(ctx: AdviceContext, severity: AlertSeverity, code: str, message: str,
           keys: list[str], subjects: list[str], evidence: list[str]) -> Alert:
    return Alert(severity=severity, code=code, message=message, subjects=subjects,
                 evidence=evidence, sources=ctx.cite(keys), source_keys=list(dict.fromkeys(keys)))


def _worsening(ctx: AdviceContext, readings: dict[str, list[RatingReading]]) -> list[Alert]:
    out = []
    for rule in ctx.knowledge.monitoring.worsening:
        series = readings.get(rule.scale, [])
        if not series:
            continue
        latest = series[-1]
        for i, r in enumerate(series):
            earlier = [p for p in series[:i] if (r.date - p.date).days >= rule.min_days_between]
            if not earlier:
                continue
            before = earlier[-1]
            rise = r.total - before.total
            if rise < rule.min_rise:
                continue
            message = rule.message.format(rise=rise, before=before.total,
                                          before_date=before.date.isoformat(), after=r.total,
                                          after_date=r.date.isoformat())
            severity = AlertSeverity.warning if r is latest else AlertSeverity.info
            if r is not latest:
                message += " (not the latest reading)"
            out.append(_alert(ctx, severity, rule.code, message, rule.sources, [rule.scale],
                              [f"{rule.scale} {before.total:g} on {before.date.isoformat()}",
                               f"{rule.scale} {r.total:g} on {r.date.isoformat()}"]))
    return out


def _item_answers(ctx: AdviceContext, readings: list[RatingReading], scale: str,
                  item: int) -> list[tuple[date, int]]:
    """Every dated answer to one item up to the as-of date: from readings with all items and
    from item readings recorded without a total (a lone PHQ-9 item 9 counts on its own)."""
    found = {(r.date, r.items[item - 1]) for r in readings
             if r.items is not None and len(r.items) >= item}
    for episode in ctx.patient.episodes:
        found.update((i.date, i.score) for i in episode.item_readings
                     if i.scale.value == scale and i.item == item and i.date <= ctx.as_of)
    return sorted(found)


def _items(ctx: AdviceContext, readings: dict[str, list[RatingReading]]) -> list[Alert]:
    out = []
    for rule in ctx.knowledge.monitoring.item_alerts:
        answers = _item_answers(ctx, readings.get(rule.scale, []), rule.scale, rule.item)
        latest = max((d for d, _ in answers), default=None)
        for when, value in answers:
            if value <= rule.above:
                continue
            message = rule.message.format(value=value, date=when.isoformat())
            if when == latest:
                severity = AlertSeverity.urgent
            else:
                severity = AlertSeverity.warning
                message += " (an earlier reading; check the current risk)"
            out.append(_alert(ctx, severity, rule.code, message, rule.sources, [rule.scale],
                              [f"{rule.scale} item {rule.item} = {value} on "
                               f"{when.isoformat()}"]))
    return out


def _early(ctx: AdviceContext, trials: list[TrialResponse]) -> list[Alert]:
    rule = ctx.knowledge.monitoring.early_improvement
    ongoing = {t.id for t in ctx.assessment.trials if t.ongoing}
    out = []
    for tr in trials:
        if tr.trial_id in ongoing and tr.early_improvement is False:
            out.append(_alert(ctx, AlertSeverity.warning, "no_early_improvement",
                              rule.message.format(agent=tr.label), rule.sources,
                              [tr.label, tr.scale],
                              [f"{tr.trial_id}: {tr.scale} {tr.baseline:g} on "
                               f"{tr.baseline_date.isoformat()}, early readings below "
                               f"{rule.min_reduction_pct:g}% improvement"]))
    return out


def monitor(ctx: AdviceContext) -> tuple[Monitoring, list[Alert]]:
    readings = _readings(ctx)
    scales = ctx.knowledge.base.scales
    series: list[ScaleSeries] = []
    trials: list[TrialResponse] = []
    notes: list[str] = []
    for name, lst in readings.items():
        spec = scales.get(name)
        if spec is None:
            notes.append(f"{name}: no scale definition; readings not interpreted")
            continue
        series.append(_series(ctx, spec, lst))
        trials += _trial_responses(ctx, spec, lst)
    if not readings:
        notes.append("No rating-scale readings recorded: measurement-based care needs a "
                     "validated scale at each visit (CANMAT 2023 section 5).")
    alerts = _items(ctx, readings) + _worsening(ctx, readings) + _early(ctx, trials)
    latest: date | None = max((r.date for lst in readings.values() for r in lst), default=None)
    if latest is not None:
        notes.append(f"Latest reading {latest.isoformat()} "
                     f"({(ctx.as_of - latest).days} days before the assessment date).")
    return Monitoring(scales=series, trials=trials,
                      alert_codes=list(dict.fromkeys(a.code for a in alerts)), notes=notes), alerts
