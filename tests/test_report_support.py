"""Shared inputs of the report tests: a demo patient, its assessment, and one with advice."""

from __future__ import annotations

from datetime import date
from importlib import resources

from trdstage.adapters.native import read_patient_file
from trdstage.domain.advice import (
    Alert,
    AlertSeverity,
    ChecklistItem,
    ChecklistStatus,
    DoseRange,
    GuidelineGrade,
    OptionCategory,
    PriorUse,
    Recommendation,
)
from trdstage.domain.patient import Patient
from trdstage.domain.results import Assessment
from trdstage.engine import assess

AS_OF = date(2026, 1, 1)


def demo(name: str = "demo-complex-history.yaml") -> tuple[Patient, Assessment]:
    with resources.as_file(resources.files("trdstage") / "examples" / name) as path:
        patient = read_patient_file(path, today=AS_OF)
    return patient, assess(patient, as_of=AS_OF)


def with_advice(a: Assessment) -> Assessment:
    """Hand-made advice fields (the report must render whatever the advice step fills)."""
    cite = "[canmat-2023] CANMAT 2023 (V)"
    recs = [
        Recommendation(
            rank=1, intervention="aripiprazole_augmentation", label="Aripiprazole augmentation",
            category=OptionCategory.augment, rationale=["partial response on the last trial"],
            dose_range=DoseRange(low=2, high=15, text="2-15 mg/day", source=cite,
                                 source_key="canmat-2023"),
            grades=[GuidelineGrade(guideline="CANMAT 2023", vocabulary="line + level",
                                   grade="1st line, Level 1", source=cite,
                                   source_key="canmat-2023")],
            sources=[cite], source_keys=["canmat-2023"]),
        Recommendation(
            rank=2, intervention="phenelzine_switch", label="Switch to an MAOI (phenelzine)",
            category=OptionCategory.switch, rationale=["two classes failed"],
            sources=[cite], source_keys=["canmat-2023"], blocked=True,
            blocked_reason="MAOI washout: 2 weeks after the last serotonergic drug"),
        Recommendation(
            rank=3, intervention="cbt", label="CBT", category=OptionCategory.psychotherapy,
            rationale=["at every stage"], sources=[cite], source_keys=["canmat-2023"],
            previously_tried=PriorUse(ids=["cbt"], outcome="partial_response",
                                      summary="14 sessions, partial response")),
    ]
    alerts = [
        Alert(severity=AlertSeverity.warning, code="tca_overdose",
              message="TCA lethality in overdose", evidence=["T4 nortriptyline"],
              sources=[cite], source_keys=["canmat-2023"]),
        Alert(severity=AlertSeverity.urgent, code="phq9_item9",
              message="PHQ-9 item 9 above 0: same-day review", sources=[cite],
              source_keys=["canmat-2023"]),
    ]
    checklist = [
        ChecklistItem(id="bipolar", domain="diagnosis", check="Bipolar features",
                      status=ChecklistStatus.to_check, sources=[cite],
                      source_keys=["canmat-2023"]),
        ChecklistItem(id="adherence", domain="adherence", check="Adherence",
                      status=ChecklistStatus.found, evidence=["T2 partial adherence"],
                      sources=[cite], source_keys=["canmat-2023"]),
    ]
    return a.model_copy(update={"recommendations": recs, "alerts": alerts,
                                "reassessment": checklist})
