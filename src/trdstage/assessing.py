"""One assessment from input to output, shared by the command line and the service.

`run` stages a patient and adds the advice, with the reader's warnings first; `render`
produces one output format; `ReadInput` is what a reader gives them (the patient, its
warnings, and for FHIR input where each id came from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from trdstage.adapters.errors import InputError
from trdstage.domain.patient import Patient
from trdstage.domain.policy import Policy
from trdstage.domain.results import Assessment, Notice

OutputFormat = Literal["text", "json", "markdown", "html", "pdf", "fhir"]
Audience = Literal["clinician", "patient"]


@dataclass
class ReadInput:
    """What was read: the patient, the reader's warnings, and (FHIR input) where each domain
    id came from (for `derivedFrom` and Provenance)."""

    patient: Patient
    notices: list[Notice] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    fhir: bool = False


def run(patient: Patient, *, as_of: date, policy: Policy,
        notices: list[Notice] | None = None) -> Assessment:
    """Stage under every model, add the advice, put the reader's warnings first."""
    from trdstage.advice import advise
    from trdstage.engine import assess

    result = advise(patient, assess(patient, as_of=as_of, policy=policy))
    if notices:
        result = result.model_copy(update={"warnings": [*notices, *result.warnings]})
    return result


def render(patient: Patient, result: Assessment, fmt: OutputFormat,
           audience: Audience = "clinician",
           sources: dict[str, list[str]] | None = None) -> str | bytes:
    """One output format (a PDF is bytes, the others text). The report renderers are
    imported here: matplotlib is only loaded when a report is asked."""
    if fmt == "fhir":
        from trdstage.adapters.fhir.write import render_fhir

        return render_fhir(result, sources)
    if fmt == "html":
        from trdstage.report.html import render_html

        return render_html(patient, result, audience)
    if fmt == "pdf":
        from trdstage.report.pdf import render_pdf

        return render_pdf(patient, result, audience)
    if audience != "clinician":
        raise InputError("audience", "the patient summary is an HTML or PDF report")
    from trdstage.report import RENDERERS

    return RENDERERS[fmt](result)
