"""The HTML report: self-contained, every section present, advice sections when filled, and it
renders in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_report_support import AS_OF, demo, with_advice
from trdstage.cli import app
from trdstage.report.content import NOT_AVAILABLE
from trdstage.report.html import render_html

SECTIONS = ["At a glance", "Alerts", "Staging across models", "Treatment timeline",
            "Symptoms over time", "Next steps to consider", "Reassessment checklist", "Caveats",
            "Sources"]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_clinician_report_has_every_section_and_model() -> None:
    patient, a = demo()
    html = render_html(patient, a)
    text = _text(html)
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in html
    for result in (a.staging.thase_rush, a.staging.mgh, a.staging.maudsley, a.staging.european,
                   a.staging.regulatory):
        assert result.name.replace("&", "&amp;") in html
    assert "Stage III" in text and "Score 9" in text
    assert "Decision-support notice" in text and a.disclaimer.split(":")[0] in text
    assert html.count("<svg") >= 2  # timeline and symptom chart, inline
    assert "thase-rush-1997" in text and "cbe1885-phq9-response" in text  # sources


def test_missing_advice_says_not_available() -> None:
    patient, a = demo()
    a = a.model_copy(update={"recommendations": [], "alerts": [], "reassessment": []})
    html = render_html(patient, a)
    assert html.count(NOT_AVAILABLE.split(" (")[0]) >= 3  # alerts, next steps, checklist


def test_advice_sections_render_with_blocked_option_and_reason() -> None:
    patient, a = demo()
    html = render_html(patient, with_advice(a))
    text = _text(html)
    assert NOT_AVAILABLE.split(" (")[0] not in text
    assert "Aripiprazole augmentation" in text and "2-15 mg/day" in text
    assert "CANMAT 2023: 1st line, Level 1" in text
    assert "Blocked: MAOI washout" in text
    assert "Already used (cbt)" in text
    assert text.index("urgent") < text.index("TCA lethality")  # most pressing first
    assert "to check" in text and "T2 partial adherence" in text


def test_report_is_self_contained() -> None:
    patient, a = demo()
    html = render_html(patient, with_advice(a))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "@import" not in html


def test_user_text_is_escaped() -> None:
    patient, a = demo()
    a = a.model_copy(update={"patient_id": "<script>alert(1)</script>"})
    html = render_html(patient, a)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_cli_writes_html_report(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    example = Path(__file__).parent.parent / "src/trdstage/examples/d2-ssri-snri.yaml"
    result = CliRunner().invoke(app, ["assess", str(example), "--as-of", AS_OF.isoformat(),
                                      "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "<h2>Staging across models</h2>" in out.read_text(encoding="utf-8")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _headless(binary: str, profile: Path) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (scripts/system-deps.sh installs it for "
                    "`make test`; it needs root and apt-get)")
    folder = tmp_path_factory.mktemp("chromium")
    patient, a = demo()
    page = folder / "report.html"
    page.write_text(render_html(patient, with_advice(a)), encoding="utf-8")
    dom = subprocess.run([*_headless(binary, folder / "p1"), "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    shot = folder / "report.png"
    subprocess.run([*_headless(binary, folder / "p2"), "--window-size=1000,2400",
                    f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return dom, shot, page


def test_chromium_renders_every_section(rendered: tuple[str, Path, Path]) -> None:
    dom, _, _ = rendered
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in dom
    assert dom.count("<svg") >= 2


def test_chromium_screenshot_is_not_blank(rendered: tuple[str, Path, Path]) -> None:
    from PIL import Image

    _, shot, _ = rendered
    assert shot.exists() and shot.stat().st_size > 20_000
    image = Image.open(shot).convert("L")
    histogram = image.histogram()
    white = sum(histogram[245:])
    inked = sum(histogram[:128])
    total = image.width * image.height
    assert 0.003 < inked / total < 0.5  # text and charts, not an empty page
    assert white / total > 0.4  # and not a black or error page
