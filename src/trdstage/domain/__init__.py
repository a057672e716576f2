"""Pure domain types: no I/O, no knowledge, no engine."""

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
    MedicationRegimen,
    Patient,
    RatingReading,
    TreatmentCourse,
)
from trdstage.domain.policy import MissingDose, Policy, Scope, StageOrder, Taxonomy

__all__ = [
    "AddedAgent",
    "Adherence",
    "AgentRole",
    "ConcurrentUse",
    "CourseKind",
    "DoseStep",
    "ECTCourse",
    "Episode",
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
