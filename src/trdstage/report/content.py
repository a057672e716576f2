"""What a clinician report says, section by section, independent of HTML or PDF.

The HTML template and the PDF writer both walk the `ClinicianReport` built here, so the two
formats carry the same sections in the same order with the same words. Nothing clinical is
decided here: the values come from the Assessment (and its optional advice fields) and the
thresholds from the knowledge data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from trdstage.domain.advice import AlertSeverity
from trdstage.domain.patient import Patient
from trdstage.domain.results import Assessment
from trdstage.knowledge import load_knowledge
from trdstage.report.charts import symptom_scales
from trdstage.report.text import ROMAN

Audience = Literal["clinician", "patient"]
AUDIENCES: tuple[Audience, ...] = ("clinician", "patient")

NOT_AVAILABLE = ("Not available: this assessment was produced without the advice step "
                 "(next steps, alerts, checklist and monitoring are filled by it).")
DETAILED_OPTIONS = 10
SEVERITY_ORDER = {s: i for i, s in enumerate(AlertSeverity)}
_CITED = re.compile(r"^\[([^\]]+)\]\s*(.*)$", re.S)


class References:
    """Source keys in order of first use, with their full citation, for the closing list."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add_key(self, key: str) -> str:
        if key not in self.items:
            knowledge = load_knowledge()
            self.items[key] = knowledge.cite(key) if key in knowledge.sources else f"[{key}]"
        return key

    def add_cited(self, text: str) -> str:
        """A resolved citation '[key] citation (tag)' -> its key (kept whole if unkeyed)."""
        match = _CITED.match(text)
        if match is None:
            key = f"ref-{len(self.items) + 1}"
            self.items.setdefault(key, text)
            return key
        self.items.setdefault(match.group(1), text)
        return match.group(1)

    def keys(self, keys: list[str], cited: list[str]) -> list[str]:
        """Keys of an item that has source keys, resolved citations, or both."""
        out = [self.add_key(k) for k in keys]
        if not out:
            out = [self.add_cited(c) for c in cited]
        return out


@dataclass
class StagingRow:
    name: str
    result: str
    reasons: list[str]
    sources: list[str]


@dataclass
class Row:
    """A generic table row: cells, optional detail lines under it, and a CSS/PDF tone."""

    cells: list[str]
    details: list[str] = field(default_factory=list)
    tone: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass
class Option:
    rank: int
    label: str
    category: str
    rationale: list[str]
    dose: str | None
    grades: list[str]
    design_basis: str | None
    previously_tried: str | None
    blocked: str | None
    alerts: list[str]
    pharmacogenomics: list[str]
    sources: list[str]
    grades_short: str = ""


@dataclass
class ClinicianReport:
    title: str
    patient_line: str
    episode_line: str
    disclaimer: str
    headline: list[tuple[str, str]]
    staging: list[StagingRow]
    trials: list[Row]
    ect: list[Row]
    courses: list[Row]
    scales: list[str]
    scale_notes: list[str]
    advice_ran: bool
    alerts: list[Row]
    options: list[Option]
    more_options: list[Option]
    checklist: list[Row]
    monitoring: list[Row]
    monitoring_trials: list[Row]
    monitoring_notes: list[str]
    caveats: list[tuple[str, list[str]]]
    warnings: list[str]
    references: list[tuple[str, str]]
    not_available: str = NOT_AVAILABLE


def _words(value: str) -> str:
    return value.replace("_", " ")


def _age(patient: Patient, on: date) -> int | None:
    b = patient.birth_date
    if b is None:
        return None
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def headline(a: Assessment) -> list[tuple[str, str]]:
    s = a.staging
    if s.maudsley.score is not None:
        msm = f"{s.maudsley.score} ({s.maudsley.band})"
    else:
        msm = "not computable" if s.maudsley.counted else "not applicable"
    reg = "met" if s.regulatory.met else "not met"
    if s.regulatory.failed_agents:
        reg += f" ({', '.join(s.regulatory.failed_agents)})"
    return [
        (s.thase_rush.name, f"Stage {ROMAN[s.thase_rush.stage]}: {s.thase_rush.stage_label}"),
        (s.mgh.name, f"Score {s.mgh.score:g}"),
        (s.maudsley.name, msm),
        (s.european.name, s.european.category
         + (f" (failed trials {s.european.failed_trials})")),
        (s.regulatory.name, reg + (f", first met {s.regulatory.first_met.isoformat()}"
                                   if s.regulatory.first_met else "")),
    ]


def advice_ran(a: Assessment) -> bool:
    """The advice step always fills the checklist; recommendations alone also count."""
    return bool(a.reassessment or a.recommendations)


def build_clinician(patient: Patient, a: Assessment) -> ClinicianReport:
    refs = References()
    knowledge = load_knowledge()
    ep = a.episode
    age = _age(patient, a.as_of)
    patient_line = (f"Patient {a.patient_id}" + (f", {age} years" if age is not None else "")
                    + (f", {patient.sex.value}" if patient.sex.value != "unknown" else "")
                    + f". Assessed as of {a.as_of.isoformat()} under policy '{a.policy}'.")
    episode_line = (f"Current episode from {ep.onset.isoformat()} ({ep.duration_months:g} months)"
                    f", severity {ep.severity.value if ep.severity else 'not recorded'}"
                    + (", psychotic features" if ep.psychotic_features else "")
                    + (f"; flags: {', '.join(_words(f) for f in ep.flags)}" if ep.flags else "")
                    + ".")
    staging = []
    heads = dict(headline(a))
    for result in (a.staging.thase_rush, a.staging.mgh, a.staging.maudsley, a.staging.european,
                   a.staging.regulatory):
        staging.append(StagingRow(result.name, heads[result.name], list(result.reasons),
                                  [refs.add_cited(s) for s in result.sources]))

    trials = []
    for t in a.trials:
        end = "ongoing" if t.ongoing else (t.end.isoformat() if t.end else "?")
        dose = (f"{t.max_daily_dose_mg:g}" if t.max_daily_dose_mg is not None else "?") + (
            f" (min {t.min_adequate_dose_mg:g})" if t.min_adequate_dose_mg is not None else "")
        tone = "failed" if t.failed else ("muted" if not t.in_scope else "")
        trials.append(Row(
            [t.id, ", ".join(t.agents), t.mechanism_label or "?", f"{t.start.isoformat()} –\n{end}",
             f"{t.weeks:g}", dose, t.adherence.value,
             "yes" if t.adequate else "no", _words(t.outcome.value)
             + (" (ratings)" if t.outcome_basis == "ratings" else ""),
             ("yes" if t.failed else "no") + ("" if t.in_scope else ", out of scope")],
            details=list(t.reasons),
            tone=tone))
    ect = [Row([c.id, f"{c.start.isoformat()} –\n{c.end.isoformat() if c.end else '?'}",
                c.laterality.value, str(c.sessions) if c.sessions is not None else "?",
                _words(c.outcome.value), ("yes" if c.failed else "no")
                + ("" if c.in_scope else ", out of scope")],
               details=list(c.reasons), tone="failed" if c.failed else "") for c in a.ect]
    courses = [Row([c.id, c.kind.value + (f" ({c.modality})" if c.modality else ""),
                    f"{c.start.isoformat()} –\n{c.end.isoformat() if c.end else 'ongoing'}",
                    str(c.sessions) if c.sessions is not None else "",
                    _words(c.outcome.value) + ("" if c.in_scope else ", out of scope")])
               for c in a.courses]

    scales = symptom_scales(patient, a)
    scale_notes = []
    for sid in scales:
        spec = knowledge.scales[sid]
        keys = [refs.add_key(k) for k in dict.fromkeys(
            (spec.response_source, spec.remission_source, spec.bands_source))]
        scale_notes.append(
            f"{sid}: response = reduction of at least {spec.response_min_reduction_pct:g} % "
            f"from the episode's first reading (the baseline drawn); remission = total "
            f"{spec.remission.op} {spec.remission.value:g}; shading = severity bands "
            f"[{', '.join(keys)}].")

    alerts = [Row([al.severity.value, al.message], details=list(al.evidence),
                  tone=al.severity.value, sources=refs.keys(al.source_keys, al.sources))
              for al in sorted(a.alerts, key=lambda x: SEVERITY_ORDER[x.severity])]

    options = []
    for r in sorted(a.recommendations, key=lambda r: r.rank):
        options.append(Option(
            rank=r.rank, label=r.label, category=_words(r.category.value),
            rationale=list(r.rationale),
            dose=(f"{r.dose_range.text} [{refs.add_key(r.dose_range.source_key)}]"
                  if r.dose_range else None),
            grades=[f"{g.guideline}: {g.grade}" + (f" ({g.note})" if g.note else "")
                    + f" [{refs.add_key(g.source_key)}]" for g in r.grades],
            design_basis=r.design_basis,
            previously_tried=(f"Already used ({', '.join(r.previously_tried.ids)}): "
                              f"{r.previously_tried.summary}" if r.previously_tried else None),
            blocked=(r.blocked_reason or "blocked") if r.blocked else None,
            alerts=[f"{al.severity.value}: {al.message} "
                    f"[{', '.join(refs.keys(al.source_keys, al.sources))}]" for al in r.alerts],
            pharmacogenomics=[
                f"{p.drug} ({', '.join(f'{u.gene} {u.phenotype}' for u in p.phenotypes)}): "
                f"{p.recommendation}" + (f" (CPIC strength: {p.strength})" if p.strength else "")
                + (f" [{', '.join(refs.keys(p.source_keys, p.sources))}]"
                   if p.source_keys or p.sources else "")
                for p in r.pharmacogenomics],
            sources=refs.keys(r.source_keys, r.sources),
            grades_short="; ".join(f"{g.guideline}: {g.grade}" for g in r.grades)))
    # The first options (and every blocked one, whose reason must show) in full; the rest as
    # one line each, so the printed report stays readable. The JSON keeps everything.
    detailed = [o for i, o in enumerate(options) if i < DETAILED_OPTIONS or o.blocked]
    more = [o for i, o in enumerate(options) if not (i < DETAILED_OPTIONS or o.blocked)]

    checklist = [Row([c.domain.replace("_", " "), c.check,
                      "found" if c.status.value == "found" else "to check"],
                     details=list(c.evidence), tone=c.status.value,
                     sources=refs.keys(c.source_keys, c.sources)) for c in a.reassessment]

    mon = a.monitoring
    monitoring = []
    for s in mon.scales:
        keys = [refs.add_cited(x) for x in s.sources]
        monitoring.append(Row(
            [s.scale, f"{s.baseline:g}" if s.baseline is not None else "",
             f"{s.latest:g}" if s.latest is not None else "",
             f"{s.reduction_pct:.0f} %" if s.reduction_pct is not None else "",
             _yes(s.response), _yes(s.remission), _words(s.latest_band or "")],
            sources=keys))
    monitoring_trials = [Row(
        [tr.trial_id, tr.label, tr.scale, f"{tr.baseline:g} ({tr.baseline_date.isoformat()})",
         f"{tr.endpoint:g} ({tr.endpoint_date.isoformat()})", f"{tr.reduction_pct:.0f} %",
         _yes(tr.response), _yes(tr.remission), _yes(tr.early_improvement)])
        for tr in mon.trials]

    caveats = []
    for result in (a.staging.thase_rush, a.staging.mgh, a.staging.maudsley, a.staging.european,
                   a.staging.regulatory):
        if result.caveats:
            caveats.append((result.name, list(result.caveats)))
    warnings = [(f"{w.where}: " if w.where else "") + w.message for w in a.warnings]
    return ClinicianReport(
        title=f"TRD staging and decision-support report: {a.patient_id}",
        patient_line=patient_line, episode_line=episode_line, disclaimer=a.disclaimer,
        headline=headline(a), staging=staging, trials=trials, ect=ect, courses=courses,
        scales=scales, scale_notes=scale_notes, advice_ran=advice_ran(a), alerts=alerts,
        options=detailed, more_options=more, checklist=checklist, monitoring=monitoring,
        monitoring_trials=monitoring_trials, monitoring_notes=list(mon.notes), caveats=caveats,
        warnings=warnings, references=list(refs.items.items()))


def _yes(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


TRIAL_COLUMNS = ["Trial", "Agent", "Class", "Period", "Weeks", "Max mg/day", "Adherence",
                 "Adequate", "Outcome", "Failed"]
ECT_COLUMNS = ["ECT", "Period", "Laterality", "Sessions", "Outcome", "Failed"]
COURSE_COLUMNS = ["Course", "Kind", "Period", "Sessions", "Outcome"]
CHECKLIST_COLUMNS = ["Domain", "Check", "Status"]
MONITORING_COLUMNS = ["Scale", "Baseline", "Latest", "Reduction", "Response", "Remission",
                      "Latest band"]
MONITORING_TRIAL_COLUMNS = ["Trial", "Treatment", "Scale", "Baseline", "Endpoint", "Reduction",
                            "Response", "Remission", "Early improvement"]
