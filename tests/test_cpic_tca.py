"""CPIC tricyclic recommendations, one test per drug and phenotype pair.

The expected table below is typed from the source, not from knowledge/data/cpic.yaml: the CPIC
2016 TCA guideline (Hicks et al., Clin Pharmacol Ther 2017, PMID 27997040) as annotated by
PharmGKB (PharmGKB/PharmCAT @0c6123b6, CPIC_<drug>_and_CYP2C19_CYP2D6.json, annotation version
2024-03-25: clomipramine PA166105007, imipramine PA166104999, doxepin PA166105000, trimipramine
PA166105001, amitriptyline PA166105006, nortriptyline PA166104998, desipramine PA166105002).
CPIC's texts for the five tertiary amines are the same sentences with the drug's name (including
CPIC's own "If a <drug> is warranted" in two cells, and its "amitripyline" (sic) where the 50%
reduction is advised); the strengths differ between amitriptyline and the other four."""

from __future__ import annotations

from typing import Any

import pytest

from builders import AS_OF, History
from trdstage.advice.context import build_context
from trdstage.advice.pharmacogenomics import cpic_finding
from trdstage.domain.patient import PgxResult
from trdstage.engine import assess
from trdstage.knowledge.advice_schema import load_advice_knowledge

TDM = "Utilize therapeutic drug monitoring to guide dose adjustments."
TDM_STRONG = ("Utilizing therapeutic drug monitoring to guide dose adjustments is strongly "
              "recommended.")
TITRATE = ("Titrate dose to observed clinical response with symptom improvement and minimal "
           "(if any) side effects.")
AVOID_TDM = ("Avoid {d} use; If {d} is warranted, utilize therapeutic drug monitoring to guide "
             "dose adjustment. " + TDM_STRONG)
ALT_2C19 = ("Consider alternative drug not metabolized by CYP2C19; If {d} is warranted, utilize "
            "therapeutic drug monitoring to guide dose adjustment.")
STD = "Initiate therapy with recommended starting dose."
RED25 = "Consider a 25% reduction of recommended starting dose."
HALF = "consider a 50% reduction of recommended starting dose."
AVOID_HALF_A = "Avoid {d} use. If a {d2} is warranted, " + HALF
AVOID_HALF = "Avoid {d} use. If {d2} is warranted, " + HALF

# CYP2C19 row x CYP2D6 column -> CPIC text (template on the drug name)
TERTIARY_TEXT = {
    ("UM", "UM"): AVOID_TDM, ("UM", "NM"): ALT_2C19, ("UM", "IM"): ALT_2C19 + " " + TDM_STRONG,
    ("UM", "PM"): AVOID_TDM,
    ("RM", "UM"): AVOID_TDM, ("RM", "NM"): ALT_2C19, ("RM", "IM"): ALT_2C19 + " " + TDM_STRONG,
    ("RM", "PM"): AVOID_TDM,
    ("NM", "UM"): ("Avoid {d} use; If {d} is warranted, consider titrating to a higher target dose "
                   "(compared to normal metabolizers). Utilize therapeutic drug monitoring to "
                   "guide dose adjustment."),
    ("NM", "NM"): STD, ("NM", "IM"): RED25 + " " + TDM, ("NM", "PM"): AVOID_HALF_A + " " + TDM,
    ("IM", "UM"): AVOID_TDM, ("IM", "NM"): STD, ("IM", "IM"): RED25 + " " + TDM_STRONG,
    ("IM", "PM"): AVOID_HALF_A + " " + TDM_STRONG,
    ("PM", "UM"): AVOID_TDM, ("PM", "NM"): AVOID_HALF + " " + TDM, ("PM", "IM"): AVOID_TDM,
    ("PM", "PM"): AVOID_TDM,
}
# Clomipramine, imipramine, doxepin, trimipramine: Strong for NM/NM, Optional in every other cell.
OTHER_TERTIARY_STRENGTH = {cell: "Strong" if cell == ("NM", "NM") else "Optional"
                           for cell in TERTIARY_TEXT}
AMITRIPTYLINE_STRENGTH = {
    ("UM", "UM"): "Optional", ("UM", "NM"): "Optional", ("UM", "IM"): "Optional",
    ("UM", "PM"): "Optional",
    ("RM", "UM"): "Optional", ("RM", "NM"): "Optional", ("RM", "IM"): "Optional",
    ("RM", "PM"): "Optional",
    ("NM", "UM"): "Strong", ("NM", "NM"): "Strong", ("NM", "IM"): "Moderate",
    ("NM", "PM"): "Strong",
    ("IM", "UM"): "Optional", ("IM", "NM"): "Strong", ("IM", "IM"): "Optional",
    ("IM", "PM"): "Optional",
    ("PM", "UM"): "Optional", ("PM", "NM"): "Moderate", ("PM", "IM"): "Optional",
    ("PM", "PM"): "Optional",
}
STRENGTH = {"amitriptyline": AMITRIPTYLINE_STRENGTH,
            **{d: OTHER_TERTIARY_STRENGTH
               for d in ("clomipramine", "imipramine", "doxepin", "trimipramine")}}

# CYP2D6 alone (CYP2C19 not recorded), for the tertiary amines, and for nortriptyline/desipramine
D6_UM = ("Avoid tricyclic use due to potential lack of efficacy. Consider alternative drug not "
         "metabolized by CYP2D6. If a {tca} is warranted, consider titrating to a higher target "
         "dose (compared to normal metabolizers).")
D6_PM = ("Avoid tricyclic use due to potential for side effects. Consider alternative drug not "
         "metabolized by CYP2D6. If a {tca} is warranted, consider a 50% reduction of "
         "recommended starting dose.")
SECONDARY_TEXT = {
    "UM": D6_UM.format(tca="tricyclic antidepressant") + " " + TITRATE + " " + TDM,
    "NM": "Initiate therapy with recommended starting dose",
    "IM": RED25 + " " + TITRATE + " " + TDM,
    "PM": D6_PM.format(tca="tricyclic antidepressant") + " " + TITRATE + " " + TDM,
}
DESIPRAMINE_TEXT = {**SECONDARY_TEXT, "UM": D6_UM.format(tca="TCA") + " " + TITRATE + " " + TDM,
                    "PM": D6_PM.format(tca="TCA") + " " + TITRATE + " " + TDM}
NORTRIPTYLINE_STRENGTH = {"UM": "Strong", "NM": "Strong", "PM": "Strong"}  # IM: by score
DESIPRAMINE_STRENGTH = {"UM": "Optional", "NM": "Strong", "IM": "Optional", "PM": "Optional"}
TERTIARY_D6_ONLY_TEXT = {
    "UM": D6_UM.format(tca="TCA") + " " + TDM + " " + TITRATE,
    "NM": STD,
    "IM": RED25 + " " + TDM + " " + TITRATE,
    "PM": D6_PM.format(tca="TCA") + " " + TDM + " " + TITRATE,
}
PHENOTYPE_SCORE = {"UM": 3.0, "NM": 2.0, "IM": 0.5, "PM": 0.0}


def finding(drug: str, *results: PgxResult) -> Any:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 100, weeks=8, start="2025-07-01")
    patient = h.patient().model_copy(update={"pharmacogenomics": list(results)})
    ctx = build_context(patient, assess(patient, as_of=AS_OF), load_advice_knowledge())
    return cpic_finding(ctx, drug, "option")


def cpic_text(f: Any) -> str:
    """The recommendation without the appended notes."""
    return str(f.recommendation).split(" Note: ")[0]


@pytest.mark.parametrize("drug", list(STRENGTH))
@pytest.mark.parametrize("c19,d6", list(TERTIARY_TEXT))
def test_tertiary_tca_cell(drug: str, c19: str, d6: str) -> None:
    f = finding(drug, PgxResult(gene="CYP2C19", phenotype=c19),
                PgxResult(gene="CYP2D6", phenotype=d6))
    assert f.status == "recommendation"
    assert cpic_text(f) == TERTIARY_TEXT[(c19, d6)].format(
        d=drug, d2="amitripyline" if drug == "amitriptyline" else drug)
    assert f.strength == STRENGTH[drug][(c19, d6)]
    assert f.source_keys == ["cpic-tca-2016"]


@pytest.mark.parametrize("drug", ["clomipramine", "imipramine", "doxepin", "trimipramine"])
@pytest.mark.parametrize("d6", list(TERTIARY_D6_ONLY_TEXT))
def test_tertiary_tca_cyp2d6_alone(drug: str, d6: str) -> None:
    f = finding(drug, PgxResult(gene="CYP2D6", phenotype=d6))
    assert cpic_text(f) == TERTIARY_D6_ONLY_TEXT[d6]
    assert f.strength == ("Strong" if d6 == "NM" else "Optional")
    assert "CYP2C19 phenotype not recorded" in f.recommendation


def test_imipramine_cyp2c19_nm_cyp2d6_pm_is_not_read_as_normal() -> None:
    f = finding("imipramine", PgxResult(gene="CYP2C19", phenotype="NM"),
                PgxResult(gene="CYP2D6", phenotype="PM"))
    assert cpic_text(f) == ("Avoid imipramine use. If a imipramine is warranted, consider a 50% "
                            "reduction of recommended starting dose. " + TDM)


def test_clomipramine_cyp2d6_activity_score_three_is_ultrarapid() -> None:
    f = finding("clomipramine", PgxResult(gene="CYP2C19", phenotype="NM"),
                PgxResult(gene="CYP2D6", activity_score=3.0))
    assert cpic_text(f).startswith("Avoid clomipramine use; If clomipramine is warranted, "
                                   "consider titrating to a higher target dose")


@pytest.mark.parametrize("d6", ["UM", "NM", "PM"])
def test_nortriptyline(d6: str) -> None:
    f = finding("nortriptyline", PgxResult(gene="CYP2D6", phenotype=d6))
    assert cpic_text(f) == SECONDARY_TEXT[d6]
    assert f.strength == NORTRIPTYLINE_STRENGTH[d6]


@pytest.mark.parametrize("score,strength", [(0.25, "Moderate"), (0.5, "Moderate"),
                                            (0.75, "Optional"), (1.0, "Optional")])
def test_nortriptyline_intermediate_strength_from_the_activity_score(
        score: float, strength: str) -> None:
    f = finding("nortriptyline", PgxResult(gene="CYP2D6", activity_score=score))
    assert cpic_text(f) == SECONDARY_TEXT["IM"]
    assert f.strength == strength


def test_nortriptyline_intermediate_without_a_score_says_which_strength_it_cannot_tell() -> None:
    f = finding("nortriptyline", PgxResult(gene="CYP2D6", phenotype="IM"))
    assert cpic_text(f) == SECONDARY_TEXT["IM"]
    assert f.strength is None
    assert "Moderate for activity score 0.25-0.5" in f.recommendation
    assert "Optional for activity score 0.75-1" in f.recommendation
    assert "cannot be told" in f.recommendation


@pytest.mark.parametrize("d6", list(DESIPRAMINE_TEXT))
def test_desipramine(d6: str) -> None:
    f = finding("desipramine", PgxResult(gene="CYP2D6", phenotype=d6))
    assert f.status == "recommendation"
    assert cpic_text(f) == DESIPRAMINE_TEXT[d6]
    assert f.strength == DESIPRAMINE_STRENGTH[d6]


@pytest.mark.parametrize("score", [0.25, 1.0])
def test_desipramine_intermediate_is_optional_at_every_score(score: float) -> None:
    f = finding("desipramine", PgxResult(gene="CYP2D6", activity_score=score))
    assert f.strength == "Optional"


def test_every_tca_recommendation_carries_cpics_other_considerations() -> None:
    f = finding("doxepin", PgxResult(gene="CYP2C19", phenotype="NM"),
                PgxResult(gene="CYP2D6", phenotype="NM"))
    assert "refers to the recommended steady-state dose" in f.recommendation
    assert "such as depression" in f.recommendation
