"""Next steps: ranked output for the bundled vignettes, the response-pattern rules (CANMAT), the
stage backbone (project design), tried options never proposed as new, blocked options with their
reasons, and the JSON contract."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from builders import AS_OF, History
from trdstage import evaluate
from trdstage.adapters.native import read_patient_file
from trdstage.advice import advise
from trdstage.cli import app
from trdstage.domain import RatingReading
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge.advice_schema import load_advice_knowledge

EXAMPLES = Path(str(resources.files("trdstage") / "examples"))
DEMO = EXAMPLES / "demo-complex-history.yaml"


def example(name: str) -> Assessment:
    path = EXAMPLES / name
    return evaluate(read_patient_file(path, today=AS_OF), as_of=AS_OF)


def ids(a: Assessment, n: int | None = None) -> list[str]:
    return [r.intervention for r in a.recommendations[:n]]


def advised(h: History) -> Assessment:
    patient = h.patient()
    return advise(patient, assess(patient, as_of=AS_OF))


# ---------------------------------------------------------------- knowledge


def test_options_cover_issue_4_point_1() -> None:
    k = load_advice_knowledge()
    have = {o.id for o in k.options.options}
    agents = {a for o in k.options.options for a in o.agents}
    assert {"aripiprazole", "brexpiprazole", "cariprazine", "quetiapine", "olanzapine",
            "risperidone", "lithium", "liothyronine", "modafinil", "lamotrigine", "pramipexole",
            "methylphenidate", "bupropion", "mirtazapine", "mianserin", "esketamine",
            "ketamine"} <= agents
    assert {"optimize_dose", "rtms", "ect", "vns", "investigational_dbs", "psychotherapy_cbt",
            "psychotherapy_ipt", "psychotherapy_ba", "psychotherapy_cbasp", "psychotherapy_mbct",
            "lifestyle_exercise", "lifestyle_sleep", "lifestyle_diet", "digital_guided_icbt",
            "investigational_psilocybin"} <= have
    assert {o.category for o in k.options.options} == {
        "switch", "optimize", "augment", "combine", "neuromodulation", "rapid_acting",
        "psychotherapy", "lifestyle", "digital", "investigational"}
    # every switch option is indexed by mechanism class
    for o in k.options.options:
        if o.category == "switch":
            assert len({k.base.antidepressants[a].mechanism for a in o.agents} - {"rima"}) == 1


def test_grades_keep_each_guidelines_own_vocabulary() -> None:
    a = example("d2-ssri-snri.yaml")
    vocab = {g.guideline: g.vocabulary for r in a.recommendations for g in r.grades}
    assert vocab["CANMAT 2023"].startswith("line of treatment")
    assert vocab["NICE NG222"].startswith("recommendation verb")
    aripiprazole = next(r for r in a.recommendations if r.intervention == "augment_aripiprazole")
    assert [(g.guideline, g.grade) for g in aripiprazole.grades][:2] == [
        ("CANMAT 2023", "1st line, Level 1"), ("NICE NG222", "consider (rec. 1.9.9)")]
    lithium = next(r for r in a.recommendations if r.intervention == "augment_lithium")
    assert lithium.grades[0].grade == "2nd line, level uncertain"


def test_every_line_is_traceable_to_a_source() -> None:
    known = load_advice_knowledge().base.sources
    for name in sorted(p.name for p in EXAMPLES.glob("*.yaml")):
        a = example(name)
        for r in a.recommendations:
            assert r.sources and all(k in known for k in r.source_keys), r.intervention
            assert "design-stage-mapping" in r.source_keys
            assert r.design_basis and "tag D" in r.design_basis
            for al in r.alerts:
                assert al.sources, al.code
        for al in a.alerts:
            assert al.sources, al.code
        for c in a.reassessment:
            assert c.sources


# ---------------------------------------------------------------- vignettes (as of 2026-01-01)


@pytest.mark.parametrize(("name", "top"), [
    # stage I, no response: switch to a different mechanism first (CANMAT Q7.c, Fig 7.1)
    ("d1-one-ssri.yaml", ["switch_snri", "switch_bupropion", "switch_mirtazapine"]),
    # stage II, no response after a failed switch: first-line adjuncts lead
    ("d2-ssri-snri.yaml", ["augment_aripiprazole", "augment_brexpiprazole"]),
    # stage II after failed switch and lithium augmentation: neuromodulation first
    ("d3-lithium-augmentation.yaml", ["rtms", "ect"]),
    # stage V: neuromodulation and rapid-acting treatments lead; VNS surfaces
    ("d4-stage-five.yaml", ["rtms", "itbs_accelerated", "vns"]),
    # stage III: adjuncts first; the failed MAOI, SSRI and TCA classes are switches within class
    ("d5-maoi-first.yaml", ["augment_aripiprazole"]),
    # no adequate failure, last trial stopped for intolerance: switch (CANMAT)
    ("d6-no-adequate-failure.yaml", ["switch_ssri"]),
    # psychotic features: ECT first at any stage (CANMAT Table 8.3)
    ("d8-psychotic-augmented.yaml", ["ect"]),
    # stage III, switch and adjunct both failed, ECT and esketamine already tried
    ("demo-complex-history.yaml", ["rtms", "itbs_accelerated", "ketamine_iv",
                                   "augment_aripiprazole"]),
])
def test_vignette_top_recommendations(name: str, top: list[str]) -> None:
    assert ids(example(name), len(top)) == top


def test_demo_tried_treatments_are_listed_as_tried_after_the_new_options() -> None:
    a = example("demo-complex-history.yaml")
    tried = {r.intervention: r for r in a.recommendations if r.previously_tried}
    assert {"ect", "esketamine_intranasal", "augment_t3", "combine_bupropion",
            "switch_bupropion", "psychotherapy_cbt"} <= set(tried)
    first_tried = min(r.rank for r in tried.values())
    assert all(r.previously_tried for r in a.recommendations if r.rank >= first_tried
               and not r.blocked)
    ect = tried["ect"]
    assert "unilateral, 8 sessions" in ect.previously_tried.summary  # type: ignore[union-attr]
    assert any("NICE 1.13.5" in x for x in ect.rationale)


def test_no_failed_drug_is_ever_proposed_as_new() -> None:
    for name in sorted(p.name for p in EXAMPLES.glob("*.yaml")):
        a = example(name)
        tried = {ag for t in a.trials for ag in t.agents}
        added = {c.agent for t in a.trials for c in t.concurrent if c.counted}
        for r in a.recommendations:
            if r.previously_tried is not None:
                continue
            candidates = next((x for x in r.rationale if x.startswith("candidates:")), "")
            for drug in tried:
                assert drug not in candidates.removeprefix("candidates:").split(", "), (name, r)
            if r.category.value in ("augment", "combine"):
                opt = load_advice_knowledge().option(r.intervention)
                assert not set(opt.agents) & added, (name, r.intervention)


def test_stage_backbone_gates_options() -> None:
    d1 = set(ids(example("d1-one-ssri.yaml")))
    assert "switch_maoi" not in d1 and "vns" not in d1 and "augment_lithium" not in d1
    assert "esketamine_intranasal" not in d1  # label population: >= 2 failed trials
    d2 = set(ids(example("d2-ssri-snri.yaml")))
    assert {"augment_lithium", "augment_t3", "switch_tca", "esketamine_intranasal",
            "rtms"} <= d2
    assert "switch_maoi" not in d2 and "vns" not in d2
    assert "vns" in set(ids(example("d4-stage-five.yaml")))


# ---------------------------------------------------------------- response pattern rules


def test_partial_response_puts_an_adjunct_first() -> None:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 150, weeks=10, outcome="partial_response", start="2025-09-01",
            ongoing=True)
    a = advised(h)
    assert a.recommendations[0].category.value in ("augment", "optimize")
    first_pharm = next(r for r in a.recommendations if r.category.value in
                       ("augment", "combine", "switch"))
    assert first_pharm.intervention == "augment_aripiprazole"
    # partial response surfaces the stage-II adjuncts from stage I (project mapping)
    assert "combine_mirtazapine" in ids(a)


def test_no_response_puts_a_switch_first_at_stage_one() -> None:
    h = History(onset="2025-06-01")
    h.trial("escitalopram", 20, weeks=8)
    a = advised(h)
    assert a.recommendations[0].category.value == "switch"
    assert any("switch first" in x for x in a.recommendations[0].rationale)


def test_an_inadequate_ongoing_trial_is_optimised_first() -> None:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 25, weeks=10, outcome="non_response", start="2025-10-01", ongoing=True)
    a = advised(h)
    top = a.recommendations[0]
    assert top.intervention == "optimize_dose"
    assert top.dose_range is not None and "50-200" in top.dose_range.text


def test_response_continues_the_current_treatment() -> None:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 100, weeks=10, outcome="response", start="2025-09-01", ongoing=True)
    a = advised(h)
    assert a.recommendations[0].intervention == "continue_current"


# ---------------------------------------------------------------- JSON contract


def test_cli_json_carries_the_advice() -> None:
    result = CliRunner().invoke(app, ["assess", str(DEMO), "--as-of", "2026-01-01",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"recommendations", "alerts", "reassessment", "monitoring"} <= set(doc)
    first = doc["recommendations"][0]
    assert {"intervention", "category", "rationale", "dose_range", "sources", "alerts",
            "blocked", "blocked_reason", "grades", "previously_tried"} <= set(first)
    assert doc["monitoring"]["scales"][0]["scale"] == "PHQ-9"
    assert Assessment.model_validate(doc).recommendations[0].rank == 1


def test_text_report_has_the_advice_sections() -> None:
    result = CliRunner().invoke(app, ["assess", str(DEMO), "--as-of", "2026-01-01"])
    for heading in ("Next steps", "Reassessment checklist", "Symptom monitoring"):
        assert heading in result.stdout
    md = CliRunner().invoke(app, ["assess", str(DEMO), "--as-of", "2026-01-01",
                                  "--format", "markdown"]).stdout
    assert "## Next steps" in md and "## Reassessment checklist" in md


def test_evaluate_defaults_match_engine_plus_advice() -> None:
    patient = read_patient_file(DEMO, today=AS_OF)
    a = evaluate(patient, as_of=date(2026, 1, 1))
    b = advise(patient, assess(patient, as_of=date(2026, 1, 1)))
    assert a == b


# ---------------------------------------------------------------- invariants


POOL = ["sertraline", "escitalopram", "fluoxetine", "venlafaxine", "duloxetine", "bupropion",
        "mirtazapine", "nortriptyline", "imipramine", "phenelzine", "vortioxetine"]
OUTCOMES = ["non_response", "partial_response", "intolerance", "response", None]
FLAGS = ["suicidality", "seizure_disorder", "pregnancy", "aneurysmal_vascular_disease",
         "psychotic_features", "eating_disorder"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from(OUTCOMES)), min_size=0,
                max_size=5, unique_by=lambda t: t[0]),
       st.lists(st.sampled_from(FLAGS), unique=True, max_size=3),
       st.booleans())
def test_invariants_over_random_histories(trials: list[tuple[str, str | None]],
                                          flags: list[str], last_ongoing: bool) -> None:
    h = History(onset="2023-01-01", flags=flags)
    for i, (agent, outcome) in enumerate(trials):
        ongoing = last_ongoing and i == len(trials) - 1
        h.trial(agent, 1000, weeks=8, outcome=outcome, ongoing=ongoing)
    a = advised(h)
    tried = {ag for t in a.trials for ag in t.agents}
    ranks = [r.rank for r in a.recommendations]
    assert ranks == list(range(1, len(ranks) + 1))
    seen_blocked = False
    for r in a.recommendations:
        if r.blocked:
            assert r.blocked_reason
            seen_blocked = True
        else:
            assert not seen_blocked, "blocked options come last"
            assert r.blocked_reason is None
        candidates = next((x for x in r.rationale if x.startswith("candidates:")), "")
        assert not tried & set(candidates.removeprefix("candidates: ").split(", "))
    if "pregnancy" in flags:
        lithium = [r for r in a.recommendations if r.intervention == "augment_lithium"]
        assert all(any(al.code == "lithium_pregnancy" for al in r.alerts) for r in lithium)


def test_suicidality_puts_ect_first_only_in_a_severe_episode() -> None:
    for severity, first in (("severe", "ect"), ("moderate", "switch_snri")):
        h = History(onset="2025-01-01", severity=severity, flags=["suicidality"])
        h.trial("sertraline", 150, weeks=8)
        assert ids(advised(h), 1) == [first], severity


def test_no_early_improvement_at_the_dose_ceiling_goes_to_switch_not_dose() -> None:
    h = History(onset="2025-10-01")
    h.trial("citalopram", 40, weeks=4, start="2025-11-20", outcome=None, ongoing=True)
    patient = h.patient()
    episode = patient.episodes[-1].model_copy(update={"ratings": [
        RatingReading(scale="PHQ-9", date=date(2025, 11, 18), total=20),
        RatingReading(scale="PHQ-9", date=date(2025, 12, 15), total=19)]})
    patient = patient.model_copy(update={"episodes": [episode], "birth_date": date(1950, 1, 1)})
    a = advise(patient, assess(patient, as_of=AS_OF))
    assert a.recommendations[0].category.value == "switch"
    assert any("top of its range for this patient (20 mg/day)" in x
               for x in a.recommendations[0].rationale)
