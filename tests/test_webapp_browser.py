"""The web app in a real browser (Playwright driving the system Chromium, headless): a clinician
signs in, enters a three-trial history with the keyboard only, sees Thase & Rush stage II and
why, plans a failed TCA (stage III), downloads the PDF; an EHR launches the app (SMART, against
the loopback test EHR); axe finds no serious or critical violation on any page; each page is
photographed (docs/img/app-*.png with TRDSTAGE_SCREENSHOTS=1)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from trdstage.service.sandbox_smart import build_app, example_sandbox
from trdstage.service.webapp import WebSettings, create_test_app
from trdstage.service.webapp.settings import SmartEhr
from webapp_support import CLIENT_ID, CLIENT_SECRET, TRIALS, USERS, free_port, serve

CHROMIUM = os.environ.get("TRDSTAGE_CHROMIUM", "/usr/bin/chromium")
# Screenshots go to docs/img with TRDSTAGE_SCREENSHOTS=1 (refreshing the docs), else to a
# temporary folder.
IMG = (Path(__file__).parents[1] / "docs" / "img" if os.environ.get("TRDSTAGE_SCREENSHOTS")
       else Path(tempfile.gettempdir()) / "trdstage-screenshots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: run `make system-deps` (scripts/system-deps.sh)")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    app_port, ehr_port = free_port(), free_port()
    app_url = f"http://localhost:{app_port}"
    sandbox = example_sandbox(f"http://127.0.0.1:{ehr_port}", CLIENT_ID, CLIENT_SECRET, app_url)
    settings = WebSettings(ehrs=(SmartEhr(sandbox.iss, CLIENT_ID, CLIENT_SECRET,
                                          f"{app_url}/app/smart/callback", "Test EHR"),))
    app, backend = create_test_app(USERS, settings)
    with serve(build_app(sandbox), ehr_port), serve(app, app_port):
        yield {"app": app_url, "ehr": sandbox, "backend": backend}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _axe(page: Any, name: str, full: bool = True) -> None:
    """No serious or critical axe violation; a screenshot for the docs."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: {bad}"
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / f"app-{name}.png"), full_page=full)


def _type_trial(page: Any, agent: str, start: str, end: str, dose: str) -> None:
    """From the focused agent field: agent, adherence, outcome, one dose step."""
    k = page.keyboard
    k.type(agent)
    k.press("Escape")  # close the datalist suggestions
    k.press("Tab")
    k.type("good")  # adherence select
    k.press("Tab")
    k.type("non")  # outcome select: "non response"
    k.press("Tab")
    k.type(start)
    k.press("Tab")
    k.type(end)
    k.press("Tab")
    k.type(dose)


def test_clinician_journey_by_keyboard(servers: dict[str, Any], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    base = servers["app"]
    page.goto(f"{base}/app/")
    assert "/app/signin" in page.url
    _axe(page, "signin")
    k = page.keyboard
    k.type("dr-ann")  # the account field has the focus
    k.press("Tab")
    k.type(USERS["dr-ann"][0])
    k.press("Enter")
    page.wait_for_url(f"{base}/app/")
    _axe(page, "patients-empty")

    page.goto(f"{base}/app/patients/new")
    assert page.evaluate("document.activeElement.name") == "id"
    k.type("P-200")
    for value in ("1980-04-02", "fem"):  # birth date, sex
        k.press("Tab")
        k.type(value)
    k.press("Tab")  # flags
    k.press("Tab")  # other medications
    k.press("Tab")
    k.type("2024-01-02")  # episode onset
    k.press("Tab")  # end
    k.press("Tab")
    k.type("mod")  # severity
    k.press("Tab")  # psychotic features
    k.press("Tab")  # episode flags
    k.press("Tab")
    for i, trial in enumerate(TRIALS):
        _type_trial(page, *trial)
        if i < len(TRIALS) - 1:
            for _ in range(4):  # add step, add augmenter, remove trial, add a trial
                k.press("Tab")
            assert page.evaluate("document.activeElement.value") == \
                "add:episodes.0.medications"
            with page.expect_navigation():
                k.press("Enter")
            assert page.evaluate("document.activeElement.name") == \
                f"episodes.0.medications.{i + 1}.agent"
    _axe(page, "history")
    with page.expect_navigation():
        k.press("Enter")  # the form's default button: save and stage
    assert page.locator(".error-summary").count() == 0, page.locator(".error-summary").inner_text()
    assert page.get_by_text("Saved version 1 of P-200.").is_visible()
    tr = page.locator("ul.stages li").first.inner_text()
    assert "Thase & Rush" in tr and "Stage II:" in tr
    why = page.locator("details.why summary", has_text="Why: Thase & Rush")
    why.focus()
    k.press("Enter")
    assert page.get_by_text("different class: T3 venlafaxine").is_visible()
    _axe(page, "patient", full=False)
    for section in ("next-steps", "timeline", "share"):
        page.locator(f"#{section}").screenshot(path=str(IMG / f"app-patient-{section}.png"))
    patient_url = page.url

    page.locator("#plan-choice").select_option("switch_tca:nortriptyline")
    page.locator("#plan-choice").focus()
    k.press("Tab")  # weeks
    k.press("Tab")
    k.press("Enter")  # show the stages if it fails
    page.wait_for_url("**/plan?**")
    assert page.locator("table.compare").count() == 1, page.url + page.content()[:1500]
    row = page.locator("table.compare tbody tr").first.inner_text()
    assert "Stage II:" in row and "Stage III:" in row
    _axe(page, "plan")

    page.goto(patient_url)
    with page.expect_download() as download:
        page.get_by_role("link", name="Clinician report (PDF)").click()
    data = Path(download.value.path()).read_bytes()
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Stage II" in text and "P-200" in text

    page.goto(f"{patient_url.split('?')[0]}/versions")
    _axe(page, "versions")
    page.goto(f"{base}/app/import")
    _axe(page, "import")
    page.goto(f"{base}/app/")
    _axe(page, "patients")

    # an error beside its field, announced
    page.goto(f"{base}/app/patients/new")
    k.type("P-201")
    page.locator("[name='episodes.0.onset']").fill("2024-01-02")
    page.locator("[name='episodes.0.medications.0.agent']").fill("Zolfot")
    page.locator("[name='episodes.0.medications.0.steps.0.start']").fill("2024-01-10")
    with page.expect_navigation():
        page.get_by_role("button", name="Save and stage").first.click()
    assert page.locator("#f-episodes-0-medications-0-agent-error").inner_text().startswith(
        "unknown drug 'Zolfot'")
    _axe(page, "history-error")
    context.close()


def test_admin_pages(servers: dict[str, Any], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    base = servers["app"]
    page.goto(f"{base}/app/signin")
    page.get_by_label("Account name").fill("root")
    page.get_by_label("Password").fill(USERS["root"][0])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/app/")
    page.goto(f"{base}/app/admin/accounts")
    _axe(page, "accounts")
    page.goto(f"{base}/app/admin/audit")
    assert page.locator("table tbody tr").count() > 0
    _axe(page, "audit")
    context.close()


def test_smart_ehr_launch_in_the_browser(servers: dict[str, Any], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    ehr = servers["ehr"]
    page.goto(f"{ehr.base_url}/ehr")
    page.get_by_role("link", name="Open trdstage for this patient").click()
    page.wait_for_url(f"{servers['app']}/app/patients/*")
    assert page.get_by_role("heading", name="Staging for trd-fhir-1@127.0.0.1", exact=False
                            ).is_visible()
    assert page.locator(".banner").is_visible()
    assert "Practitioner/sandbox-clinician" in page.locator(".who").inner_text()
    cookies = context.cookies()
    assert all(c["httpOnly"] for c in cookies if c["name"] == "trdstage_app")
    assert not any(t in page.content() for t in ehr.tokens)
    _axe(page, "smart-patient", full=False)
    page.goto(f"{servers['app']}/app/smart/callback?state=forged&code=x")
    assert page.get_by_text("does not match a launch in progress").is_visible()
    page.goto(f"{servers['app']}/app/smart")
    _axe(page, "smart")
    context.close()
