"""Reassessment checklist (pseudo-resistance) on every assessment: found with evidence, or to
check."""

from __future__ import annotations

from builders import AS_OF, History
from trdstage.advice import advise
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge.advice_schema import load_advice_knowledge


def advised(h: History) -> Assessment:
    patient = h.patient()
    return advise(patient, assess(patient, as_of=AS_OF))


def items(a: Assessment) -> dict[str, tuple[str, list[str]]]:
    return {c.id: (c.status.value, c.evidence) for c in a.reassessment}


def test_every_item_is_always_present_with_sources() -> None:
    a = advised(History())
    expected = [i.id for i in load_advice_knowledge().reassessment.items]
    assert [c.id for c in a.reassessment] == expected
    assert all(c.sources for c in a.reassessment)
    assert {"diagnosis_bipolar", "adherence", "inadequate_dose_duration", "substance_use",
            "medical_thyroid", "medical_anaemia", "medical_sleep_apnoea", "interactions",
            "personality", "psychosocial"} <= set(expected)
    assert all(status == "to_check" for status, _ in items(a).values())


def test_inadequate_trials_come_from_the_trial_verdicts() -> None:
    h = History()
    h.trial("sertraline", 25, weeks=8)
    h.trial("venlafaxine", 225, weeks=3)
    status, evidence = items(advised(h))["inadequate_dose_duration"]
    assert status == "found"
    assert any(e.startswith("T1 sertraline: not adequate") for e in evidence)
    assert any(e.startswith("T2 venlafaxine: not adequate") for e in evidence)


def test_flags_adherence_psychosis_and_interactions_are_found() -> None:
    h = History(flags=["bipolar_features", "substance_use", "hypothyroidism",
                       "sleep_apnoea", "psychosocial_stressors"], psychotic=True)
    h.trial("sertraline", 150, weeks=8, adherence="poor")
    h.trial("fluoxetine", 40, weeks=8, ongoing=True, start="2025-11-01")
    got = items(advised(h))
    for key in ("diagnosis_bipolar", "substance_use", "medical_thyroid", "medical_sleep_apnoea",
                "psychosocial", "diagnosis_psychotic", "adherence", "interactions"):
        assert got[key][0] == "found", key
    assert "T1 sertraline: adherence recorded as poor" in got["adherence"][1]
    assert any("fluoxetine" in e for e in got["interactions"][1])
