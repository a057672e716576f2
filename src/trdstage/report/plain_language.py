"""The patient summary: short sentences, no jargon, what the stage means and what the options are.

Every sentence comes from knowledge/data/plain_language.yaml (each block with a source key that
must resolve in sources.yaml), filled with the patient's own record: medicine names, dates and
the staging results. Option names from the advice step pass through the `plain_terms` map so a
clinical word (augmentation, MAOI, XR ...) never reaches the patient untranslated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from trdstage.domain.advice import AlertSeverity, OptionCategory
from trdstage.domain.enums import Outcome
from trdstage.domain.patient import Patient
from trdstage.domain.results import Assessment
from trdstage.knowledge import KnowledgeError, load_knowledge
from trdstage.report.charts import symptom_scales

DATA = resources.files("trdstage.knowledge") / "data" / "plain_language.yaml"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThaseRushWords(_Spec):
    source: str
    heading: str
    stages: dict[int, str]


class RegulatoryWords(_Spec):
    sources: list[str]
    met: str
    not_met: str


class MaudsleyWords(_Spec):
    source: str
    text: str
    bands: dict[str, str]


class PlainLanguage(_Spec):
    title: str
    intro: str
    intro_source: str
    disclaimer: list[str]
    disclaimer_source: str
    safety: str
    safety_source: str
    urgent: str
    urgent_source: str
    outcomes: dict[Outcome, str]
    outcomes_source: str
    not_adequate: str
    not_adequate_source: str
    ongoing: str
    ongoing_source: str
    stage_intro: str
    stage_intro_source: str
    thase_rush: ThaseRushWords
    regulatory: RegulatoryWords
    maudsley: MaudsleyWords
    categories_source: str
    categories: dict[OptionCategory, str]
    options_intro: str
    options_none: str
    blocked_note: str
    plain_terms: dict[str, str]
    plain_terms_source: str
    symptoms_intro: str
    symptoms_source: str

    def source_keys(self) -> list[str]:
        keys = [v for k, v in self if k.endswith("_source") and isinstance(v, str)]
        keys += [self.thase_rush.source, self.maudsley.source, *self.regulatory.sources]
        return keys


@cache
def load_plain_language() -> PlainLanguage:
    """Parse and check the wording file: every stage 0-5 worded, every category worded, every
    source key known."""
    try:
        spec = PlainLanguage.model_validate(yaml.safe_load(DATA.read_text(encoding="utf-8")))
    except Exception as exc:  # pydantic or YAML error: name the file
        raise KnowledgeError(f"plain_language.yaml: {exc}") from exc
    known = load_knowledge().sources
    missing = sorted({k for k in spec.source_keys() if k not in known})
    if missing:
        raise KnowledgeError(f"plain_language.yaml: unknown source key(s): {', '.join(missing)}")
    if set(spec.thase_rush.stages) != set(range(6)):
        raise KnowledgeError("plain_language.yaml: thase_rush.stages must word stages 0 to 5")
    if set(spec.categories) != set(OptionCategory):
        raise KnowledgeError("plain_language.yaml: categories must word every option category")
    if set(spec.outcomes) != set(Outcome):
        raise KnowledgeError("plain_language.yaml: outcomes must word every outcome")
    return spec


def plainify(text: str, words: PlainLanguage | None = None) -> str:
    """Swap clinical terms for plain ones (whole words, any case), longest term first."""
    spec = words or load_plain_language()
    for term in sorted(spec.plain_terms, key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(term)}(?![\w-])", spec.plain_terms[term], text,
                      flags=re.IGNORECASE)
    return text


MAX_NAMES = 3  # per kind of option: the top-ranked few; the clinician report has the full list
_PARENS = re.compile(r"\s*\([^()]*\)")
_ACRONYM = re.compile(r"\b[A-Z]{2,}[A-Za-z0-9/]*\b")


def patient_option_name(label: str, words: PlainLanguage | None = None) -> str | None:
    """An option's label for a patient: bracketed clinical detail dropped, clinical words
    swapped for plain ones; None when an unexplained abbreviation would remain (the kind's
    plain sentence then stands alone)."""
    bare = _PARENS.sub("", label).strip()
    spec = words or load_plain_language()
    known = {t.lower() for t in spec.plain_terms}
    if any(m.group(0).lower() not in known for m in _ACRONYM.finditer(bare)):
        return None
    return plainify(bare, spec) or None


@dataclass
class PatientOption:
    category: str
    explanation: str
    names: list[str]


@dataclass
class PatientSummary:
    title: str
    intro: str
    disclaimer: list[str]
    safety: str
    urgent: str | None
    patient_line: str
    treatments: list[str]
    stage_intro: str
    stage_heading: str
    stage_number: int
    stage_text: str
    definition_text: str
    maudsley_text: str | None
    symptoms_intro: str | None
    symptom_lines: list[str]
    options_intro: str
    options: list[PatientOption] = field(default_factory=list)
    options_none: str = ""
    blocked_note: str | None = None


def _month(day: date) -> str:
    return day.strftime("%B %Y")


def _sentence(name: str, start: date, end: date | None, ongoing: bool, outcome: Outcome,
              adequate: bool | None, words: PlainLanguage) -> str:
    when = f"from {_month(start)}" + (f" to {_month(end)}" if end is not None and not ongoing
                                       else "")
    text = f"{name[:1].upper()}{name[1:]} ({when}): {words.outcomes[outcome]}."
    if ongoing:
        text += " " + words.ongoing
    if adequate is False:
        text += " " + words.not_adequate
    return text


def build_patient(patient: Patient, a: Assessment) -> PatientSummary:
    words = load_plain_language()
    dated: list[tuple[date, str]] = []
    for t in a.trials:
        if not t.in_scope:
            continue
        dated.append((t.start, _sentence(" and ".join(t.agents), t.start, t.end, t.ongoing,
                                         t.outcome, t.adequate, words)))
    for e in a.ect:
        if e.in_scope:
            dated.append((e.start, _sentence("electroconvulsive therapy (ECT)", e.start, e.end,
                                             e.end is None, e.outcome, None, words)))
    for c in a.courses:
        if c.in_scope:
            name = plainify(c.modality) if c.kind.value == "psychotherapy" and c.modality else \
                plainify({"psychotherapy": "talking therapy", "rtms": "rTMS", "itbs": "iTBS",
                          "vns": "VNS", "dbs": "DBS"}.get(c.kind.value, c.kind.value))
            dated.append((c.start, _sentence(name, c.start, c.end, c.end is None, c.outcome,
                                             None, words)))
    treatments = [text for _, text in sorted(dated, key=lambda x: x[0])]
    s = a.staging
    stage = s.thase_rush.stage
    maud = None
    if s.maudsley.band is not None:
        maud = words.maudsley.text.format(
            band=words.maudsley.bands.get(s.maudsley.band, s.maudsley.band))
    symptom_lines = []
    scales = symptom_scales(patient, a)
    episode = patient.current_episode(a.as_of)
    for sid in scales:
        pts = sorted((r for r in episode.ratings if r.scale.value == sid and r.date <= a.as_of),
                     key=lambda r: r.date)
        first, last = pts[0], pts[-1]
        symptom_lines.append(f"{sid}: your first score was {first.total:g} "
                             f"({_month(first.date)}). Your latest score was {last.total:g} "
                             f"({_month(last.date)}).")
    options: dict[OptionCategory, PatientOption] = {}
    blocked = False
    for r in sorted(a.recommendations, key=lambda r: r.rank):
        if r.blocked:
            blocked = True
            continue
        opt = options.setdefault(r.category, PatientOption(
            r.category.value, words.categories[r.category], []))
        # An option already tried is not named to the patient as if it were new (the
        # clinician report shows it with its earlier use).
        shown = None if r.previously_tried else patient_option_name(r.label, words)
        if shown and shown not in opt.names and len(opt.names) < MAX_NAMES:
            opt.names.append(shown)
    urgent = any(al.severity is AlertSeverity.urgent for al in a.alerts)
    return PatientSummary(
        title=words.title, intro=words.intro, disclaimer=list(words.disclaimer),
        safety=words.safety, urgent=words.urgent if urgent else None,
        patient_line=f"Record {a.patient_id}, as of {a.as_of.strftime('%d %B %Y')}.",
        treatments=treatments, stage_intro=words.stage_intro,
        stage_heading=words.thase_rush.heading, stage_number=stage,
        stage_text=words.thase_rush.stages[stage],
        definition_text=words.regulatory.met if s.regulatory.met else words.regulatory.not_met,
        maudsley_text=maud, symptoms_intro=words.symptoms_intro if scales else None,
        symptom_lines=symptom_lines, options_intro=words.options_intro,
        options=list(options.values()), options_none=words.options_none,
        blocked_note=words.blocked_note if blocked else None)
