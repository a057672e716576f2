"""The codes the FHIR adapter recognises, loaded from knowledge/data/fhir_codes.yaml.

Code holds the matching logic; every code, pattern and reading rule is data with a source key,
checked against sources.yaml at load (an unknown key fails loudly, as for the other knowledge
files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trdstage.knowledge import KnowledgeError
from trdstage.knowledge.loader import load_data_file
from trdstage.knowledge.value_sets import ValueSet, load_value_sets


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SystemKey = Literal["rxnorm", "atc", "snomed", "icd10cm", "icd10", "loinc", "cpt", "timing",
                    "project"]


class SystemSpec(_Model):
    url: str
    source: str


class Rule(_Model):
    """`means` when a coding of `system` has one of `codes` (or starts with a prefix), when a
    coding is in the published `value_set` (value_sets.yaml), or when no coding matched and a
    `text` pattern is found in code.text/coding.display."""

    means: str
    system: SystemKey | None = None
    value_set: str | None = None
    codes: list[str] = Field(default_factory=list)
    prefixes: list[str] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    source: str


class CodeMap(_Model):
    codes: dict[str, str]
    source: str


class NumberMap(_Model):
    codes: dict[str, float]
    source: str


class ItemList(_Model):
    codes: list[str] = Field(min_length=9, max_length=9)
    source: str


class LateralitySpec(_Model):
    snomed: dict[str, Literal["bilateral", "unilateral"]]
    snomed_source: str
    text: dict[Literal["bilateral", "unilateral"], list[str]]
    text_source: str


class Settings(_Model):
    session_gap_days: int = Field(ge=0)
    request_counts_refills: bool
    default_administrations_per_day: float = Field(gt=0)
    max_bundle_mb: float = Field(gt=0)
    max_server_mb: float = Field(gt=0)
    max_pages: int = Field(ge=1)
    source: str


class FhirCodesFile(_Model):
    project_base: str
    project_base_source: str
    systems: dict[SystemKey, SystemSpec]
    conditions: list[Rule]
    icd10cm_severity: CodeMap
    snomed_severity: CodeMap
    procedures: list[Rule]
    laterality: LateralitySpec
    observations: list[Rule]
    phq9_items: ItemList
    phq9_answers: NumberMap
    timing_per_day: NumberMap
    settings: Settings


@dataclass(frozen=True)
class Coding:
    """The parts of a FHIR Coding the matcher needs."""

    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True)
class FhirCodes:
    spec: FhirCodesFile
    urls: dict[str, str]  # system key -> URL ("project" included)
    value_sets: dict[str, ValueSet]

    @property
    def model_system(self) -> str:
        """The project CodeSystem of the staging models (output Observation.code)."""
        return f"{self.spec.project_base}/CodeSystem/staging-model"

    @property
    def scale_system(self) -> str:
        """The project CodeSystem for rating scales without a verified LOINC code."""
        return f"{self.spec.project_base}/CodeSystem/rating-scale"

    def extension(self, name: str) -> str:
        return f"{self.spec.project_base}/StructureDefinition/{name}"

    def system_key(self, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.rstrip("/")
        for key, known in self.urls.items():
            if known.rstrip("/") == url:
                return key
        return None

    def match(self, rules: list[Rule], codings: list[Coding], texts: list[str]) -> Rule | None:
        """The first rule whose codes match a coding; failing that, the first whose text
        patterns match (and whose exclusions do not)."""
        keyed = [(self.system_key(c.system), (c.code or "").strip()) for c in codings]
        for rule in rules:
            if rule.value_set is not None:
                vs = self.value_sets[rule.value_set]
                if any(vs.has(key, code) for key, code in keyed):
                    return rule
                continue
            if rule.system is None:
                continue
            for key, code in keyed:
                if key != rule.system or not code:
                    continue
                if code in rule.codes or any(code.upper().startswith(p.upper())
                                             for p in rule.prefixes):
                    return rule
        blob = " | ".join(t for t in texts if t).lower()
        if not blob:
            return None
        for rule in rules:
            if rule.text and any(re.search(p, blob, re.IGNORECASE) for p in rule.text) and not \
                    any(re.search(p, blob, re.IGNORECASE) for p in rule.exclude):
                return rule
        return None


@cache
def load_fhir_codes() -> FhirCodes:
    spec, _ = load_data_file("fhir_codes.yaml", FhirCodesFile)
    for group in (spec.conditions, spec.procedures, spec.observations):
        for rule in group:
            for pattern in (*rule.text, *rule.exclude):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise KnowledgeError(
                        f"fhir_codes.yaml: bad pattern {pattern!r}: {exc}") from exc
    value_sets = load_value_sets()
    for rule in spec.conditions:
        if rule.value_set is not None and rule.value_set not in value_sets:
            raise KnowledgeError(f"fhir_codes.yaml: conditions: unknown value set "
                                 f"{rule.value_set!r} (value_sets.yaml)")
    urls: dict[str, str] = {str(k): v.url for k, v in spec.systems.items()}
    codes = FhirCodes(spec=spec, urls=urls, value_sets=value_sets)
    urls["project"] = codes.scale_system
    return codes
