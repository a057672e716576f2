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


def _cell(ctx: AdviceContext, drug: str, spec: CpicDrug) -> tuple[CpicCell, str] | None:
    codes = {**ctx.knowledge.cpic.shared_codes, **spec.codes}
    if len(spec.genes) == 1:
        gene = spec.genes[0]
        pheno = _parent(ctx, ctx.phenotypes[gene][0])
        if gene == "CYP2D6" and pheno == "IM" and "IM_AS1" in spec.rows:
            score = next((r.activity_score for r in ctx.patient.pharmacogenomics
                          if r.gene == gene and r.activity_score is not None), None)
            if score == 1.0:
                pheno = "IM_AS1"
        cell = spec.rows.get(pheno)
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
    if spec is None and drug in cpic.tertiary_tca_as_amitriptyline:
        return _tertiary_tca(ctx, drug, applies_to)
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


def _tertiary_tca(ctx: AdviceContext, drug: str, applies_to: AppliesTo) -> PgxFinding:
    """Other tertiary amines: amitriptyline's CYP2C19 advice at "Optional" strength [S]."""
    cpic = ctx.knowledge.cpic
    proxy = cpic.drugs["amitriptyline"]
    gene = "CYP2C19"
    keys = [cpic.tertiary_tca_source, "cpic-tca-2016"]
    if gene not in ctx.phenotypes:
        return PgxFinding(drug=drug, genes=[gene], status="phenotype_missing",
                          applies_to=applies_to, recommendation=f"{gene} phenotype not "
                          f"recorded: CPIC's advice for {drug} depends on it.",
                          sources=ctx.cite(keys), source_keys=keys)
    pheno = _parent(ctx, ctx.phenotypes[gene][0])
    row = proxy.table.get(pheno, {})
    nm = row.get("NM")
    text = "" if nm is None else {**cpic.shared_codes, **proxy.codes}.get(nm.text, nm.text)
    return PgxFinding(
        drug=drug, genes=[gene], phenotypes=_used(ctx, [gene]), status="recommendation",
        recommendation=f"As for amitriptyline (CYP2C19 {pheno}, CYP2D6 normal): {text}",
        strength="Optional", applies_to=applies_to, sources=ctx.cite(keys),
        source_keys=keys)


def _lookup(ctx: AdviceContext, drug: str, spec: CpicDrug, applies_to: AppliesTo) -> PgxFinding:
    missing = [g for g in spec.genes if g not in ctx.phenotypes]
    if missing:
        return PgxFinding(drug=drug, genes=spec.genes, phenotypes=_used(ctx, spec.genes),
                          status="phenotype_missing", applies_to=applies_to,
                          recommendation=f"{' and '.join(missing)} phenotype not recorded: "
                          f"CPIC's recommendation for {drug} depends on it.",
                          sources=ctx.cite([spec.source]), source_keys=[spec.source])
    found = _cell(ctx, drug, spec)
    if found is None:
        return PgxFinding(drug=drug, genes=spec.genes, phenotypes=_used(ctx, spec.genes),
                          status="no_recommendation", applies_to=applies_to,
                          recommendation="CPIC gives no recommendation for this phenotype "
                          "combination.", strength="No recommendation",
                          sources=ctx.cite([spec.source]), source_keys=[spec.source])
    cell, text = found
    notes = " ".join(n for n in (cell.note, spec.note) if n)
    return PgxFinding(
        drug=drug, genes=spec.genes, phenotypes=_used(ctx, spec.genes),
        status="no_recommendation" if cell.strength == "No recommendation" else "recommendation",
        recommendation=text + (f" Note: {notes}" if notes else ""), strength=cell.strength,
        applies_to=applies_to, sources=ctx.cite([spec.source]), source_keys=[spec.source])


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
