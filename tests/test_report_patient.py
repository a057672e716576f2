"""The patient summary: plain words, the disclaimer, what the stage means, what the options are."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from builders import History
from test_report_support import demo, with_advice
from trdstage.cli import app
from trdstage.report.html import render_html
from trdstage.report.pdf import render_pdf
from trdstage.report.plain_language import build_patient, load_plain_language, plainify

# Clinical words a patient should not meet untranslated.
JARGON = ["augmentation", "augment", "adjunct", "MAOI", "SSRI", "SNRI", "TCA ", "adequate trial",
          "non_response", "non-response", "partial_response", "mechanism", "refractory",
          "contraindicat", "titrat", "efficacy", "pharmacogen", "CYP2", "Thase & Rush",
          "MGH", "TRD3", "Level 1", "1st line", "monotherapy", "XR", "DLPFC", "racemic", "NDRI",
          "rationale"]


def _text(html: str) -> str:
    visible = re.sub(r"<(svg|style|head)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", visible))


def _no_jargon(text: str) -> None:
    for term in JARGON:
        assert term.lower() not in text.lower(), term


@pytest.mark.parametrize("name", ["demo-complex-history.yaml", "d4-stage-five.yaml",
                                  "d5-maoi-first.yaml", "d6-no-adequate-failure.yaml"])
def test_patient_html_is_plain_and_says_not_medical_advice(name: str) -> None:
    patient, a = demo(name)
    text = _text(render_html(patient, with_advice(a), "patient"))
    _no_jargon(text)
    assert "This summary is not medical advice" in text
    assert "discuss it with your clinician" in text
    assert "What your stage means" in text and "What the options are" in text
    assert f"stage {a.staging.thase_rush.stage}." in text


def test_options_are_grouped_in_plain_words_and_blocked_ones_hidden() -> None:
    patient, a = demo()
    summary = build_patient(patient, with_advice(a))
    words = load_plain_language()
    categories = [o.category for o in summary.options]
    assert categories == ["augment", "psychotherapy"]  # the blocked switch is not offered
    assert summary.options[0].explanation == words.categories["augment"]  # type: ignore[index]
    assert summary.options[0].names == ["Aripiprazole add-on"]
    assert summary.blocked_note and summary.urgent  # urgent alert -> contact today
    assert summary.options[1].names == []  # CBT was already tried: not named as new


def test_no_advice_says_the_clinician_will_talk_about_next_steps() -> None:
    patient, a = demo()
    text = _text(render_html(patient, a, "patient"))
    assert load_plain_language().options_none in text


def test_sentences_are_short() -> None:
    patient, a = demo()
    text = _text(render_html(patient, with_advice(a), "patient"))
    body = text.split("This summary is not medical advice", 1)[1]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", body) if s.strip()]
    assert max(len(s.split()) for s in sentences) <= 32


def test_patient_pdf_is_plain_with_disclaimer() -> None:
    patient, a = demo()
    reader = PdfReader(io.BytesIO(render_pdf(patient, with_advice(a), "patient")))
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in reader.pages))
    _no_jargon(text)
    assert "This summary is not medical advice" in text
    assert sum(len(p.images) for p in reader.pages) == 1  # the symptom chart


def test_inadequate_trial_explained_plainly() -> None:
    h = History()
    h.trial("sertraline", 25, weeks=3)
    summary = build_patient(h.patient(), h.assess())
    assert "not taken long enough" in summary.treatments[0]


def test_plainify_whole_words_only() -> None:
    assert plainify("Quetiapine XR augmentation") == "Quetiapine slow-release add-on"
    assert plainify("XRAY") == "XRAY"


def test_cli_patient_audience_only_for_reports() -> None:
    result = CliRunner().invoke(app, ["assess", "src/trdstage/examples/d1-one-ssri.yaml",
                                      "--audience", "patient"])
    assert result.exit_code == 2


def test_real_advice_reaches_the_patient_in_plain_words() -> None:
    advice = pytest.importorskip("trdstage.advice", reason="the advice step (issue 4) is absent")
    for name in ("demo-complex-history.yaml", "d1-one-ssri.yaml", "d4-stage-five.yaml",
                 "d8-psychotic-augmented.yaml"):
        patient, a = demo(name)
        advised = advice.advise(patient, a)
        summary = build_patient(patient, advised)
        assert all(len(o.names) <= 3 for o in summary.options)
        _no_jargon(_text(render_html(patient, advised, "patient")))
