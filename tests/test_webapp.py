"""The clinician web app through HTTP (no browser): sign-in, the history form and its messages,
the patient page, the plan, downloads, import, lists, and the security a clinician relies on."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from trdstage.service.webapp import WebSettings, create_test_app
from trdstage.service.webapp.backend import MemoryBackend
from webapp_support import USERS, csrf_of, history_form

EXAMPLES = Path(__file__).parents[1] / "src" / "trdstage" / "examples"


def _client(settings: WebSettings | None = None) -> tuple[TestClient, MemoryBackend]:
    app, backend = create_test_app(USERS, settings or WebSettings())
    return TestClient(app, base_url="https://testserver"), backend


def _sign_in(client: TestClient, name: str = "dr-ann") -> None:
    page = client.get("/app/signin")
    r = client.post("/app/signin", data={"csrf": csrf_of(page.text), "username": name,
                                         "password": USERS[name][0], "next": "/app/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def _saved(client: TestClient, local_id: str = "P-100") -> str:
    form = client.get("/app/patients/new")
    r = client.post("/app/patients/form", data=history_form(csrf_of(form.text), local_id),
                    follow_redirects=False)
    assert r.status_code == 303, re.findall(r'class="error[^"]*"[^>]*>([^<]+)', r.text)
    return str(r.headers["location"])


@pytest.fixture
def client() -> TestClient:
    c, _ = _client()
    _sign_in(c)
    return c


def stages(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="model">([^<]+)</span> <strong class="value">([^<]+)',
                           html.replace("&amp;", "&")))


def test_every_page_needs_sign_in_and_cookie_is_locked_down() -> None:
    c, backend = _client()
    for path in ("/app/", "/app/patients/new", "/app/import", "/app/admin/audit",
                 "/app/patients/x", "/app/patients/x/report.pdf"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/app/signin"), path
    page = c.get("/app/signin")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp
    bad = c.post("/app/signin", data={"csrf": csrf_of(page.text), "username": "dr-ann",
                                      "password": "wrong"})
    assert bad.status_code == 401 and "not right" in bad.text
    assert "wrong" not in json.dumps([e.detail for e in backend.audit_trail()])
    assert backend.audit_trail(action="signin")[0].outcome == "failure"


def test_forms_refuse_a_missing_csrf_token(client: TestClient) -> None:
    data = history_form("not-the-token")
    r = client.post("/app/patients/form", data=data)
    assert r.status_code == 403 and "security token" in r.text


def test_sign_in_never_redirects_off_site() -> None:
    c, _ = _client()
    page = c.get("/app/signin?next=https://evil.example/")
    assert 'value="/app/"' in page.text
    r = c.post("/app/signin", data={"csrf": csrf_of(page.text), "username": "dr-ann",
                                    "password": USERS["dr-ann"][0],
                                    "next": "//evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/app/"


def test_three_trial_history_is_stage_two_with_reasons(client: TestClient) -> None:
    page = client.get(_saved(client))
    assert page.status_code == 200
    got = stages(page.text)
    assert got["Thase & Rush staging (1997)"].startswith("Stage II:")
    assert got["Regulatory TRD definition (EMA/FDA esketamine indication)"].startswith("met")
    assert "different class: T3 venlafaxine" in page.text  # the why, per model
    assert "<details class=\"why\">" in page.text
    assert "Saved version 1 of P-100." in page.text
    assert 'id="alerts"' in page.text and 'id="next-steps"' in page.text
    assert "CANMAT 2023: 1st line" in page.text  # grades with their guideline
    assert "data:image/svg+xml;base64," in page.text  # the report's SVG charts
    assert "Timeline as a table" in page.text


def test_form_shows_the_assess_message_beside_the_field(client: TestClient) -> None:
    form = client.get("/app/patients/new")
    data = history_form(csrf_of(form.text)) | {"episodes.0.medications.1.agent": "Zolfot"}
    r = client.post("/app/patients/form", data=data)
    assert r.status_code == 422
    field = re.search(r'id="f-episodes-0-medications-1-agent"[^>]*>', r.text)
    assert field and 'aria-invalid="true"' in field.group(0)
    message = re.search(r'id="f-episodes-0-medications-1-agent-error">([^<]+)<', r.text)
    assert message and "unknown drug" in message.group(1) and "sertraline" in message.group(1)
    assert 'class="error-summary" role="alert"' in r.text
    assert 'value="Zolfot"' in r.text  # what was typed stays


def test_dose_step_period_error_lands_on_its_row(client: TestClient) -> None:
    form = client.get("/app/patients/new")
    data = history_form(csrf_of(form.text)) | {"episodes.0.medications.2.steps.0.end":
                                                 "2024-04-01"}
    r = client.post("/app/patients/form", data=data)
    assert r.status_code == 422
    assert "end 2024-04-01 is before start 2024-05-20" in r.text
    assert "episodes.0.medications.2.steps.0:" in r.text


def test_add_a_trial_without_javascript_focuses_the_new_row(client: TestClient) -> None:
    form = client.get("/app/patients/new")
    data = history_form(csrf_of(form.text)) | {"action": "add:episodes.0.medications"}
    r = client.post("/app/patients/form", data=data)
    assert r.status_code == 200
    assert re.search(r'id="f-episodes-0-medications-3-agent"[^>]* autofocus', r.text)
    assert 'value="venlafaxine"' in r.text


def test_phq9_items_fill_the_total_and_are_checked(client: TestClient) -> None:
    form = client.get("/app/patients/new")
    items = {f"episodes.0.ratings.0.items.{i}": str(v)
             for i, v in enumerate([2, 2, 2, 1, 1, 2, 2, 1, 0])}
    data = history_form(csrf_of(form.text)) | items | {
        "episodes.0.ratings.0.scale": "PHQ-9", "episodes.0.ratings.0.date": "2024-01-10"}
    assert client.post("/app/patients/form", data=data, follow_redirects=False).status_code \
        == 303
    bad = data | {"id": "P-101", "episodes.0.ratings.0.items.8": "5"}
    r = client.post("/app/patients/form", data=bad)
    assert r.status_code == 422 and "item score 5 is outside 0-3" in r.text


def test_each_save_is_a_new_version_and_old_ones_stay(client: TestClient) -> None:
    url = _saved(client)
    edit = client.get(f"{url}/edit")
    data = history_form(csrf_of(edit.text)) | {"mode": "edit", "key": url.rsplit("/", 1)[1],
                                                "episodes.0.severity": "severe"}
    r = client.post("/app/patients/form", data=data, follow_redirects=False)
    assert r.headers["location"] == url
    versions = client.get(f"{url}/versions")
    assert "Staging of version 2" in versions.text and "Staging of version 1" in versions.text
    old = client.get(f"{url}?version=1")
    assert "severity moderate" in old.text and "not the latest" in old.text
    assert "severity severe" in client.get(url).text
    again = client.post("/app/patients/form", data=history_form(csrf_of(edit.text)))
    assert again.status_code == 422 and "exists" in again.text


def test_plan_a_failed_tca_gives_stage_three_and_stores_nothing(client: TestClient) -> None:
    url = _saved(client)
    page = client.get(url)
    choice = re.search(r'<option value="(switch_tca:nortriptyline)"', page.text)
    assert choice, "the TCA switch is offered"
    r = client.get(f"{url}/plan", params={"choice": choice.group(1)})
    assert r.status_code == 200
    rows = re.findall(r'<th scope="row">([^<]+)</th><td>([^<]+)</td><td>([^<]+)',
                      r.text.replace("&amp;", "&"))
    tr = dict((name, (before, after)) for name, before, after in rows)["Thase & Rush staging "
                                                                       "(1997)"]
    assert tr[0].startswith("Stage II:") and tr[1].startswith("Stage III:")
    assert "Not stored" in r.text
    assert "Version 1," in client.get(url).text
    assert len(client.get(f"{url}/versions").text.split("Staging of version")) == 2


def test_downloads_are_audited_and_the_pdf_reads(client: TestClient) -> None:
    c, backend = _client()
    _sign_in(c)
    url = _saved(c)
    pdf = c.get(f"{url}/report.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Stage II" in text and "P-100" in text
    summary = c.get(f"{url}/summary.html")
    assert summary.status_code == 200 and "sandbox" in summary.headers[
        "content-security-policy"]
    note = c.get(f"{url}/note.txt")
    assert "Thase & Rush staging (1997): Stage II" in note.text
    assert "not a medical device" in note.text.lower()
    downloads = backend.audit_trail(action="download")
    assert [e.detail.split(",")[0] for e in reversed(downloads)] == [
        "report.pdf", "summary.html", "note.txt"]
    assert all(e.who == "dr-ann" for e in downloads)


def test_checklist_marks_are_kept_with_who(client: TestClient) -> None:
    url = _saved(client)
    page = client.get(url)
    items = re.findall(r'name="checked" value="([^"]+)"', page.text)
    assert items
    data = {"csrf": csrf_of(page.text), "policy": "default", "as_of": "2026-01-01",
            "item": items, "checked": [items[0]]}
    r = client.post(f"{url}/checklist", data=data, follow_redirects=True)
    assert re.search(rf'id="chk-{re.escape(items[0])}"[^>]* checked', r.text)
    assert "Checked by dr-ann" in r.text


def test_policy_switch_restages(client: TestClient) -> None:
    url = _saved(client)
    r = client.get(url, params={"policy": "lifetime", "as_of": "2025-01-01"})
    assert "Policy used: <strong>lifetime</strong>" in r.text
    assert client.get(url, params={"policy": "nope"}).status_code == 400


def test_import_fhir_bundle_lists_the_data_used(client: TestClient) -> None:
    page = client.get("/app/import")
    bundle = (EXAMPLES / "fhir" / "trd-fhir-example.json").read_bytes()
    r = client.post("/app/import", data={"csrf": csrf_of(page.text)},
                    files={"file": ("bundle.json", bundle, "application/fhir+json")})
    assert r.status_code == 200, r.text[:500]
    assert "FHIR resources read and what each became" in r.text
    assert "MedicationRequest/" in r.text or "MedicationStatement/" in r.text
    assert "Read but not used, or changed, and why" in r.text
    bad = client.post("/app/import", data={"csrf": csrf_of(page.text)},
                      files={"file": ("x.yaml", b"id: x\nepisodes: []\n", "text/yaml")})
    assert bad.status_code == 422 and "x.yaml: episodes" in bad.text


def test_import_native_file(client: TestClient) -> None:
    page = client.get("/app/import")
    native = (EXAMPLES / "d3-lithium-augmentation.yaml").read_bytes()
    r = client.post("/app/import", data={"csrf": csrf_of(page.text)},
                    files={"file": ("d3.yaml", native, "text/yaml")})
    assert r.status_code == 200 and "Staging for D3" in r.text


def test_patients_are_private_to_their_account() -> None:
    c, _ = _client()
    _sign_in(c)
    url = _saved(c)
    other, _ = TestClient(c.app, base_url="https://testserver"), None
    _sign_in(other, "root")
    assert other.get(url).status_code == 404
    assert "P-100" not in other.get("/app/").text


def test_lists_search_and_admin_pages() -> None:
    c, backend = _client()
    _sign_in(c)
    _saved(c)
    _saved(c, "Q-7")
    home = c.get("/app/", params={"q": "q-7"})
    assert "Q-7" in home.text and ">P-100<" not in home.text
    assert "Recent assessments" in home.text
    assert c.get("/app/admin/accounts").status_code == 403
    admin = TestClient(c.app, base_url="https://testserver")
    _sign_in(admin, "root")
    assert "dr-ann" in admin.get("/app/admin/accounts").text
    trail = admin.get("/app/admin/audit", params={"who": "dr-ann", "action": "create"})
    assert trail.text.count("<td>create</td>") == 2
    export = admin.get("/app/admin/audit.json", params={"who": "dr-ann"})
    bundle = export.json()
    assert bundle["resourceType"] == "Bundle"
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    assert backend.audit_trail(action="download")[0].what == "audit"


def test_idle_time_out_signs_out(monkeypatch: pytest.MonkeyPatch) -> None:
    c, _ = _client(WebSettings(idle_minutes=0.001))
    _sign_in(c)
    import time

    time.sleep(0.1)
    r = c.get("/app/", follow_redirects=False)
    assert r.status_code == 303 and "timeout=1" in r.headers["location"]
    page = c.get(r.headers["location"])
    assert "signed out after" in page.text


def test_sign_out_ends_the_session(client: TestClient) -> None:
    home = client.get("/app/")
    r = client.post("/app/signout", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/app/", follow_redirects=False).status_code == 303


def test_frame_ancestors_are_the_configured_ehrs() -> None:
    from trdstage.service.webapp.settings import SmartEhr

    settings = WebSettings(ehrs=(SmartEhr("https://ehr.example.org/fhir", "c", "s",
                                          "https://app.example.org/app/smart/callback"),))
    c, _ = _client(settings)
    csp = c.get("/app/signin").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://ehr.example.org;" in csp
    r = c.get("/app/launch", params={"iss": "https://other.example.org/fhir", "launch": "x"})
    assert r.status_code == 400 and "not registered" in r.text


def test_agent_check_and_htmx_served_locally(client: TestClient) -> None:
    js = client.get("/app/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:2000]
    page = client.get("/app/patients/new")
    assert 'src="/app/static/htmx.min.js"' in page.text and "https://" not in re.sub(
        r"<p class=\"small\">.*?</p>", "", page.text.split("<datalist")[0], flags=re.S)
    assert '<option value="Prozac">fluoxetine</option>' in page.text
    r = client.post("/app/check-agent", data={"csrf": csrf_of(page.text),
                                              "episodes.0.medications.0.agent": "Prozac"})
    assert r.text == "read as fluoxetine"
