"""trdstage: stage treatment-resistant depression under published models and support the next
treatment decision. Decision support, not a medical device.

    from trdstage import evaluate
    result = evaluate(patient, as_of=date(2026, 1, 1))   # staging + advice

`evaluate` composes the staging engine (`trdstage.engine.assess`) with the advice layer
(`trdstage.advice.advise`); the engine itself never imports the advice.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (imported where used: `import trdstage.cohort` needs no patient model)
    from trdstage.domain import Patient, Policy
    from trdstage.domain.results import Assessment


def evaluate(patient: Patient, as_of: date | None = None,
             policy: Policy | str = "default") -> Assessment:
    """Stage `patient` under every model, then add next steps, alerts, the reassessment
    checklist and symptom monitoring."""
    from trdstage.advice import advise
    from trdstage.engine import assess

    return advise(patient, assess(patient, as_of=as_of, policy=policy))


__all__ = ["evaluate"]
