"""Pure domain types: no I/O, no knowledge, no engine.

The names load with their module on first use (PEP 562): the cohort engine, which needs the
policy and the enums, starts without building the patient models."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trdstage.domain.enums import (
        Adherence,
        AgentRole,
        ConcurrentUse,
        CourseKind,
        Laterality,
        Outcome,
        Scale,
        Severity,
        Sex,
    )
    from trdstage.domain.patient import (
        AddedAgent,
        DoseStep,
        ECTCourse,
        Episode,
        ItemReading,
        MedicationRegimen,
        Patient,
        RatingReading,
        TreatmentCourse,
    )
    from trdstage.domain.policy import MissingDose, Policy, Scope, StageOrder, Taxonomy

_MODULE_OF = {
    **dict.fromkeys(("Adherence", "AgentRole", "ConcurrentUse", "CourseKind", "Laterality",
                     "Outcome", "Scale", "Severity", "Sex"), "enums"),
    **dict.fromkeys(("AddedAgent", "DoseStep", "ECTCourse", "Episode", "ItemReading",
                     "MedicationRegimen", "Patient", "RatingReading", "TreatmentCourse"),
                    "patient"),
    **dict.fromkeys(("MissingDose", "Policy", "Scope", "StageOrder", "Taxonomy"), "policy"),
}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AddedAgent",
    "Adherence",
    "AgentRole",
    "ConcurrentUse",
    "CourseKind",
    "DoseStep",
    "ECTCourse",
    "Episode",
    "ItemReading",
    "Laterality",
    "MedicationRegimen",
    "MissingDose",
    "Outcome",
    "Patient",
    "Policy",
    "RatingReading",
    "Scale",
    "Scope",
    "Severity",
    "Sex",
    "StageOrder",
    "Taxonomy",
    "TreatmentCourse",
]
