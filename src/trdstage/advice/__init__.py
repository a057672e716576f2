"""Decision support on top of a staged assessment: ranked next steps, safety alerts, a
reassessment checklist, pharmacogenomics and symptom monitoring.

`advise(patient, assessment)` returns the assessment with `recommendations`, `alerts`,
`reassessment` and `monitoring` filled. The staging engine never imports this package.
"""

from __future__ import annotations

from trdstage.advice.context import build_context
from trdstage.advice.monitoring import monitor
from trdstage.advice.next_steps import recommend
from trdstage.advice.pharmacogenomics import advises_alternative, findings_for
from trdstage.advice.reassessment import reassess, unknown_flags
from trdstage.advice.safety import current_alerts
from trdstage.domain import Patient
from trdstage.domain.advice import Alert, AlertSeverity, Monitoring
from trdstage.domain.results import Assessment
from trdstage.knowledge.advice_schema import AdviceKnowledge, load_advice_knowledge

_SEVERITY_ORDER = {s: i for i, s in enumerate(AlertSeverity)}



def advise(patient: Patient, assessment: Assessment,
           knowledge: AdviceKnowledge | None = None) -> Assessment:
    """The assessment with next steps, alerts, the reassessment checklist and monitoring."""
    k = knowledge or load_advice_knowledge()
    ctx = build_context(patient, assessment, k)
    monitoring, monitoring_alerts = monitor(ctx)
    if assessment.deceased:
        return _deceased(assessment, monitoring)
    early = {t.trial_id: t.early_improvement for t in monitoring.trials}
    recommendations = recommend(ctx, early)
    alerts = [*monitoring_alerts, *current_alerts(ctx)]
    current_ads = [u.name for u in ctx.current if u.role == "antidepressant"]
    for finding in findings_for(ctx, current_ads, "current"):
        steer = advises_alternative(finding)
        strength = f" ({finding.strength})" if finding.strength else ""
        alerts.append(Alert(
            severity=AlertSeverity.warning if steer else AlertSeverity.info,
            code=f"cpic_{finding.status}", subjects=[finding.drug],
            message=f"CPIC, {finding.drug}{strength}: {finding.recommendation}",
            evidence=[f"{p.gene} {p.phenotype} ({p.basis})" for p in finding.phenotypes],
            sources=finding.sources, source_keys=finding.source_keys))
    for note in ctx.pgx_notes:
        alerts.append(Alert(severity=AlertSeverity.info, code="pgx_diplotype_not_interpreted",
                            message=note, sources=[k.cite("cpic-cyp2d6-activity-score")],
                            source_keys=["cpic-cyp2d6-activity-score"]))
    if ctx.unresolved_other:
        alerts.append(Alert(
            severity=AlertSeverity.warning, code="other_medication_not_recognised",
            message="Co-medication(s) not recognised by the interaction checks, so no "
            "interaction alert can be given for them: " + ", ".join(ctx.unresolved_other)
            + ". Check interactions by hand or give the generic name.",
            subjects=list(ctx.unresolved_other)))
    unknown = unknown_flags(ctx)
    if unknown:
        alerts.append(Alert(severity=AlertSeverity.info, code="flag_not_recognised",
                            message="Flag(s) not in the documented vocabulary, not used by the "
                            "advice: " + ", ".join(unknown), subjects=unknown,
                            sources=[k.cite(k.reassessment.flags_source)],
                            source_keys=[k.reassessment.flags_source]))
    alerts.sort(key=lambda a: _SEVERITY_ORDER[a.severity])
    return assessment.model_copy(update={
        "recommendations": recommendations,
        "alerts": alerts,
        "reassessment": reassess(ctx),
        "monitoring": monitoring,
    })


def _deceased(assessment: Assessment, monitoring: Monitoring) -> Assessment:
    """No next steps, safety alerts or checklist for a patient who has died: the record is
    staged as history only, and the result says why."""
    when = f" on {assessment.death_date.isoformat()}" if assessment.death_date else ""
    alert = Alert(severity=AlertSeverity.info, code="patient_deceased", subjects=[],
                  message=f"The patient is recorded as deceased{when}: no next steps, safety "
                  "alerts or reassessment checklist are given; the staging describes the "
                  "treatment history up to death.",
                  evidence=[f"death date {assessment.death_date.isoformat()}"
                            if assessment.death_date else "deceased, date not recorded"])
    monitoring = monitoring.model_copy(update={"alert_codes": []})
    return assessment.model_copy(update={
        "recommendations": [], "alerts": [alert], "reassessment": [], "monitoring": monitoring})


__all__ = ["advise"]
