"""CPIC lookups: exact wording and strength per drug and phenotype; explicit 'no recommendation'
and 'no guideline'; activity-score mapping; applied to current drugs and switch options."""

from __future__ import annotations

from typing import Any

import pytest

from builders import AS_OF, History
from trdstage.advice import advise
from trdstage.advice.context import build_context
from trdstage.advice.pharmacogenomics import cpic_finding
from trdstage.domain.patient import PgxResult
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge.advice_schema import load_advice_knowledge


def finding(drug: str, *results: PgxResult) -> Any:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 100, weeks=8, start="2025-07-01")
    patient = h.patient().model_copy(update={"pharmacogenomics": list(results)})
    ctx = build_context(patient, assess(patient, as_of=AS_OF), load_advice_knowledge())
    return cpic_finding(ctx, drug, "option")


def test_paroxetine_cyp2d6_poor_metaboliser() -> None:
    f = finding("paroxetine", PgxResult(gene="CYP2D6", phenotype="PM"))
    assert f.strength == "Moderate"
    assert f.recommendation.startswith("Consider a 50% reduction in recommended starting dose")


def test_citalopram_and_escitalopram_cyp2c19_pm_strong_with_fda_note() -> None:
    for drug in ("citalopram", "escitalopram"):
        f = finding(drug, PgxResult(gene="CYP2C19", phenotype="Likely PM"))
        assert f.strength == "Strong"
        assert f.recommendation.startswith("Consider a clinically appropriate antidepressant "
                                           "not predominantly metabolized by CYP2C19.")


@pytest.mark.parametrize(("c19", "b6", "strength", "start"), [
    ("PM", "PM", "Optional", "Select an alternative antidepressant"),
    ("NM", "NM", "Strong", "Initiate therapy with recommended starting dose."),
    ("NM", "PM", "Optional", "Consider a lower starting dose"),
    ("PM", "NM", "Moderate", "Consider a lower starting dose"),
])
def test_sertraline_two_gene_table(c19: str, b6: str, strength: str, start: str) -> None:
    f = finding("sertraline", PgxResult(gene="CYP2C19", phenotype=c19),
                PgxResult(gene="CYP2B6", phenotype=b6))
    assert (f.strength, f.recommendation.startswith(start)) == (strength, True)


def test_nortriptyline_intermediate_strength_depends_on_the_activity_score() -> None:
    low = finding("nortriptyline", PgxResult(gene="CYP2D6", activity_score=0.5))
    one = finding("nortriptyline", PgxResult(gene="CYP2D6", activity_score=1.0))
    assert low.strength == "Moderate" and one.strength == "Optional"
    assert low.phenotypes[0].phenotype == "IM" and "activity score 0.5" in low.phenotypes[0].basis


def test_activity_score_bands() -> None:
    for score, pheno in ((0, "PM"), (0.25, "IM"), (1.25, "NM"), (2.25, "NM"), (2.5, "UM")):
        f = finding("paroxetine", PgxResult(gene="CYP2D6", activity_score=score))
        assert f.phenotypes[0].phenotype == pheno


def test_venlafaxine_im_has_no_recommendation_and_says_so() -> None:
    f = finding("venlafaxine", PgxResult(gene="CYP2D6", phenotype="IM"))
    assert f.status == "no_recommendation" and f.strength == "No recommendation"
    assert "No action recommended based on genotype" in f.recommendation


def test_drugs_without_a_cpic_recommendation_say_so() -> None:
    fluox = finding("fluoxetine", PgxResult(gene="CYP2D6", phenotype="PM"))
    assert fluox.status == "no_recommendation" and "no prescribing recommendation" in \
        fluox.recommendation
    mirt = finding("mirtazapine", PgxResult(gene="CYP2D6", phenotype="PM"))
    assert mirt.status == "no_guideline" and "No CPIC guideline" in mirt.recommendation


def test_missing_phenotype_is_named() -> None:
    f = finding("sertraline", PgxResult(gene="CYP2C19", phenotype="NM"))
    assert f.status == "phenotype_missing" and "CYP2B6" in f.recommendation


def test_tertiary_tca_with_one_gene_takes_cpics_single_gene_row_and_says_so() -> None:
    f = finding("clomipramine", PgxResult(gene="CYP2C19", phenotype="UM"))
    assert f.status == "recommendation" and f.strength == "Optional"
    assert f.recommendation.startswith("Avoid tertiary amine use")
    assert "CYP2D6 phenotype not recorded" in f.recommendation
    assert "amitriptyline" not in f.recommendation


def test_diplotype_alone_is_kept_but_not_interpreted() -> None:
    with pytest.raises(ValueError, match="unknown phenotype"):
        PgxResult(gene="CYP2D6", phenotype="superfast")
    h = History(onset="2025-06-01")
    h.trial("paroxetine", 20, weeks=8, start="2025-10-01", ongoing=True)
    patient = h.patient().model_copy(update={"pharmacogenomics": [
        PgxResult(gene="CYP2D6", diplotype="*4/*4")]})
    a = advise(patient, assess(patient, as_of=AS_OF))
    assert any(al.code == "pgx_diplotype_not_interpreted" for al in a.alerts)


def advised(h: History, *results: PgxResult) -> Assessment:
    patient = h.patient().model_copy(update={"pharmacogenomics": list(results)})
    return advise(patient, assess(patient, as_of=AS_OF))


def test_applied_to_the_current_drug_and_to_switch_candidates() -> None:
    h = History(onset="2025-01-01")
    h.trial("paroxetine", 40, weeks=12, start="2025-09-01", ongoing=True)
    a = advised(h, PgxResult(gene="CYP2D6", phenotype="UM"),
                PgxResult(gene="CYP2C19", phenotype="PM"))
    current = next(al for al in a.alerts if al.code == "cpic_recommendation")
    assert current.severity.value == "warning" and "paroxetine" in current.subjects
    ssri = next(r for r in a.recommendations if r.intervention == "switch_ssri")
    drugs = {f.drug: f for f in ssri.pharmacogenomics}
    assert drugs["citalopram"].strength == "Strong"
    assert drugs["fluoxetine"].status == "no_recommendation"
    assert any("CPIC advises an alternative" in x for x in ssri.rationale)
    # the candidates CPIC steers away from are listed last
    candidates = next(x for x in ssri.rationale if x.startswith("candidates:"))
    assert candidates.index("fluoxetine") < candidates.index("escitalopram")


def test_no_pgx_data_no_pgx_noise() -> None:
    h = History(onset="2025-01-01")
    h.trial("sertraline", 100, weeks=8)
    a = advised(h)
    assert all(not r.pharmacogenomics for r in a.recommendations)
