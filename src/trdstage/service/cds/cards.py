"""Cards from a staged, advised assessment: the staging card (patient-view) and the safety
cards of draft orders (order-select, order-sign).

Nothing clinical is decided here: the stages, trials, next steps and alerts are the engine's and
the advice layer's; the safety rules for a drug being ordered are `advice.safety.agent_alerts`
and the CPIC lookup `advice.pharmacogenomics.findings_for`, called for that drug. This module only
chooses the card's indicator from the alerts' severities (project defaults, docs/cds-hooks.md):
`critical` for a contraindication or a washout, `warning` for another warning, `info` otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from trdstage.adapters.fhir.codes import load_fhir_codes
from trdstage.advice.context import AdviceContext
from trdstage.advice.pharmacogenomics import advises_alternative, findings_for
from trdstage.advice.safety import agent_alerts
from trdstage.domain.advice import Alert, AlertSeverity
from trdstage.domain.results import DISCLAIMER, Assessment, TrialVerdict
from trdstage.report.text import ROMAN, _caveats, _cell, _grades, _trial_line, headline
from trdstage.service.cds.models import (
    SUMMARY_MAX,
    Action,
    Card,
    Indicator,
    Link,
    OverrideReasonCoding,
    Source,
    Suggestion,
)

TOP_STEPS = 3
SOURCE_LABEL = "trdstage (decision support, not a medical device)"
_RANK = {"info": 0, "warning": 1, "critical": 2}


def short(text: str, limit: int = SUMMARY_MAX) -> str:
    """At most `limit` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:·")
    return cut + "…"


def override_reasons() -> list[OverrideReasonCoding]:
    system = f"{load_fhir_codes().spec.project_base}/CodeSystem/cds-override-reason"
    return [OverrideReasonCoding(system=system, code=c, display=d) for c, d in (
        ("benefit-outweighs-risk", "Benefit outweighs the risk; the patient will be monitored"),
        ("record-inaccurate", "The record is not accurate (drug stopped, dates or dose wrong)"),
        ("specialist-plan", "Part of a specialist's plan (e.g. a supervised switch)"),
        ("not-relevant", "Not relevant for this patient"),
    )]


@dataclass
class Links:
    """Where the card points: the docs (source), the clinician app (SMART launch) and the
    stored report."""

    docs_url: str
    app_launch_url: str | None
    report_url: str | None


def _source(links: Links) -> Source:
    return Source(label=SOURCE_LABEL, url=links.docs_url)


def _links(links: Links) -> list[Link]:
    out = []
    if links.app_launch_url:
        out.append(Link(label="Open trdstage (clinician app)", url=links.app_launch_url,
                        type="smart"))
    if links.report_url:
        out.append(Link(label="Full trdstage report", url=links.report_url, type="absolute"))
    return out


def _alert_line(a: Alert) -> str:
    evidence = f" ({'; '.join(a.evidence)})" if a.evidence else ""
    return f"- **{a.severity.value}** {_cell(a.message)}{_cell(evidence)}"


def _staging_indicator(a: Assessment) -> Indicator:
    severities = {x.severity for x in a.alerts}
    if AlertSeverity.urgent in severities:
        return "critical"
    if severities & {AlertSeverity.contraindicated, AlertSeverity.warning}:
        return "warning"
    return "info"


def staging_summary(a: Assessment) -> str:
    s = a.staging
    head = (f"TRD: Thase & Rush stage {ROMAN[s.thase_rush.stage]} · MGH-S {s.mgh.score:g} · "
            f"regulatory TRD {'met' if s.regulatory.met else 'not met'}")
    if any(x.severity is AlertSeverity.urgent for x in a.alerts):
        head = "URGENT alert, see details · " + head
    return short(head)


def staging_detail(a: Assessment) -> str:
    ep = a.episode
    out = [f"**Current episode** from {ep.onset.isoformat()} ({ep.duration_months:g} months), "
           f"severity {ep.severity.value if ep.severity else 'not recorded'}; as of "
           f"{a.as_of.isoformat()}, policy `{a.policy}`.", "", "| Model | Result |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in headline(a)]
    counted = [t for t in a.trials if t.in_scope]
    out += ["", "**Trials in this episode**", ""]
    out += [f"- {_cell(_trial_line(t))}" for t in counted] or ["- none recorded"]
    steps = [r for r in a.recommendations if not r.blocked][:TOP_STEPS]
    if steps:
        out += ["", "**Next steps to consider**", ""]
        out += [f"{r.rank}. {_cell(r.label)}" + (f" ({_cell(_grades(r))})" if r.grades else "")
                for r in steps]
    if a.alerts:
        out += ["", "**Alerts**", ""] + [_alert_line(x) for x in a.alerts]
    caveats = _caveats(a)
    if caveats:
        out += ["", "**Caveats**", ""] + [f"- {_cell(c)}" for c in caveats]
    if a.warnings:
        out += ["", "**What in the record was not used**", ""] + [
            f"- {_cell(w.message)}" for w in a.warnings]
    out += ["", f"_{DISCLAIMER}_"]
    return "\n".join(out)


def staging_card(a: Assessment, links: Links) -> Card:
    return Card(uuid=str(uuid.uuid4()), summary=staging_summary(a), detail=staging_detail(a),
                indicator=_staging_indicator(a), source=_source(links), links=_links(links))


@dataclass
class DraftDrug:
    """One drug of a draft MedicationRequest, as the FHIR reader recognised it."""

    resource_id: str  # "MedicationRequest/<id>"
    agent: str
    daily_dose_mg: float | None


def _is_washout(a: Alert) -> bool:
    return a.code.startswith("washout_")


def _alert_indicator(a: Alert) -> Indicator:
    if a.severity is AlertSeverity.contraindicated or _is_washout(a):
        return "critical"
    if a.severity in (AlertSeverity.warning, AlertSeverity.urgent):
        return "warning"
    return "info"


def _failed_before(ctx: AdviceContext, agent: str) -> list[TrialVerdict]:
    return [t for t in ctx.failed_trials if agent in t.agents and t.adequate]


def _failed_line(agent: str, t: TrialVerdict) -> str:
    dose = f" at {t.max_daily_dose_mg:g} mg/day" if t.max_daily_dose_mg is not None else ""
    return (f"{agent} failed an adequate {t.weeks:g}-week trial{dose} in {t.start.year} "
            f"({t.id}, {t.outcome.value.replace('_', ' ')}) in this episode.")


def order_alerts(ctx: AdviceContext, drug: DraftDrug) -> tuple[list[tuple[Indicator, str]],
                                                                list[Alert]]:
    """Every rule the drug being ordered raises: (indicator, line) per finding."""
    current = [u for u in ctx.current if u.name != drug.agent]
    alerts = agent_alerts(ctx, drug.agent, current, [*current, *ctx.stopped],
                          dose_mg=drug.daily_dose_mg)
    lines: list[tuple[Indicator, str]] = []
    for a in alerts:
        lines.append((_alert_indicator(a), _alert_line(a)))
    for t in _failed_before(ctx, drug.agent):
        lines.append(("info", f"- **already tried** {_cell(_failed_line(drug.agent, t))}"))
    for f in findings_for(ctx, [drug.agent], "option"):
        if f.status == "no_guideline":
            continue
        steer = advises_alternative(f)
        strength = f" ({f.strength})" if f.strength else ""
        lines.append(("warning" if steer else "info",
                      f"- **CPIC{strength}** {_cell(f.recommendation)}"))
    return lines, alerts


def _phrase(agent: str, a: Alert) -> str:
    """A few words for the summary: what the alert is about and with which drug."""
    others = [x for x in a.subjects if x != agent]
    if _is_washout(a):
        return f"washout after {', '.join(others)}" if others else "washout"
    if others:
        return f"{a.severity.value} with {', '.join(others)}"
    return a.message.split(":")[0].split(".")[0]


def order_card(ctx: AdviceContext, drug: DraftDrug, links: Links) -> Card | None:
    lines, alerts = order_alerts(ctx, drug)
    if not lines:
        return None
    lines.sort(key=lambda x: -_RANK[x[0]])
    indicator = lines[0][0]
    ranked = sorted(alerts, key=lambda a: -_RANK[_alert_indicator(a)])
    phrases = [_phrase(drug.agent, a) for a in ranked if _alert_indicator(a) != "info"]
    if phrases:
        head = f"{drug.agent} order: " + "; ".join(dict.fromkeys(phrases))
    elif _failed_before(ctx, drug.agent):
        head = _failed_line(drug.agent, _failed_before(ctx, drug.agent)[-1])
    else:
        head = f"{drug.agent} order: {lines[0][1].split('** ', 1)[-1]}"
    detail = "\n".join([f"**{drug.agent}** ({drug.resource_id}"
                        + (f", {drug.daily_dose_mg:g} mg/day" if drug.daily_dose_mg else "")
                        + ") against this patient's record:", "",
                        *[line for _, line in lines], "", f"_{DISCLAIMER}_"])
    suggestions = []
    if indicator == "critical":
        suggestions.append(Suggestion(
            label=f"Remove the {drug.agent} order", uuid=str(uuid.uuid4()), isRecommended=True,
            actions=[Action(type="delete", description=f"Remove the draft {drug.agent} order",
                            resourceId=[drug.resource_id])]))
    return Card(uuid=str(uuid.uuid4()), summary=short(head), detail=detail, indicator=indicator,
                source=_source(links), suggestions=suggestions,
                selectionBehavior="at-most-one" if suggestions else None,
                overrideReasons=override_reasons() if indicator != "info" else [],
                links=_links(links))
