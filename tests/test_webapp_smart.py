"""SMART App Launch against the loopback test EHR (authorization + FHIR server started here):
EHR launch and standalone launch end on the staged patient; PKCE, state, iss, code reuse and
the client secret are all checked; the access token never reaches the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from trdstage.service.sandbox_smart import SmartSandbox, build_app, example_sandbox, s256
from trdstage.service.webapp import WebSettings, create_test_app
from trdstage.service.webapp.settings import SmartEhr
from webapp_support import CLIENT_ID, CLIENT_SECRET, USERS, free_port, serve

APP = "https://testserver"


@dataclass
class Env:
    ehr: SmartSandbox
    client: TestClient
    backend: object


@pytest.fixture(scope="module")
def ehr() -> Iterator[SmartSandbox]:
    port = free_port()
    sandbox = example_sandbox(f"http://127.0.0.1:{port}", CLIENT_ID, CLIENT_SECRET, APP)
    with serve(build_app(sandbox), port):
        yield sandbox


@pytest.fixture
def env(ehr: SmartSandbox) -> Env:
    settings = WebSettings(ehrs=(SmartEhr(ehr.iss, CLIENT_ID, CLIENT_SECRET,
                                          f"{APP}/app/smart/callback", name="Test EHR"),))
    app, backend = create_test_app(USERS, settings)
    return Env(ehr, TestClient(app, base_url=APP), backend)


def _authorize(env: Env, launch_url: str) -> httpx.Response:
    """The app's redirect to the EHR, then the EHR's answer (a redirect to the callback)."""
    r = env.client.get(launch_url, follow_redirects=False)
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(env.ehr.base_url + "/auth/authorize")
    return httpx.get(authorize, follow_redirects=False, timeout=10)


def _ehr_launch(env: Env) -> str:
    r = httpx.get(f"{env.ehr.base_url}/ehr/launch", params={"patient": "trd-fhir-1"},
                  follow_redirects=False, timeout=10)
    launch = r.headers["location"]
    assert launch.startswith(f"{APP}/app/launch?iss=")
    return launch.removeprefix(APP)


def test_ehr_launch_reads_the_record_and_stages_it(env: Env) -> None:
    answer = _authorize(env, _ehr_launch(env))
    sent = parse_qs(urlsplit(answer.request.url.__str__()).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["aud"] == [env.ehr.iss]
    assert "launch" in sent["scope"][0].split() and "patient/Patient.rs" in sent["scope"][0]
    assert len(sent["state"][0]) >= 40  # 256 bits, URL-safe
    callback = answer.headers["location"]
    assert callback.startswith(f"{APP}/app/smart/callback?")
    r = env.client.get(callback.removeprefix(APP), follow_redirects=True)
    assert r.status_code == 200, r.text[:800]
    assert "Staging for trd-fhir-1@127.0.0.1" in r.text
    assert "Stage under each model" in r.text
    assert "FHIR resources read and what each became" in r.text
    assert 'class="banner"' in r.text  # need_patient_banner true
    assert "Signed in as " + env.ehr.iss + "/Practitioner/sandbox-clinician" in r.text
    for token in env.ehr.tokens:
        assert token not in r.text and token not in str(r.headers)
    cookie = r.history[0].headers["set-cookie"] if r.history else ""
    assert "HttpOnly" in cookie


def test_standalone_launch(env: Env) -> None:
    answer = _authorize(env, f"/app/launch?iss={env.ehr.iss}")
    assert "launch%2Fpatient" in str(answer.request.url)
    r = env.client.get(answer.headers["location"].removeprefix(APP), follow_redirects=True)
    assert r.status_code == 200 and "Staging for trd-fhir-1@" in r.text


def test_wrong_or_reused_state_is_refused(env: Env) -> None:
    answer = _authorize(env, _ehr_launch(env))
    callback = answer.headers["location"].removeprefix(APP)
    forged = re.sub(r"state=[^&]+", "state=forged-state", callback)
    r = env.client.get(forged)
    assert r.status_code == 400 and "does not match a launch in progress" in r.text
    assert env.client.get(callback, follow_redirects=True).status_code == 200
    again = env.client.get(callback)
    assert again.status_code == 400  # each state once


def test_unregistered_iss_is_refused(env: Env) -> None:
    r = env.client.get("/app/launch", params={"iss": "http://127.0.0.1:9/fhir",
                                              "launch": "x"})
    assert r.status_code == 400 and "not registered" in r.text


def test_the_ehr_checks_pkce_and_the_client_secret(env: Env) -> None:
    answer = _authorize(env, _ehr_launch(env))
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token_url = f"{env.ehr.base_url}/auth/token"
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": f"{APP}/app/smart/callback", "code_verifier": "x" * 64}
    bad = httpx.post(token_url, data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    assert env.ehr.refused[-1] == "code_verifier"
    wrong_secret = httpx.post(token_url, data=form, auth=(CLIENT_ID, "nope"), timeout=10)
    assert wrong_secret.status_code == 401
    # plain PKCE is refused by the authorization endpoint
    plain = httpx.get(f"{env.ehr.base_url}/auth/authorize", params={
        "response_type": "code", "client_id": CLIENT_ID,
        "redirect_uri": f"{APP}/app/smart/callback", "scope": "launch/patient openid",
        "state": "s" * 43, "aud": env.ehr.iss, "code_challenge": "abc",
        "code_challenge_method": "plain"}, follow_redirects=False, timeout=10)
    assert "error=invalid_request" in plain.headers["location"]
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B


def test_need_patient_banner_false_hides_the_banner(env: Env) -> None:
    env.ehr.need_patient_banner = False
    try:
        answer = _authorize(env, _ehr_launch(env))
        r = env.client.get(answer.headers["location"].removeprefix(APP), follow_redirects=True)
    finally:
        env.ehr.need_patient_banner = True
    assert r.status_code == 200 and 'class="banner"' not in r.text


def test_launch_from_trdstage_sandbox() -> None:
    """`trdstage sandbox --app-url`: its charts open the web app by an EHR launch."""
    from trdstage.service.sandbox.app import SMART_CLIENT_ID, SMART_CLIENT_SECRET, build_sandbox

    port = free_port()
    sb = build_sandbox(f"http://127.0.0.1:{port}", app_url=APP)
    pid = sorted(sb.fhir.patients)[0]
    settings = WebSettings(ehrs=(SmartEhr(f"{sb.base_url}/fhir", SMART_CLIENT_ID,
                                          SMART_CLIENT_SECRET, f"{APP}/app/smart/callback"),))
    app, _ = create_test_app(USERS, settings)
    client = TestClient(app, base_url=APP)
    with serve(sb.app, port):
        chart = httpx.get(f"{sb.base_url}/ehr/patients/{pid}", timeout=30)
        assert "Open trdstage for this patient" in chart.text
        launch = httpx.get(f"{sb.base_url}/ehr/launch", params={"patient": pid},
                           follow_redirects=False, timeout=10).headers["location"]
        r = client.get(launch.removeprefix(APP), follow_redirects=False)
        assert r.status_code == 302, r.text[-1500:]
        answer = httpx.get(r.headers["location"], follow_redirects=False, timeout=10)
        page = client.get(answer.headers["location"].removeprefix(APP), follow_redirects=True)
    assert page.status_code == 200, page.text[:600]
    assert f"Staging for {pid}@127.0.0.1:{port}" in page.text
    assert "Stage under each model" in page.text
