"""The CDS Hooks 2.0.1 service against a real server on 127.0.0.1: discovery, patient-view with
full, partial, paged, null and no prefetch, order-select/order-sign safety cards for each rule,
feedback, and every JWT failure. Every card is checked against the spec's invariants."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from cds_support import AS_OF, check_response, post, sandbox
from fhir_builders import condition, dosage, patient, statement
from trdstage.cli import app as cli
from trdstage.service.cds.history import prefetch_templates
from trdstage.service.cds.router import SAFETY, STAGING
from trdstage.service.sandbox.app import Sandbox
from trdstage.service.sandbox.client import draft_order

PATIENTS = Path(__file__).parents[1] / "src" / "trdstage" / "service" / "sandbox" / "patients"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with sandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(sb: Sandbox) -> None:
    sb.fhir.delay_s = 0
    sb.fhir.failing = set()
    sb.fhir.page_size = 50


def view(sb: Sandbox, pid: str, prefetch: str = "full", **change: Any) -> httpx.Response:
    body = sb.client.request("patient-view", pid, prefetch_templates(), prefetch,  # type: ignore[arg-type]
                             access_token=sb.fhir.token)
    body.update(change)
    return post(sb, STAGING, body)


def order(sb: Sandbox, pid: str, text: str, per_day: float, hook: str = "order-sign",
          unit: str = "tablet") -> list[dict[str, Any]]:
    draft = draft_order(pid, text, per_day, unit)
    body = sb.client.request(hook, pid, prefetch_templates(), "full", draft,
                             access_token=sb.fhir.token)
    r = post(sb, SAFETY, body)
    assert r.status_code == 200, r.text
    cards = check_response(r.json())
    for c in cards:
        for s in c.get("suggestions", []):
            assert s["actions"][0]["resourceId"] == [f"MedicationRequest/{draft['id']}"]
    return cards


def add_patient(sb: Sandbox, pid: str, *resources: dict[str, Any]) -> None:
    text = json.dumps([patient("p1", "1980-02-03"), *resources]).replace(
        '"Patient/p1"', f'"Patient/{pid}"')
    found = json.loads(text)
    found[0]["id"] = pid
    for r in found[1:]:
        r["id"] = f"{pid}-{r['id']}"
    sb.fhir.patients[pid] = found


def cli_assessment(pid: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["assess", str(PATIENTS / f"{pid}.json"), "--as-of",
                                      AS_OF.isoformat(), "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


# --- discovery -------------------------------------------------------------------------------

def test_discovery_lists_both_services_with_the_spec_prefetch_subset(sb: Sandbox) -> None:
    url = f"{sb.base_url}/cds-services"
    r = httpx.get(url, headers={"Authorization": f"Bearer {sb.client.token(url)}"})
    assert r.status_code == 200
    services = r.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        (STAGING, "patient-view"), (SAFETY, "order-select"), (SAFETY, "order-sign")]
    for s in services:
        assert s["description"] and s["title"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert not any("_include" in q for q in s["prefetch"].values())
    assert httpx.get(url).status_code == 401  # discovery needs the JWT too
    assert sb.store.events[-1].action == "cds.discovery"


# --- patient-view ----------------------------------------------------------------------------

@pytest.mark.parametrize("pid", ["d1", "d3", "d4", "d5", "demo-complex-history", "fluoxetine",
                                 "lithium", "trd-fhir-1"])
def test_patient_view_card_equals_trdstage_assess(sb: Sandbox, pid: str) -> None:
    r = view(sb, pid)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    (card,) = check_response(r.json())
    expected = cli_assessment(pid)
    stored = sb.store.assessments[sb.store.cards[card["uuid"]].assessment_id or ""]
    got = json.loads(stored.model_dump_json())
    for key in ("staging", "trials", "ect", "courses", "recommendations", "alerts"):
        assert got[key] == expected[key], key
    # the prefetch asks only for what is read: the file's Encounter and blood pressure are not
    # sent, so their "not read" warnings are not there
    assert [w for w in expected["warnings"] if w["where"] not in (
        "Encounter/enc-1", "Observation/bp-1")] == got["warnings"]
    s = expected["staging"]
    roman = ["0", "I", "II", "III", "IV", "V"][s["thase_rush"]["stage"]]
    assert f"Thase & Rush stage {roman}" in card["summary"]
    assert f"MGH-S {s['mgh']['score']:g}" in card["summary"]
    assert ("regulatory TRD met" if s["regulatory"]["met"] else "not met") in card["summary"]
    urgent = any(a["severity"] == "urgent" for a in expected["alerts"])
    other = any(a["severity"] in ("contraindicated", "warning") for a in expected["alerts"])
    assert card["indicator"] == ("critical" if urgent else "warning" if other else "info")
    for t in expected["trials"]:
        if t["in_scope"]:
            assert t["id"] in card["detail"]
    assert "not a medical device" in card["detail"]
    kinds = {link["type"]: link["url"] for link in card["links"]}
    assert kinds["smart"].startswith(sb.base_url)
    assert kinds["absolute"].endswith(sb.store.cards[card["uuid"]].assessment_id or "?")


def test_urgent_item9_makes_the_staging_card_critical(sb: Sandbox) -> None:
    (card,) = check_response(view(sb, "trd-fhir-1").json())
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("URGENT")
    assert "item 9" in card["detail"]


def test_no_card_without_depression_history(sb: Sandbox) -> None:
    r = view(sb, "no-depression")
    assert r.status_code == 200
    assert r.json() == {"cards": []}


def test_partial_prefetch_is_completed_from_the_fhir_server(sb: Sandbox) -> None:
    full = check_response(view(sb, "d3").json())[0]
    body = sb.client.request("patient-view", "d3", prefetch_templates(), "full",
                             access_token=sb.fhir.token)
    for key in ("conditions", "medicationStatements", "phq9"):
        del body["prefetch"][key]
    before = len(sb.fhir.requests)
    r = post(sb, STAGING, body)
    (card,) = check_response(r.json())
    assert card["summary"] == full["summary"]
    assert card["detail"] == full["detail"]
    asked = sb.fhir.requests[before:]
    assert "/fhir/Condition" in asked and "/fhir/MedicationStatement" in asked
    assert "/fhir/Observation" in asked
    assert sb.store.events[-1].fetched == ["Condition", "MedicationStatement", "Observation"]


def test_no_prefetch_fetches_everything(sb: Sandbox) -> None:
    full = check_response(view(sb, "fluoxetine").json())[0]
    (card,) = check_response(view(sb, "fluoxetine", prefetch="none").json())
    assert card["detail"] == full["detail"]


def test_neither_prefetch_nor_fhir_server_is_412(sb: Sandbox) -> None:
    body = sb.client.request("patient-view", "d3", prefetch_templates(), "none")
    del body["fhirServer"]
    r = post(sb, STAGING, body)
    assert r.status_code == 412
    assert sb.store.events[-1].status == 412


def test_fhir_server_not_configured_for_the_client_is_412(sb: Sandbox) -> None:
    r = view(sb, "d3", prefetch="none", fhirServer="http://127.0.0.1:9/fhir")
    assert r.status_code == 412


def test_fhir_server_error_or_deadline_is_412(sb: Sandbox) -> None:
    sb.fhir.failing = {"Procedure"}
    assert view(sb, "d3", prefetch="none").status_code == 412
    sb.fhir.failing = set()
    sb.fhir.delay_s = 2.5  # the deadline is 2 s
    started = time.monotonic()
    assert view(sb, "d3", prefetch="none").status_code == 412
    assert time.monotonic() - started < 4.5


def test_paged_prefetch_is_followed_on_the_server(sb: Sandbox) -> None:
    full = check_response(view(sb, "trd-fhir-1").json())[0]
    sb.fhir.page_size = 3
    body = sb.client.request("patient-view", "trd-fhir-1", prefetch_templates(), "full",
                             access_token=sb.fhir.token)
    first = httpx.get(f"{sb.base_url}/fhir/Procedure?patient=trd-fhir-1",
                      headers={"Authorization": f"Bearer {sb.fhir.token}"}).json()
    assert any(link["relation"] == "next" for link in first["link"])
    body["prefetch"]["procedures"] = first  # page 1 of 4, with a next link
    (card,) = check_response(post(sb, STAGING, body).json())
    assert card["detail"] == full["detail"]
    assert sb.store.events[-1].fetched == ["Procedure"]


def test_null_prefetch_means_no_such_records(sb: Sandbox) -> None:
    body = sb.client.request("patient-view", "d1", prefetch_templates(), "full",
                             access_token=sb.fhir.token)
    assert body["prefetch"]["procedures"] is None  # d1 has none
    before = len(sb.fhir.requests)
    (card,) = check_response(post(sb, STAGING, body).json())
    assert sb.fhir.requests[before:] == []  # nothing fetched
    assert "Thase & Rush stage I" in card["summary"]


def test_operation_outcome_prefetch_is_fetched_again(sb: Sandbox) -> None:
    full = check_response(view(sb, "d3").json())[0]
    body = sb.client.request("patient-view", "d3", prefetch_templates(), "full",
                             access_token=sb.fhir.token)
    body["prefetch"]["medicationStatements"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "took too long"}]}
    (card,) = check_response(post(sb, STAGING, body).json())
    assert card["detail"] == full["detail"]
    assert sb.store.events[-1].fetched == ["MedicationStatement"]


def test_medication_reference_is_read_from_the_server(sb: Sandbox) -> None:
    """The prefetch subset has no _include: Medication/{id} comes from fhirServer."""
    before = len(sb.fhir.requests)
    (card,) = check_response(view(sb, "fluoxetine").json())
    assert "/fhir/Medication/fluoxetine-med-fluoxetine-20" in sb.fhir.requests[before:]
    assert "fluoxetine" in card["detail"]
    body = sb.client.request("patient-view", "fluoxetine", prefetch_templates(), "full")
    del body["fhirServer"]
    assert post(sb, STAGING, body).status_code == 412


def test_bad_requests_name_the_place(sb: Sandbox) -> None:
    body = sb.client.request("patient-view", "d1", prefetch_templates(), "full")
    del body["context"]["patientId"]
    r = post(sb, STAGING, body)
    assert r.status_code == 400 and "context.patientId" in r.json()["error"]
    body = sb.client.request("order-sign", "d1", prefetch_templates(), "full")
    r = post(sb, STAGING, body)
    assert r.status_code == 400 and "not served" in r.json()["error"]
    r = post(sb, "no-such-service", body, path="/cds-services/no-such-service")
    assert r.status_code == 404


# --- order-select / order-sign ----------------------------------------------------------------

@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_phenelzine_while_on_fluoxetine_is_a_critical_washout_card(sb: Sandbox,
                                                                    hook: str) -> None:
    (card,) = order(sb, "fluoxetine", "phenelzine 15 MG Oral Tablet", 3, hook)
    assert card["indicator"] == "critical"
    assert "washout" in card["summary"] and "fluoxetine" in card["summary"]
    assert "5 weeks" in card["detail"]
    assert "maoi_serotonergic" not in card["detail"]  # messages, not codes
    (s,) = card["suggestions"]
    assert s["isRecommended"] and s["actions"][0]["type"] == "delete"
    assert card["selectionBehavior"] == "at-most-one"
    assert card["overrideReasons"]


def test_maoi_after_fluoxetine_stopped_three_weeks_ago(sb: Sandbox) -> None:
    stop = AS_OF - timedelta(days=21)
    add_patient(sb, "fluox-stopped", condition("mdd", onset="2025-01-01"),
                statement("ms1", "fluoxetine 20 MG Oral Capsule", "2025-01-10", stop.isoformat(),
                          dose=[dosage(1, "capsule")]))
    (card,) = order(sb, "fluox-stopped", "tranylcypromine 10 MG Oral Tablet", 3)
    assert card["indicator"] == "critical"
    assert (stop + timedelta(days=35)).isoformat() in card["detail"]
    assert card["suggestions"]


def test_serotonergic_after_a_recent_maoi(sb: Sandbox) -> None:
    stop = AS_OF - timedelta(days=7)
    add_patient(sb, "maoi-stopped", condition("mdd", onset="2025-01-01"),
                statement("ms1", "phenelzine 15 MG Oral Tablet", "2025-01-10", stop.isoformat(),
                          dose=[dosage(4, "tablet")]))
    (card,) = order(sb, "maoi-stopped", "sertraline 50 MG Oral Tablet", 1)
    assert card["indicator"] == "critical"
    assert "14 days after stopping an MAOI" in card["detail"]


def test_lithium_with_a_serotonergic_drug_is_a_warning_with_monitoring(sb: Sandbox) -> None:
    (card,) = order(sb, "fluoxetine", "lithium carbonate 300 MG Oral Capsule", 2, unit="capsule")
    assert card["indicator"] == "warning"
    assert "lithium_serotonergic" not in card["summary"]
    assert "with fluoxetine" in card["summary"]
    assert "level" in card["detail"].lower()  # the lithium monitoring rule
    assert "suggestions" not in card  # no delete for a warning


def test_citalopram_above_the_age_ceiling(sb: Sandbox) -> None:
    (card,) = order(sb, "lithium", "citalopram 20 MG Oral Tablet", 2)  # 40 mg, age 71
    assert card["indicator"] == "warning"
    assert "40 mg/day is above the maximum of 20 mg/day" in card["detail"]
    cards = order(sb, "lithium", "citalopram 20 MG Oral Tablet", 1)  # 20 mg: no ceiling alert
    assert all("above the maximum" not in c["detail"] for c in cards)


def test_a_drug_that_already_failed_in_this_episode(sb: Sandbox) -> None:
    (card,) = order(sb, "fluoxetine", "sertraline 50 MG Oral Tablet", 2)
    assert "sertraline failed an adequate 8-week trial at 150 mg/day in 2025" in card["detail"]


def test_an_order_that_raises_no_rule_has_no_card(sb: Sandbox) -> None:
    assert order(sb, "d1", "mirtazapine 30 MG Oral Tablet", 1) == []
    assert order(sb, "d1", "amoxicillin 500 MG Oral Capsule", 3) == []


def test_order_for_a_patient_without_depression_history_still_checks_age(
        sb: Sandbox) -> None:
    """No depression on record, but the patient's age still counts (and a current drug would)."""
    sb.fhir.patients["young"] = [{"resourceType": "Patient", "id": "young",
                                  "birthDate": "2006-03-01"}]
    (card,) = order(sb, "young", "sertraline 50 MG Oral Tablet", 1)
    assert card["indicator"] == "warning"
    assert "age 20" in card["detail"]


# --- feedback ---------------------------------------------------------------------------------

def test_feedback_is_stored_with_the_issued_card(sb: Sandbox) -> None:
    (card,) = order(sb, "fluoxetine", "phenelzine 15 MG Oral Tablet", 3)
    path = f"/cds-services/{SAFETY}/feedback"
    accepted = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp":
                "2026-12-02T10:00:00Z", "acceptedSuggestions": [
                    {"id": card["suggestions"][0]["uuid"]}]}
    reason = card["overrideReasons"][0]
    overridden = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp":
                  "2026-12-02T10:01:00Z", "overrideReason": {
                      "reason": {"code": reason["code"], "system": reason["system"]},
                      "userComment": "supervised switch"}}
    r = post(sb, SAFETY, {"feedback": [accepted, overridden]}, path=path)
    assert r.status_code == 200 and r.json() == {"stored": 2}
    mine = [f for f in sb.store.feedbacks if f.card == card["uuid"]]
    assert [f.outcome for f in mine] == ["accepted", "overridden"]
    assert mine[1].reason == {"code": reason["code"], "system": reason["system"]}
    assert sb.store.events[-1].action == "cds.feedback"
    r = post(sb, SAFETY, {"feedback": [{**accepted, "card": str(uuid.uuid4())}]}, path=path)
    assert r.json()["stored"] == 0 and r.json()["unknownCards"]
    bad = {**accepted}
    del bad["acceptedSuggestions"]
    assert post(sb, SAFETY, {"feedback": [bad]}, path=path).status_code == 400  # cds-fb-1
    assert post(sb, STAGING, {"feedback": [accepted]}, path=path,
                token="x").status_code == 401  # noqa: S106 - a bad token


# --- JWT ----------------------------------------------------------------------------------------

def _hs256(sb: Sandbox, url: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": sb.client.iss, "aud": url, "exp": now + 60, "iat": now,
                       "jti": str(uuid.uuid4())}, "a-shared-secret-of-32-bytes-long!",
                      algorithm="HS256", headers={"kid": sb.client.key.kid})


def _none(sb: Sandbox, url: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": sb.client.iss, "aud": url, "exp": now + 60, "iat": now,
                       "jti": str(uuid.uuid4())}, None, algorithm="none",
                      headers={"kid": sb.client.key.kid})


def _foreign_key(sb: Sandbox, url: str) -> str:
    from trdstage.service.sandbox.client import SigningKey

    other = SigningKey(kid=sb.client.key.kid)
    now = int(time.time())
    return jwt.encode({"iss": sb.client.iss, "aud": url, "exp": now + 60, "iat": now,
                       "jti": str(uuid.uuid4())}, other.key, algorithm="ES384",
                      headers={"kid": other.kid, "jku": sb.client.jwks_url})


BAD_TOKENS = {
    "unknown iss": lambda sb, url: sb.client.token(url, iss="https://evil.example"),
    "wrong aud": lambda sb, url: sb.client.token(f"{sb.base_url}/cds-services/other"),
    "aud of another server": lambda sb, url: sb.client.token(url.replace("127.0.0.1",
                                                                         "localhost")),
    "expired": lambda sb, url: sb.client.token(url, exp=int(time.time()) - 120,
                                               iat=int(time.time()) - 400),
    "not yet valid": lambda sb, url: sb.client.token(url, nbf=int(time.time()) + 600),
    "issued in the future": lambda sb, url: sb.client.token(url, iat=int(time.time()) + 600,
                                                            exp=int(time.time()) + 900),
    "too long a lifetime": lambda sb, url: sb.client.token(url, exp=int(time.time()) + 7200),
    "no jti": lambda sb, url: sb.client.token(url, jti=None),
    "alg none": _none,
    "HS256": _hs256,
    "unknown kid": lambda sb, url: sb.client.token(url, kid="not-a-key"),
    "no kid": lambda sb, url: sb.client.token(url, kid=None),
    "foreign jku": lambda sb, url: sb.client.token(url, jku="https://evil.example/jwks.json"),
    "signed by another key": _foreign_key,
    "garbage": lambda sb, url: "not.a.jwt",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_every_bad_jwt_is_a_bare_401_and_audited(sb: Sandbox, case: str) -> None:
    url = f"{sb.base_url}/cds-services/{STAGING}"
    token = BAD_TOKENS[case](sb, url)
    body = sb.client.request("patient-view", "d1", prefetch_templates(), "full")
    r = post(sb, STAGING, body, token=token)
    assert r.status_code == 401
    assert r.content == b""
    event = sb.store.events[-1]
    assert (event.action, event.outcome, event.status) == ("cds.hook", "denied", 401)
    assert event.detail
    assert token not in repr(event)


def test_replayed_jti_is_refused(sb: Sandbox) -> None:
    url = f"{sb.base_url}/cds-services/{STAGING}"
    token = sb.client.token(url)
    body = sb.client.request("patient-view", "d1", prefetch_templates(), "full")
    assert post(sb, STAGING, body, token=token).status_code == 200
    assert post(sb, STAGING, body, token=token).status_code == 401
    assert sb.store.events[-1].detail == "jti replayed"


def test_no_token_or_access_token_is_kept(sb: Sandbox) -> None:
    view(sb, "d3", prefetch="none")
    text = repr(sb.store.events) + repr(list(sb.store.cards.values()))
    assert sb.fhir.token not in text
    assert "eyJ" not in text  # no JWT


# --- the sandbox pages -----------------------------------------------------------------------

def test_sandbox_pages_show_the_cards(sb: Sandbox) -> None:
    page = httpx.get(f"{sb.base_url}/ehr/")
    assert page.status_code == 200 and "fluoxetine" in page.text
    chart = httpx.get(f"{sb.base_url}/ehr/patients/fluoxetine", timeout=20)
    assert "Thase &amp; Rush stage I" in chart.text
    ordered = httpx.post(f"{sb.base_url}/ehr/patients/fluoxetine/order",
                         data={"drug": "phenelzine"}, timeout=20)
    assert ordered.text.count("card critical") == 2  # order-select and order-sign
    assert "Remove the phenelzine order" in ordered.text
    jwks = httpx.get(sb.client.jwks_url or "").json()
    assert jwks["keys"][0]["alg"] == "ES384" and "d" not in jwks["keys"][0]


def test_trdstage_sandbox_command_serves_on_loopback() -> None:
    import subprocess
    import sys

    from trdstage.service.sandbox.run import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "trdstage", "sandbox", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/ehr/patients/fluoxetine", timeout=20)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert page.status_code == 200 and "card info" in page.text
        ordered = httpx.post(f"http://127.0.0.1:{port}/ehr/patients/fluoxetine/order",
                             data={"drug": "phenelzine"}, timeout=20)
        assert "card critical" in ordered.text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/ehr/" in err.decode()


def test_sandbox_fhir_server(sb: Sandbox) -> None:
    fhir = sb.client.fhir_base
    auth = {"Authorization": f"Bearer {sb.fhir.token}"}
    refused = httpx.get(f"{fhir}/Patient/d1")
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"
    assert httpx.get(f"{fhir}/Patient/d1", headers=auth).json()["id"] == "d1"
    med = httpx.get(f"{fhir}/Medication/fluoxetine-med-fluoxetine-20", headers=auth).json()
    assert med["resourceType"] == "Medication"
    assert httpx.get(f"{fhir}/Patient/nobody", headers=auth).status_code == 404
    assert httpx.get(f"{fhir}/Account?patient=d1", headers=auth).status_code == 400
    assert httpx.get(f"{fhir}/Procedure", headers=auth).status_code == 400
    sb.fhir.page_size = 4
    url: str | None = f"{fhir}/Procedure?patient=trd-fhir-1"
    seen = []
    while url:
        page = httpx.get(url, headers=auth).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 10
    phq9 = httpx.get(f"{fhir}/Observation?patient=trd-fhir-1&code=http://loinc.org|44261-6",
                     headers=auth).json()
    assert phq9["total"] == 6
    sb.fhir.tokens.add("issued-elsewhere")
    assert httpx.get(f"{fhir}/Patient/d1", headers={
        "Authorization": "Bearer issued-elsewhere"}).status_code == 200
