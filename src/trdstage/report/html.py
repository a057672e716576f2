"""Self-contained HTML reports: one file, inline CSS, charts as inline SVG, no network resource.

`render_html(patient, assessment, audience)` gives the clinician report (staging table, timeline,
symptom chart, next steps, alerts, checklist, caveats, sources) or the plain-language patient
summary. Templates ship in the package (report/templates/) and are autoescaped.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata, resources

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup
from matplotlib.figure import Figure

from trdstage.domain.patient import Patient
from trdstage.domain.results import Assessment
from trdstage.report import charts
from trdstage.report.content import (
    COURSE_COLUMNS,
    ECT_COLUMNS,
    MONITORING_COLUMNS,
    MONITORING_TRIAL_COLUMNS,
    TRIAL_COLUMNS,
    Audience,
    build_clinician,
)
from trdstage.report.plain_language import build_patient

TEMPLATES = resources.files("trdstage.report") / "templates"


@cache
def _env() -> Environment:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=False,
                      lstrip_blocks=False, keep_trailing_newline=True)
    env.globals["css"] = Markup((TEMPLATES / "base.css").read_text(encoding="utf-8"))  # noqa: S704
    return env


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def version() -> str:
    try:
        return metadata.version("trdstage")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        return "dev"


def _svg(fig: Figure | None) -> Markup:
    # Our own matplotlib output; matplotlib escapes the text it writes into the SVG.
    return Markup(charts.to_svg(fig)) if fig is not None else Markup("")  # noqa: S704


def render_html(patient: Patient, assessment: Assessment,
                audience: Audience = "clinician") -> str:
    env = _env()
    span = charts.shared_span(patient, assessment)
    if audience == "patient":
        summary = build_patient(patient, assessment)
        symptom = charts.symptom_figure(patient, assessment, "patient", span=span)
        return env.from_string(_template("patient.html.j2")).render(
            s=summary, symptom_svg=_svg(symptom), version=version())
    report = build_clinician(patient, assessment)
    timeline = charts.timeline_figure(assessment, "clinician", span=span)
    symptom = charts.symptom_figure(patient, assessment, "clinician", span=span)
    return env.from_string(_template("clinician.html.j2")).render(
        r=report, timeline_svg=_svg(timeline), symptom_svg=_svg(symptom), version=version(),
        trial_columns=TRIAL_COLUMNS, ect_columns=ECT_COLUMNS, course_columns=COURSE_COLUMNS,
        monitoring_columns=MONITORING_COLUMNS, monitoring_trial_columns=MONITORING_TRIAL_COLUMNS)
