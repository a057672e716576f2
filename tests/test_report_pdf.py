"""The PDF report opens, carries the same content as the HTML report and embeds its charts."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from test_report_support import AS_OF, demo, with_advice
from trdstage.cli import app
from trdstage.report.pdf import render_pdf


def _read(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return reader, re.sub(r"\s+", " ", text)


def _images(reader: PdfReader) -> int:
    return sum(len(page.images) for page in reader.pages)


def test_clinician_pdf_has_models_stage_disclaimer_and_charts() -> None:
    patient, a = demo()
    reader, text = _read(render_pdf(patient, a))
    assert data_is_pdf(render_pdf(patient, a))
    for name in ("Thase & Rush", "MGH staging score", "Maudsley Staging Method",
                 "European staging model", "Regulatory TRD"):
        assert name in text
    assert "Stage III" in text and "TRD3" in text
    assert "Decision support, not a medical device" in text
    assert "Treatment timeline" in text and "Symptoms over time" in text
    assert _images(reader) == 2  # timeline and symptom chart
    assert "Not available" in text  # no advice step ran


def test_pdf_renders_advice_and_unicode() -> None:
    patient, a = demo()
    a = with_advice(a).model_copy(update={"patient_id": "Åsberg–≥"})
    _, text = _read(render_pdf(patient, a))
    assert "Aripiprazole augmentation" in text and "Blocked: MAOI washout" in text
    assert "Reassessment checklist" in text and "T2 partial adherence" in text
    assert "Åsberg–≥" in text


def test_pdf_without_ratings_has_only_the_timeline() -> None:
    patient, a = demo("d2-ssri-snri.yaml")
    reader, text = _read(render_pdf(patient, a))
    assert _images(reader) == 1
    assert "No rating-scale reading" in text


def test_pdf_is_reproducible() -> None:
    patient, a = demo()
    assert render_pdf(patient, a) == render_pdf(patient, a)


def data_is_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def test_cli_pdf_needs_output_on_a_terminal_and_writes_file(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "src/trdstage/examples/d4-stage-five.yaml"
    out = tmp_path / "sub" / "r.pdf"
    args = ["assess", str(example), "--as-of", AS_OF.isoformat(), "--format", "pdf"]
    result = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert data_is_pdf(out.read_bytes())
    piped = CliRunner().invoke(app, args)  # not a terminal: bytes to standard output
    assert piped.exit_code == 0 and data_is_pdf(piped.stdout_bytes)


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="pdftoppm (poppler-utils) not installed; the text and image checks "
                    "above still run")
def test_first_page_rasterises_with_ink(tmp_path: Path) -> None:
    from PIL import Image

    patient, a = demo()
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render_pdf(patient, a))
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "2", "-l", "2", str(pdf),
                    str(tmp_path / "p")], check=True, timeout=60)
    page = Image.open(next(tmp_path.glob("p*.png"))).convert("RGB")
    colours = page.getcolors(maxcolors=1_000_000) or []
    blue = sum(n for n, (r, g, b) in colours if b > 150 and r < 80)  # the SSRI bar
    assert blue > 50


def test_real_advice_renders_in_both_formats() -> None:
    advice = pytest.importorskip("trdstage.advice", reason="the advice step (issue 4) is absent")
    patient, a = demo()
    advised = advice.advise(patient, a)
    _, text = _read(render_pdf(patient, advised))
    assert "Not available" not in text
    first = min(advised.recommendations, key=lambda r: r.rank)
    assert first.label.split()[0] in text
    assert "Reassessment checklist" in text
