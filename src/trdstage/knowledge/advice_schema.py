"""Typed shape of the decision-support knowledge files (options, safety, CPIC, reassessment,
monitoring) and their loader. Kept apart from schema.py/loader.py so the staging knowledge and the
advice knowledge evolve independently; the loader helpers are reused by import.

Each guideline keeps its own grade vocabulary (a discriminated union on `guideline`), so a CANMAT
line never turns into a NICE verb or a CPIC strength.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from trdstage.knowledge.loader import (
    Knowledge,
    KnowledgeError,
    load_data_file,
    load_knowledge,
)
from trdstage.knowledge.schema import KnowledgeModel

Category = Literal["switch", "optimize", "augment", "combine", "neuromodulation", "rapid_acting",
                   "psychotherapy", "lifestyle", "digital", "investigational"]


# --------------------------------------------------------------------------- options.yaml


class CanmatGrade(KnowledgeModel):
    """CANMAT 2023: line of treatment plus level of evidence (1-4)."""

    guideline: Literal["canmat_2023"]
    line: Literal["1st", "2nd", "3rd", "investigational", "not recommended"]
    level: int | None = Field(default=None, ge=1, le=4)
    level_note: str | None = None
    context: str | None = None
    source: str


class NiceGrade(KnowledgeModel):
    """NICE: the recommendation verb ('offer', 'consider'), or a technology appraisal decision."""

    guideline: Literal["nice_ng222", "nice_ta854", "nice_ta59"]
    verb: Literal["offer", "consider", "not recommended", "do not use routinely", "option listed",
                  "specialist setting"]
    rec: str | None = None
    context: str | None = None
    source: str


class VadodGrade(KnowledgeModel):
    """VA/DoD 2022: GRADE direction x strength. Strength codes were not verified, so only the
    direction read in summaries is stored and the strength stays explicit as unverified."""

    guideline: Literal["vadod_2022"]
    direction: Literal["for", "against", "research settings only"]
    strength: Literal["Strong", "Weak", "not verified"] = "not verified"
    context: str | None = None
    source: str


class LabelGrade(KnowledgeModel):
    """A regulator's label or approval status (FDA, EMA)."""

    guideline: Literal["label"]
    authority: str
    status: str
    source: str


Grade = Annotated[CanmatGrade | NiceGrade | VadodGrade | LabelGrade,
                  Field(discriminator="guideline")]


class DoseSpec(KnowledgeModel):
    low: float | None = None
    high: float | None = None
    unit: str = "mg/day"
    text: str
    source: str


class SwitchDrug(KnowledgeModel):
    """CANMAT Table 3.3 line, level and daily dose range of one antidepressant."""

    line: Literal["1st", "2nd", "3rd"]
    level: int = Field(ge=1, le=4)
    low: float
    high: float
    label: str | None = None  # e.g. "venlafaxine-XR"


class SurfaceRule(KnowledgeModel):
    """When the option surfaces: the project's stage backbone (design, tag D) plus sourced gates."""

    earliest_stage: int = Field(ge=0, le=5)
    earliest_stage_if_partial_response: int | None = Field(default=None, ge=0, le=5)
    any_stage_if: list[str] = Field(default_factory=list, description="Patient or episode flags "
                                    "(or 'psychotic_features', 'severe') that surface it at any "
                                    "stage.")
    any_stage_if_severe: list[str] = Field(default_factory=list, description="Flags that "
                                           "surface it at any stage when the episode is severe.")
    min_failed_trials: int | None = None
    min_failed_trials_source: str | None = None
    min_failed_trials_note: str | None = None
    source: str


class OptionSpec(KnowledgeModel):
    id: str
    category: Category
    label: str
    mode: Literal["replace", "add", "modify", "procedure"]
    agents: list[str] = Field(default_factory=list, description="Drugs the option introduces.")
    course_kinds: list[str] = Field(default_factory=list, description="Course kinds (or 'ect') "
                                    "that count as prior use.")
    modalities: list[str] = Field(default_factory=list, description="Psychotherapy modalities "
                                  "(case-insensitive) that count as prior use.")
    dose: DoseSpec | None = None
    grades: list[Grade] = Field(default_factory=list)
    sources: list[str] = Field(min_length=1)
    surface: SurfaceRule
    note: str | None = None


class OptionsFile(KnowledgeModel):
    switch_doses: dict[str, SwitchDrug]
    switch_doses_source: str
    options: list[OptionSpec]


# --------------------------------------------------------------------------- safety.yaml


class DrugGroup(KnowledgeModel):
    label: str
    mechanisms: list[str] = Field(default_factory=list)
    agents: list[str] = Field(default_factory=list)
    augmenter_groups: list[str] = Field(default_factory=list)
    except_agents: list[str] = Field(default_factory=list)
    source: str


Severity = Literal["contraindicated", "warning", "info"]


class CombinationRule(KnowledgeModel):
    code: str
    a: str
    b: str
    severity: Severity
    min_age: int | None = None
    message: str
    sources: list[str] = Field(min_length=1)


class WashoutRule(KnowledgeModel):
    code: str
    from_group: str
    to_group: str
    days: int = Field(gt=0)
    text: str
    sources: list[str] = Field(min_length=1)


class FlagRule(KnowledgeModel):
    code: str
    group: str
    flags: list[str] = Field(min_length=1)
    severity: Severity
    message: str
    sources: list[str] = Field(min_length=1)
    # a switch candidate this rule fires for is listed after the other candidates of the option
    list_last: bool = False


class AgeRule(KnowledgeModel):
    code: str
    group: str
    max_age: int | None = None
    min_age: int | None = None
    severity: Severity
    message: str
    sources: list[str] = Field(min_length=1)


class CeilingCondition(KnowledgeModel):
    max_mg: float
    min_age: int | None = None
    over_age: int | None = None
    phenotypes: dict[str, list[str]] = Field(default_factory=dict)
    flags: list[str] = Field(default_factory=list)
    with_group: str | None = None
    why: str
    sources: list[str] = Field(min_length=1)


class CeilingRule(KnowledgeModel):
    code: str
    agent: str
    max_mg: float
    why: str
    sources: list[str] = Field(min_length=1)
    conditions: list[CeilingCondition] = Field(default_factory=list)


class MonitoringRule(KnowledgeModel):
    code: str
    group: str
    severity: Severity = "info"
    message: str
    sources: list[str] = Field(min_length=1)


class SafetyFile(KnowledgeModel):
    groups: dict[str, DrugGroup]
    combinations: list[CombinationRule]
    washouts: list[WashoutRule]
    flag_rules: list[FlagRule]
    age_rules: list[AgeRule]
    ceilings: list[CeilingRule]
    monitoring: list[MonitoringRule]


# --------------------------------------------------------------------------- cpic.yaml


Strength = Literal["Strong", "Moderate", "Optional", "No recommendation"]


class ScoreStrength(KnowledgeModel):
    """CPIC's strength for CYP2D6 activity scores up to `max_score` (inclusive)."""

    max_score: float
    strength: Strength


class CpicCell(KnowledgeModel):
    text: str
    # None only where CPIC's strength depends on the CYP2D6 activity score (listed below)
    strength: Strength | None
    activity_score_strength: list[ScoreStrength] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _strength_given(self) -> Self:
        if self.strength is None and not self.activity_score_strength:
            raise ValueError("strength: required unless activity_score_strength is given")
        return self


class CpicDrug(KnowledgeModel):
    genes: list[str] = Field(min_length=1, max_length=2)
    source: str
    pharmgkb: str | None = None
    # one gene: phenotype -> cell; two genes: phenotype(gene 1) -> phenotype(gene 2) -> cell
    rows: dict[str, CpicCell] = Field(default_factory=dict)
    table: dict[str, dict[str, CpicCell]] = Field(default_factory=dict)
    # two genes: CPIC's recommendation when only this gene is recorded (phenotype -> cell)
    single_gene: dict[str, dict[str, CpicCell]] = Field(default_factory=dict)
    codes: dict[str, str] = Field(default_factory=dict)
    note: str | None = None


class ActivityBand(KnowledgeModel):
    max_score: float | None
    phenotype: str


class CpicFile(KnowledgeModel):
    genes: dict[str, list[str]]
    likely: dict[str, str]
    phenotype_labels: dict[str, str]
    cyp2d6_activity_score: list[ActivityBand]
    cyp2d6_activity_score_source: str
    drugs: dict[str, CpicDrug]
    shared_codes: dict[str, str] = Field(default_factory=dict)
    no_recommendation: list[str]
    no_recommendation_source: str
    tca_note: str = ""


# --------------------------------------------------------------------------- reassessment.yaml


class ChecklistSpec(KnowledgeModel):
    id: str
    domain: str
    check: str
    flags: list[str] = Field(default_factory=list, description="Patient/episode flags that "
                             "count as found.")
    detector: Literal["inadequate_trials", "adherence", "psychotic_features", "interactions",
                      "pharmacokinetics", "side_effects", "none"] = "none"
    sources: list[str] = Field(min_length=1)


class FlagSpec(KnowledgeModel):
    meaning: str


class ReassessmentFile(KnowledgeModel):
    flags: dict[str, FlagSpec]
    flags_source: str
    items: list[ChecklistSpec]


# --------------------------------------------------------------------------- monitoring.yaml


class WorseningRule(KnowledgeModel):
    code: str
    scale: str
    min_rise: float
    min_days_between: int = Field(ge=0)
    message: str
    sources: list[str] = Field(min_length=1)


class ItemAlertRule(KnowledgeModel):
    code: str
    scale: str
    item: int = Field(ge=1)
    above: int
    message: str
    sources: list[str] = Field(min_length=1)


class EarlyImprovementRule(KnowledgeModel):
    min_reduction_pct: float
    window_days: tuple[int, int]
    message: str
    sources: list[str] = Field(min_length=1)


class MonitoringFile(KnowledgeModel):
    worsening: list[WorseningRule]
    item_alerts: list[ItemAlertRule]
    early_improvement: EarlyImprovementRule
    baseline_window_days: int
    baseline_window_source: str


# --------------------------------------------------------------------------- loader


@dataclass(frozen=True)
class AdviceKnowledge:
    base: Knowledge
    options: OptionsFile
    safety: SafetyFile
    cpic: CpicFile
    reassessment: ReassessmentFile
    monitoring: MonitoringFile

    def cite(self, key: str) -> str:
        return self.base.cite(key)

    def option(self, option_id: str) -> OptionSpec:
        for o in self.options.options:
            if o.id == option_id:
                return o
        raise KeyError(option_id)




def _cross_check(k: AdviceKnowledge) -> None:
    base = k.base
    known_agents = {*base.antidepressants, *base.augmenters, *base.rapid_acting}
    ids = [o.id for o in k.options.options]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise KnowledgeError(f"options.yaml: duplicate option id(s): {', '.join(dupes)}")
    for name in k.options.switch_doses:
        if name not in base.antidepressants:
            raise KnowledgeError(f"options.yaml: switch_doses: {name!r} is not in the formulary")
    for i, o in enumerate(k.options.options):
        for agent in o.agents:
            if agent not in known_agents:
                raise KnowledgeError(f"options.yaml: options.{i} ({o.id}): unknown agent {agent!r}")
    groups = k.safety.groups
    for gname, group in groups.items():
        for m in group.mechanisms:
            if m not in base.classes:
                raise KnowledgeError(f"safety.yaml: groups.{gname}: unknown mechanism {m!r}")
    refs: list[tuple[str, str]] = []
    refs += [(f"combinations.{r.code}", g) for r in k.safety.combinations for g in (r.a, r.b)]
    refs += [(f"washouts.{r.code}", g) for r in k.safety.washouts
             for g in (r.from_group, r.to_group)]
    refs += [(f"flag_rules.{r.code}", r.group) for r in k.safety.flag_rules]
    refs += [(f"age_rules.{r.code}", r.group) for r in k.safety.age_rules]
    refs += [(f"monitoring.{r.code}", r.group) for r in k.safety.monitoring]
    refs += [(f"ceilings.{r.code}", c.with_group) for r in k.safety.ceilings
             for c in r.conditions if c.with_group]
    for where, ref in refs:
        if ref not in groups:
            raise KnowledgeError(f"safety.yaml: {where}: unknown group {ref!r}")
    vocabulary = set(k.reassessment.flags)
    flag_uses = [f for r in k.safety.flag_rules for f in r.flags]
    flag_uses += [f for o in k.options.options
                  for f in (*o.surface.any_stage_if, *o.surface.any_stage_if_severe)]
    flag_uses += [f for item in k.reassessment.items for f in item.flags]
    unknown = sorted({f for f in flag_uses if f not in vocabulary})
    if unknown:
        raise KnowledgeError(f"flag(s) not in reassessment.yaml flags: {', '.join(unknown)}")
    for drug, spec in k.cpic.drugs.items():
        for gene in spec.genes:
            if gene not in k.cpic.genes:
                raise KnowledgeError(f"cpic.yaml: drugs.{drug}: unknown gene {gene}")


@cache
def load_advice_knowledge() -> AdviceKnowledge:
    """Load, validate and cross-check the advice knowledge (cached)."""
    k = AdviceKnowledge(
        base=load_knowledge(),
        options=load_data_file("options.yaml", OptionsFile)[0],
        safety=load_data_file("safety.yaml", SafetyFile)[0],
        cpic=load_data_file("cpic.yaml", CpicFile)[0],
        reassessment=load_data_file("reassessment.yaml", ReassessmentFile)[0],
        monitoring=load_data_file("monitoring.yaml", MonitoringFile)[0],
    )
    _cross_check(k)
    return k


__all__ = ["AdviceKnowledge", "OptionSpec", "load_advice_knowledge"]
