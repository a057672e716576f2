"""The small vocabulary a synthetic or test OMOP database carries: ingredients, drug products,
conditions, procedures and the PHQ-9, as `concept` and `concept_ancestor` rows.

Ingredient, condition, ECT and PHQ-9 concept ids are the verified ones of the knowledge data.
Drug products, CPT4 procedures and agents without a verified id get site-specific ids above two
billion (the OMOP range for local concepts); their names say they are synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import pyarrow as pa  # type: ignore[import-untyped]

from trdstage.cohort.omop_io import to_arrow
from trdstage.knowledge import load_knowledge
from trdstage.knowledge.omop_schema import load_omop_spec
from trdstage.knowledge.schema import Antidepressant, Augmenter

LOCAL_BASE = 2_000_000_000
VALID_START = date(1970, 1, 1)
VALID_END = date(2099, 12, 31)


@dataclass(frozen=True)
class Product:
    concept_id: int
    ingredient: str
    ingredient_concept_id: int
    strength_mg: float
    name: str


@dataclass(frozen=True)
class Vocabulary:
    ingredients: dict[str, int]  # agent -> ingredient concept id (formulary ids only)
    products: dict[str, list[Product]]  # agent -> products, ascending strength
    procedure_codes: dict[tuple[str, str], int]  # (vocabulary, code) -> local concept id

    def product_for(self, agent: str, dose_mg: float | None) -> Product:
        """The strongest product whose strength divides the dose (else the weakest)."""
        options = self.products[agent]
        if dose_mg:
            for p in reversed(options):
                if (dose_mg / p.strength_mg).is_integer():
                    return p
        return options[0]


def _strengths(agent: str) -> tuple[float, float]:
    k = load_knowledge()
    base: float | None = None
    if agent in k.antidepressants:
        base = k.antidepressants[agent].min_adequate_mg
    elif agent in k.augmenters:
        base = k.augmenters[agent].target_min_mg
    base = base or 10.0
    return (base / 2, base)


def _form(entry: Antidepressant | Augmenter) -> str:
    """The dose form named in a synthetic product: the form that counts where the formulary
    restricts the routes (transdermal selegiline), else an oral tablet."""
    routes = getattr(entry, "antidepressant_routes", [])
    return f"per 24 HR {routes[0]} system" if routes else "oral tablet"


@cache
def vocabulary() -> Vocabulary:
    k = load_knowledge()
    spec = load_omop_spec()
    ingredients: dict[str, int] = {}
    products: dict[str, list[Product]] = {}
    agents: list[Antidepressant | Augmenter] = [*k.antidepressants.values(),
                                                *k.augmenters.values()]
    for index, entry in enumerate(agents):
        if entry.omop_concept_id is None:
            continue
        ingredients[entry.name] = entry.omop_concept_id
        products[entry.name] = [
            Product(LOCAL_BASE + 10 * index + j, entry.name, entry.omop_concept_id, s,
                    f"{entry.name} {s:g} MG {_form(entry)} (synthetic product)")
            for j, s in enumerate(_strengths(entry.name))]
    codes: dict[tuple[str, str], int] = {}
    n = 0
    for cs in spec.concept_sets.values():
        for code in cs.codes:
            key = (code.vocabulary, code.code)
            if key not in codes:
                n += 1
                codes[key] = LOCAL_BASE + 900_000 + n
    return Vocabulary(ingredients, products, codes)


def _concept(cid: int, name: str, domain: str, vocab: str, cls: str, standard: str | None,
             code: str) -> dict[str, object]:
    return {"concept_id": cid, "concept_name": name, "domain_id": domain, "vocabulary_id": vocab,
            "concept_class_id": cls, "standard_concept": standard, "concept_code": code}


def _mg_unit() -> int:
    return next(u.concept_id for u in load_omop_spec().units_to_mg if u.factor == 1.0)


def vocabulary_tables() -> dict[str, pa.Table]:
    """`concept` and `concept_ancestor` rows for everything the writers may use."""
    v = vocabulary()
    spec = load_omop_spec()
    k = load_knowledge()
    rows: list[dict[str, object]] = []
    ancestors: list[tuple[int, int, int]] = []
    for agent, cid in v.ingredients.items():
        entry = k.antidepressants.get(agent) or k.augmenters[agent]
        rows.append(_concept(cid, agent, "Drug", "RxNorm", "Ingredient", "S",
                             entry.rxnorm or f"omop:{cid}"))
        ancestors.append((cid, cid, 0))
        for p in v.products[agent]:
            rows.append(_concept(p.concept_id, p.name, "Drug", "trdstage synthetic",
                                 "Clinical Drug", "S", f"SYN{p.concept_id}"))
            ancestors.append((p.concept_id, p.concept_id, 0))
            ancestors.append((cid, p.concept_id, 1))
    labels = {"phq9_total": ("Observation", "LOINC", "Survey")}
    for name, cs in spec.concept_sets.items():
        domain, vocab, cls = labels.get(name, ("Condition", "SNOMED", "Clinical Finding"))
        if name in ("ect", "rtms"):
            domain, vocab, cls = "Procedure", "SNOMED", "Procedure"
        for cid in cs.concepts:
            rows.append(_concept(cid, f"{cs.label} [{cid}]", domain, vocab, cls, "S", str(cid)))
            ancestors.append((cid, cid, 0))
        for code in cs.codes:
            cid = v.procedure_codes[(code.vocabulary, code.code)]
            kind = ("Observation", "Survey") if code.vocabulary == "LOINC" else (
                "Procedure", "CPT4")
            rows.append(_concept(cid, f"{code.vocabulary} {code.code} (synthetic concept id)",
                                 kind[0], code.vocabulary, kind[1], "S", code.code))
            ancestors.append((cid, cid, 0))
    seen: set[int] = set()
    unique = []
    for r in rows:
        if r["concept_id"] not in seen:
            seen.add(int(r["concept_id"]))  # type: ignore[call-overload]
            unique.append(r)
    concept = to_arrow("concept", {
        col: [r[col] for r in unique] for col in (
            "concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
            "standard_concept", "concept_code")})
    pairs = sorted(set(ancestors))
    ancestor = to_arrow("concept_ancestor", {
        "ancestor_concept_id": [a for a, _, _ in pairs],
        "descendant_concept_id": [d for _, d, _ in pairs],
        "min_levels_of_separation": [lv for _, _, lv in pairs],
        "max_levels_of_separation": [lv for _, _, lv in pairs]})
    strength_rows = [p for ps in v.products.values() for p in ps]
    strength = to_arrow("drug_strength", {
        "drug_concept_id": [p.concept_id for p in strength_rows],
        "ingredient_concept_id": [p.ingredient_concept_id for p in strength_rows],
        "amount_value": [p.strength_mg for p in strength_rows],
        "amount_unit_concept_id": [_mg_unit()] * len(strength_rows)})
    return {"concept": concept, "concept_ancestor": ancestor, "drug_strength": strength}


__all__ = ["LOCAL_BASE", "Product", "Vocabulary", "vocabulary", "vocabulary_tables"]
