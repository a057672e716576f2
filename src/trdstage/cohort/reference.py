"""The per-person reference: the cohort's output columns computed from `engine.assess` on the
OMOP adapter's Patient (what `trdstage assess` computes for that person). The equivalence tests
hold every cohort engine to it."""

from __future__ import annotations

from datetime import date
from typing import Any

from trdstage.adapters.omop import AdapterResult
from trdstage.domain import CourseKind, Policy
from trdstage.domain.results import Assessment
from trdstage.engine import assess

COMPARED = ("n_episodes", "sex", "age", "episode_onset", "thase_rush_stage", "mgh_score",
            "maudsley_score", "maudsley_band", "european_category", "regulatory_met",
            "regulatory_first_met", "failed_trials", "trials", "adequate_trials",
            "duration_only_trials", "ect_courses", "rtms_courses", "severity", "bipolar",
            "psychosis")


def reference_row(
    result: AdapterResult, as_of: date, policy: Policy | str
) -> dict[str, Any] | None:
    """The cohort row `engine.assess` gives for the adapter's Patient (None when excluded)."""
    if result.patient is None:
        return None
    a: Assessment = assess(result.patient, as_of=as_of, policy=policy)
    s = a.staging
    scoped = [t for t in a.trials if t.in_scope]
    flags = set(a.episode.flags)
    yob = result.year_of_birth
    return {
        "person_id": int(result.patient.id),
        "n_episodes": result.n_episodes,
        "sex": result.patient.sex.value,
        "age": None if yob is None else as_of.year - yob,
        "episode_onset": a.episode.onset,
        "thase_rush_stage": s.thase_rush.stage,
        "mgh_score": float(s.mgh.score),
        "maudsley_score": s.maudsley.score,
        "maudsley_band": s.maudsley.band,
        "european_category": s.european.category,
        "regulatory_met": s.regulatory.met,
        "regulatory_first_met": s.regulatory.first_met,
        "failed_trials": sum(t.failed for t in scoped),
        "trials": len(scoped),
        "adequate_trials": sum(t.adequate for t in scoped),
        "duration_only_trials": sum(t.duration_only for t in scoped),
        "ect_courses": sum(c.in_scope for c in a.ect),
        "rtms_courses": sum(c.in_scope and c.kind is CourseKind.rtms for c in a.courses),
        "severity": a.episode.severity.value if a.episode.severity else None,
        "bipolar": "bipolar_features" in flags,
        "psychosis": "psychotic_disorder" in flags,
    }


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    """A cohort output row (from Arrow `to_pylist`) restricted to the compared columns."""
    return {key: row.get(key) for key in ("person_id", *COMPARED)}


__all__ = ["COMPARED", "normalise", "reference_row"]
