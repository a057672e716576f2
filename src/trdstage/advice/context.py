"""What every advice module reads: the patient and the staged assessment, pre-digested once
(age, flags, current and recently stopped drugs, tried agents, resolved phenotypes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from trdstage.domain import DoseStep, Patient
from trdstage.domain.results import Assessment, TrialVerdict
from trdstage.knowledge.advice_schema import AdviceKnowledge
from trdstage.knowledge.co_medications import co_medication_brands, resolve_name


@dataclass(frozen=True)
class DrugUse:
    """One drug in the record, current or stopped."""

    name: str
    role: str  # antidepressant | augmenter | rapid_acting | other
    dose_mg: float | None
    start: date | None
    end: date | None  # None: ongoing at the as-of date
    where: str


@dataclass
class AdviceContext:
    patient: Patient
    assessment: Assessment
    knowledge: AdviceKnowledge
    as_of: date
    age: int | None
    flags: set[str]
    current: list[DrugUse] = field(default_factory=list)
    stopped: list[DrugUse] = field(default_factory=list)
    phenotypes: dict[str, tuple[str, str]] = field(default_factory=dict)  # gene -> (code, basis)
    pgx_notes: list[str] = field(default_factory=list)
    unresolved_other: list[str] = field(default_factory=list)  # other_medications not known

    @property
    def trials_in_scope(self) -> list[TrialVerdict]:
        return [t for t in self.assessment.trials if t.in_scope]

    @property
    def failed_trials(self) -> list[TrialVerdict]:
        return [t for t in self.assessment.trials if t.in_scope and t.failed]

    def cite(self, keys: list[str]) -> list[str]:
        return [self.knowledge.cite(k) for k in dict.fromkeys(keys)]

    def current_names(self) -> list[str]:
        return list(dict.fromkeys(d.name for d in self.current))


def _age(birth: date | None, on: date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _last_step(steps: list[DoseStep], as_of: date) -> DoseStep | None:
    kept = [s for s in steps if s.start <= as_of]
    return max(kept, key=lambda s: s.start) if kept else None


def _role(name: str, k: AdviceKnowledge) -> str:
    if name in k.base.antidepressants:
        return "antidepressant"
    if name in k.base.augmenters:
        return "augmenter"
    if name in k.base.rapid_acting:
        return "rapid_acting"
    return "other"


def resolve_phenotypes(patient: Patient, k: AdviceKnowledge) -> tuple[
        dict[str, tuple[str, str]], list[str]]:
    """Gene -> (phenotype code, basis). A phenotype given wins over an activity score; a diplotype
    alone is not interpreted (no allele-function table in the knowledge) and is reported."""
    out: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    for r in patient.pharmacogenomics:
        if r.phenotype is not None:
            out[r.gene] = (r.phenotype, "phenotype given")
        elif r.activity_score is not None:
            for band in k.cpic.cyp2d6_activity_score:
                if band.max_score is None or r.activity_score <= band.max_score:
                    out[r.gene] = (band.phenotype, f"activity score {r.activity_score:g} -> "
                                   f"{band.phenotype} (CPIC bands)")
                    break
        else:
            notes.append(f"{r.gene} diplotype {r.diplotype} recorded without a phenotype: not "
                         "interpreted (trdstage holds no allele-function table); add the "
                         "laboratory's phenotype")
    return out, notes


def resolve_other_medication(name: str, k: AdviceKnowledge) -> str | None:
    """A co-medication given by generic, brand or with a strength ("Tramadol 50 mg", "Ultram",
    "Zyvox") -> the generic the interaction rules check; None when no rule or formulary entry
    knows it."""
    known = frozenset(a for g in k.safety.groups.values() for a in g.agents)
    aliases = dict(co_medication_brands())
    words = " ".join(name.lower().split())
    match = k.base.resolve(words)
    if match is not None:
        return match.name
    found = resolve_name(name, known, aliases)
    if found is not None:
        return found
    for token_run in (words.split()[:n] for n in (3, 2, 1)):
        match = k.base.resolve(" ".join(token_run))
        if match is not None:
            return match.name
    return None


def build_context(patient: Patient, assessment: Assessment, k: AdviceKnowledge) -> AdviceContext:
    as_of = assessment.as_of
    flags = set(assessment.episode.flags) | set(patient.flags)
    if assessment.episode.psychotic_features:
        flags.add("psychotic_features")
    ctx = AdviceContext(patient=patient, assessment=assessment, knowledge=k, as_of=as_of,
                        age=_age(patient.birth_date, as_of), flags=flags)
    for e_i, episode in enumerate(patient.episodes):
        for m_i, regimen in enumerate(episode.medications):
            where = regimen.id or f"episodes[{e_i}].medications[{m_i}]"
            records = [(regimen.agent, regimen.steps, where)]
            records += [(a.agent, a.steps, f"{where}.added[{a_i}]")
                        for a_i, a in enumerate(regimen.added)]
            for name, steps, rec in records:
                last = _last_step(steps, as_of)
                if last is None:
                    continue
                first = min(s.start for s in steps)
                ongoing = last.end is None or last.end > as_of
                use = DrugUse(name=name, role=_role(name, k), dose_mg=last.daily_dose_mg,
                              start=first, end=None if ongoing else last.end, where=rec)
                (ctx.current if ongoing else ctx.stopped).append(use)
        for c_i, course in enumerate(episode.courses):
            if course.kind.value in ("esketamine", "ketamine") and course.start <= as_of:
                ongoing = course.end is None or course.end > as_of
                use = DrugUse(name=course.kind.value, role="rapid_acting", dose_mg=None,
                              start=course.start, end=None if ongoing else course.end,
                              where=course.id or f"episodes[{e_i}].courses[{c_i}]")
                (ctx.current if ongoing else ctx.stopped).append(use)
    for i, name in enumerate(patient.other_medications):
        resolved = resolve_other_medication(name, k)
        if resolved is None:
            ctx.unresolved_other.append(name)
        ctx.current.append(DrugUse(name=resolved or " ".join(name.lower().split()), role="other",
                                   dose_mg=None, start=None, end=None,
                                   where=f"other_medications[{i}] ({name})"))
    ctx.phenotypes, ctx.pgx_notes = resolve_phenotypes(patient, k)
    return ctx
