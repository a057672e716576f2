"""CPIC recommendations for the patient's phenotypes, in CPIC's exact words and strength.

A drug outside CPIC's drug lists gets an explicit "no CPIC guideline"; a drug in scope without a
prescribing recommendation says so; a missing phenotype says which gene to test. Nothing is
guessed."""

from __future__ import annotations

from typing import Literal

from trdstage.advice.context import AdviceContext
from trdstage.domain.advice import PgxFinding, PgxPhenotypeUsed
from trdstage.knowledge.advice_schema import CpicCell, CpicDrug

AppliesTo = Literal["current", "option"]


def _parent(ctx: AdviceContext, code: str) -> str:
    return ctx.knowledge.cpic.likely.get(code, code)


def _used(ctx: AdviceContext, genes: list[str]) -> list[PgxPhenotypeUsed]:
    return [PgxPhenotypeUsed(gene=g, phenotype=ctx.phenotypes[g][0], basis=ctx.phenotypes[g][1])
            for g in genes if g in ctx.phenotypes]


def _score(ctx: AdviceContext) -> float | None:
    return next((r.activity_score for r in ctx.patient.pharmacogenomics
                 if r.gene == "CYP2D6" and r.activity_score is not None), None)


def _strength(ctx: AdviceContext, cell: CpicCell) -> tuple[str | None, str | None]:
    """CPIC's strength for the cell; where it depends on the CYP2D6 activity score, the score's
    band, or None with a note naming what cannot be told."""
    if not cell.activity_score_strength:
        return cell.strength, None
    score = _score(ctx)
    bands, low = [], 0.25
    for band in cell.activity_score_strength:
        bands.append(f"{band.strength} for activity score {low:g}-{band.max_score:g}")
        low = band.max_score + 0.25
        if score is not None and score <= band.max_score:
            return band.strength, f"CPIC strength for CYP2D6 activity score {score:g}."
    return None, ("CPIC's strength depends on the CYP2D6 activity score (" + "; ".join(bands)
                  + "); no activity score is recorded, so the strength cannot be told.")


def _cell(ctx: AdviceContext, spec: CpicDrug) -> tuple[CpicCell, str] | None:
    codes = {**ctx.knowledge.cpic.shared_codes, **spec.codes}
    if len(spec.genes) == 1:
        cell = spec.rows.get(_parent(ctx, ctx.phenotypes[spec.genes[0]][0]))
        if cell is None:
            return None
        return cell, codes.get(cell.text, cell.text)
    g1, g2 = spec.genes
    row = spec.table.get(_parent(ctx, ctx.phenotypes[g1][0]), {})
    table_cell = row.get(_parent(ctx, ctx.phenotypes[g2][0]))
    if table_cell is None:
        return None
    return table_cell, codes.get(table_cell.text, table_cell.text)


def cpic_finding(ctx: AdviceContext, drug: str, applies_to: AppliesTo) -> PgxFinding:
    cpic = ctx.knowledge.cpic
    spec = cpic.drugs.get(drug)
    if spec is None:
        if drug in cpic.no_recommendation:
            return PgxFinding(
                drug=drug, genes=[], status="no_recommendation", applies_to=applies_to,
                recommendation=f"CPIC makes no prescribing recommendation for {drug} (in the "
                "scope of the SSRI/SNRI guideline, without a genotype-based recommendation).",
                strength=None, sources=ctx.cite([cpic.no_recommendation_source]),
                source_keys=[cpic.no_recommendation_source])
        return PgxFinding(
            drug=drug, genes=[], status="no_guideline", applies_to=applies_to,
            recommendation=f"No CPIC guideline for {drug}: no genotype-based recommendation.",
            sources=ctx.cite(["cpic-ssri-2023", "cpic-tca-2016"]),
            source_keys=["cpic-ssri-2023", "cpic-tca-2016"])
    return _lookup(ctx, drug, spec, applies_to)


def _finding(ctx: AdviceContext, drug: str, spec: CpicDrug, applies_to: AppliesTo,
             cell: CpicCell, text: str, extra: str | None = None) -> PgxFinding:
    strength, score_note = _strength(ctx, cell)
    notes = " ".join(n for n in (extra, score_note, cell.note, spec.note) if n)
    status = "no_recommendation" if strength == "No recommendation" else "recommendation"
    return PgxFinding(
        drug=drug, genes=spec.genes, phenotypes=_used(ctx, spec.genes), status=status,
        recommendation=text + (f" Note: {notes}" if notes else ""), strength=strength,
        applies_to=applies_to, sources=ctx.cite([spec.source]), source_keys=[spec.source])


def _lookup(ctx: AdviceContext, drug: str, spec: CpicDrug, applies_to: AppliesTo) -> PgxFinding:
    missing = [g for g in spec.genes if g not in ctx.phenotypes]
    recorded = [g for g in spec.genes if g in ctx.phenotypes]
    if missing and len(recorded) == 1 and recorded[0] in spec.single_gene:
        gene = recorded[0]
        single = spec.single_gene[gene].get(_parent(ctx, ctx.phenotypes[gene][0]))
        if single is not None:
            return _finding(ctx, drug, spec, applies_to, single, single.text,
                            f"{missing[0]} phenotype not recorded: this is CPIC's "
                            f"recommendation on {gene} alone; a {missing[0]} result can "
                            "change it.")
    if missing:
        return PgxFinding(drug=drug, genes=spec.genes, phenotypes=_used(ctx, spec.genes),
                          status="phenotype_missing", applies_to=applies_to,
                          recommendation=f"{' and '.join(missing)} phenotype not recorded: "
                          f"CPIC's recommendation for {drug} depends on it.",
                          sources=ctx.cite([spec.source]), source_keys=[spec.source])
    found = _cell(ctx, spec)
    if found is None:
        return PgxFinding(drug=drug, genes=spec.genes, phenotypes=_used(ctx, spec.genes),
                          status="no_recommendation", applies_to=applies_to,
                          recommendation="CPIC gives no recommendation for this phenotype "
                          "combination.", strength="No recommendation",
                          sources=ctx.cite([spec.source]), source_keys=[spec.source])
    cell, text = found
    return _finding(ctx, drug, spec, applies_to, cell, text)


def findings_for(ctx: AdviceContext, drugs: list[str], applies_to: AppliesTo) -> list[PgxFinding]:
    """CPIC findings for antidepressants, only when the patient has pharmacogenomic results."""
    if not ctx.patient.pharmacogenomics:
        return []
    return [cpic_finding(ctx, d, applies_to) for d in dict.fromkeys(drugs)
            if d in ctx.knowledge.base.antidepressants]


AVOID_MARKERS = ("Avoid", "Select alternative", "Select an alternative",
                 "Consider a clinically appropriate alternative",
                 "Consider a clinically appropriate antidepressant not",
                 "Consider alternative drug")


def advises_alternative(finding: PgxFinding) -> bool:
    """CPIC's text opens by steering away from the drug."""
    return finding.status == "recommendation" and finding.recommendation.startswith(AVOID_MARKERS)
