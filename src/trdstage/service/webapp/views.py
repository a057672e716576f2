"""What the pages show, computed from a patient and the engine: no HTML, no HTTP.

The stage, reasons, alerts and options are the engine's and the advice step's; the report's own
`build_clinician` lays them out, so the page, the HTML report and the PDF say the same thing.
The plan ("what if the next trial fails") adds one hypothetical trial to a copy of the history
and stages it again; it is never stored.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from trdstage.adapters.native import patient_from_mapping
from trdstage.advice import advise
from trdstage.domain.advice import AlertSeverity
from trdstage.domain.patient import DoseStep, MedicationRegimen, Patient
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge import load_policy
from trdstage.knowledge.advice_schema import load_advice_knowledge
from trdstage.report import charts
from trdstage.report.content import headline
from trdstage.report.text import ROMAN

SEVERITY_WORDS = {
    AlertSeverity.urgent: "Urgent: same-day review",
    AlertSeverity.contraindicated: "Contraindicated",
    AlertSeverity.warning: "Warning",
    AlertSeverity.info: "Information",
}


def patient_of(document: dict[str, Any], today: date | None = None) -> Patient:
    """A stored document, read again with the native file's validation."""
    return patient_from_mapping(document, "stored history", today=today)


def run(patient: Patient, as_of: date, policy: str) -> Assessment:
    return advise(patient, assess(patient, as_of=as_of, policy=load_policy(policy)))


def svg_data_uri(fig: Any) -> str:
    """A chart as an image URI: the page's CSP allows no inline style, an image may have its own."""
    if fig is None:
        return ""
    svg = charts.to_svg(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def chart_uris(patient: Patient, a: Assessment) -> tuple[str, str]:
    span = charts.shared_span(patient, a)
    return (svg_data_uri(charts.timeline_figure(a, "clinician", span=span)),
            svg_data_uri(charts.symptom_figure(patient, a, "clinician", span=span)))


def one_line(a: Assessment) -> str:
    """The stages in one line, for lists and the audit of an assessment."""
    s = a.staging
    msm = f"MSM {s.maudsley.score}" if s.maudsley.score is not None else "MSM n/a"
    return (f"T&R {ROMAN[s.thase_rush.stage]}; MGH-S {s.mgh.score:g}; {msm}; "
            f"European {s.european.category}; regulatory TRD "
            f"{'met' if s.regulatory.met else 'not met'}")


def note_text(a: Assessment, top: int = 3) -> str:
    """The copy-to-note block: stages, alerts, first options, disclaimer; plain text."""
    lines = [f"TRD staging (trdstage), patient {a.patient_id}, as of {a.as_of.isoformat()}, "
             f"policy {a.policy}:"]
    lines += [f"- {name}: {value}" for name, value in headline(a)]
    if a.alerts:
        lines.append("Alerts:")
        lines += [f"- {SEVERITY_WORDS[al.severity]}: {al.message}" for al in a.alerts]
    options = [r for r in sorted(a.recommendations, key=lambda r: r.rank) if not r.blocked][:top]
    if options:
        lines.append("Options to consider (ranked):")
        lines += [f"{r.rank}. {r.label}"
                  + (f" ({'; '.join(f'{g.guideline}: {g.grade}' for g in r.grades)})"
                     if r.grades else "") for r in options]
    lines.append(a.disclaimer)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PlanChoice:
    option: str
    label: str
    agent: str
    dose_mg: float


def plan_choices(a: Assessment) -> list[PlanChoice]:
    """The switch options of the next steps (not blocked), one per agent, with the CANMAT
    Table 3.3 low dose (or the formulary's minimum adequate dose, whichever is higher)."""
    k = load_advice_knowledge()
    specs = {o.id: o for o in k.options.options}
    out = []
    for r in sorted(a.recommendations, key=lambda r: r.rank):
        spec = specs.get(r.intervention)
        if spec is None or spec.mode != "replace" or r.blocked:
            continue
        for agent in spec.agents:
            drug = k.base.antidepressants.get(agent)
            switch = k.options.switch_doses.get(agent)
            doses = [d for d in (drug.min_adequate_mg if drug else None,
                                 switch.low if switch else None) if d is not None]
            if drug is None or not doses:
                continue
            out.append(PlanChoice(r.intervention, r.label, agent, max(doses)))
    return out


@dataclass(frozen=True)
class Plan:
    choice: PlanChoice
    start: date
    end: date
    weeks: int
    dose_mg: float
    before: Assessment
    after: Assessment


def plan_failed_trial(patient: Patient, before: Assessment, choice: PlanChoice, weeks: int,
                      dose_mg: float, policy: str) -> Plan:
    """Stage the history as if `choice` were started the day after the assessment date, taken
    for `weeks` at `dose_mg` with good adherence, and had not worked. The current
    antidepressants stop when it starts (a switch)."""
    start = before.as_of + timedelta(days=1)
    end = start + timedelta(weeks=weeks)
    episode = patient.current_episode(before.as_of)
    meds = []
    for regimen in episode.medications:
        steps = [s if s.end is not None else s.model_copy(update={"end": before.as_of})
                 for s in regimen.steps]
        meds.append(regimen.model_copy(update={"steps": steps}))
    meds.append(MedicationRegimen.model_validate({
        "id": "planned", "agent": choice.agent, "adherence": "good", "outcome": "non_response",
        "steps": [DoseStep(start=start, end=end, daily_dose_mg=dose_mg)]}))
    episodes = [e if e is not episode else e.model_copy(update={"medications": meds})
                for e in patient.episodes]
    future = patient.model_copy(update={"episodes": episodes})
    return Plan(choice, start, end, weeks, dose_mg, before, run(future, end, policy))


def data_used(origin: str, used: dict[str, Any]) -> dict[str, Any]:
    """What the page lists under 'data used' for a stored version."""
    return {"origin": origin, "resources": used.get("resources", {}),
            "ignored": used.get("ignored", []), "read_at": used.get("read_at", "")}
