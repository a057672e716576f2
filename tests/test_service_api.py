"""`trdstage serve` over HTTP, against a real uvicorn process on 127.0.0.1 (one per database
engine: SQLite and a throwaway PostgreSQL): every endpoint, role and refusal; the results of
POST /assess equal `trdstage assess`; the audit trail records every access."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service_server import PASSWORD, Service, prepare
from test_cli import BAD_INPUTS, run
from trdstage.service.audit import validate_fhir
from trdstage.service.auth import issue_token
from trdstage.service.db import Database
from trdstage.service.models import Account

EXAMPLES = Path(__file__).parents[1] / "src/trdstage/examples"
FHIR_EXAMPLE = EXAMPLES / "fhir/trd-fhir-example.json"
NATIVE = sorted(EXAMPLES.glob("*.yaml"))
YAML = "application/yaml"
FHIR = "application/fhir+json"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp(f"service-{request.param}")
    pg = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'trdstage.sqlite'}"
    else:
        from pg_server import PgServer, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            pytest.skip("PostgreSQL binaries not installed (scripts/system-deps.sh)")
        pg = PgServer(bin_dir)
        pg.start()
        url = pg.url(pg.create_database("trdstage")).replace("postgresql://",
                                                            "postgresql+psycopg://")
    config, tokens = prepare(url, folder, rate_limit_per_minute=0)
    svc = Service(config, folder, tokens)
    svc.database = url  # type: ignore[attr-defined]
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()
        if pg is not None:
            pg.stop()


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    assert "Traceback" not in resp.text
    return body


def _new_patient(svc: Service, who: str = "alice", path: Path = NATIVE[0]) -> str:
    with svc.client(who) as c:
        resp = c.post("/api/v1/patients", content=path.read_bytes(),
                      headers={"Content-Type": YAML})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _audit(svc: Service, **params: Any) -> list[dict[str, Any]]:
    with svc.client("root") as c:
        resp = c.get("/api/v1/audit", params={"_count": 200, **params})
    assert resp.status_code == 200, resp.text
    events = [e["resource"] for e in resp.json()["entry"]]
    for event in events:
        validate_fhir(event)  # every event is a valid R4 AuditEvent
    return events


# --- service basics -----------------------------------------------------------------------

def test_healthz_needs_no_sign_in(service: Service) -> None:
    resp = httpx.get(service.url + "/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["database"] == "reachable"
    from alembic.script import ScriptDirectory

    from trdstage.service.db import _alembic_config

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    assert body["version"] and body["schema"] == head


def test_security_headers_on_every_response(service: Service) -> None:
    with service.client("alice") as c:
        for resp in (c.get("/healthz"), c.get("/api/v1/patients"), c.get("/nowhere"),
                     httpx.get(service.url + "/api/v1/patients")):
            h = resp.headers
            assert h["x-content-type-options"] == "nosniff"
            assert h["referrer-policy"] == "no-referrer"
            assert "default-src 'none'" in h["content-security-policy"]
            assert "frame-ancestors 'none'" in h["content-security-policy"]
            assert h["cache-control"] == "no-store"
            assert h["x-request-id"]
            assert "server" not in h


def test_request_id_is_taken_from_the_caller_when_it_is_plain(service: Service) -> None:
    with service.client("alice") as c:
        assert c.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers[
            "x-request-id"] == "abc-123"
        odd = c.get("/healthz", headers={"X-Request-Id": "a b<x>" * 30})
        assert odd.headers["x-request-id"].isalnum()


def test_openapi_and_docs(service: Service) -> None:
    doc = httpx.get(service.url + "/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/v1/assess", "/api/v1/patients", "/api/v1/patients/{patient_id}",
                 "/api/v1/patients/{patient_id}/versions",
                 "/api/v1/patients/{patient_id}/assessments",
                 "/api/v1/assessments/{assessment_id}", "/api/v1/audit", "/healthz"):
        assert path in paths
    docs = httpx.get(service.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_unknown_route_and_method_are_problems(service: Service) -> None:
    with service.client("alice") as c:
        _problem(c.get("/api/v1/nothing"), 404)
        _problem(c.delete("/api/v1/patients"), 405)


# --- authentication and roles -------------------------------------------------------------

def test_missing_unknown_expired_and_revoked_tokens_get_401(service: Service) -> None:
    db = Database(service.database)  # type: ignore[attr-defined]
    try:
        with db.session() as session:
            alice = session.query(Account).filter_by(name="alice").one()
            revoked, row = issue_token(session, alice)
            expired, _ = issue_token(session, alice, days=-1)
            session.commit()
            token_id = row.id
    finally:
        db.dispose()
    code, out, _ = run("admin", "token", "list", "alice", "--config", str(service.config))
    assert code == 0 and revoked[:10] in out and revoked not in out
    assert run("admin", "token", "revoke", str(token_id), "--config",
               str(service.config))[0] == 0
    for headers in ({}, {"Authorization": "Bearer trd_nonsense"},
                    {"Authorization": "Basic YWxpY2U6eA=="},
                    {"Authorization": f"Bearer {revoked}"},
                    {"Authorization": f"Bearer {expired}"},
                    {"Authorization": "Bearer a.b.c"}):
        resp = httpx.get(service.url + "/api/v1/patients", headers=headers)
        _problem(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    failures = _audit(service, subtype="110122", outcome=4)
    assert len(failures) >= 6


def test_clinician_cannot_read_the_audit_trail_or_accounts(service: Service) -> None:
    with service.client("alice") as c:
        _problem(c.get("/api/v1/audit"), 403)
        _problem(c.get("/api/v1/accounts"), 403)
    with service.client("root") as c:
        names = {a["name"] for a in c.get("/api/v1/accounts").json()}
    assert {"alice", "bob", "root"} <= names
    denied = _audit(service, agent="alice", outcome=4)
    assert any(e["source"]["site"] == "GET /api/v1/audit" for e in denied)


def test_admin_also_works_with_patients(service: Service) -> None:
    pid = _new_patient(service, "root")
    with service.client("root") as c:
        assert c.get(f"/api/v1/patients/{pid}").status_code == 200


def test_sign_in_with_password_gives_a_token(service: Service) -> None:
    with service.client() as c:
        resp = c.post("/api/v1/tokens", json={"name": "bob", "password": PASSWORD,
                                              "expires_days": 0.5})
        assert resp.status_code == 201, resp.text
        token = resp.json()["token"]
        me = c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["name"] == "bob" and me["role"] == "clinician"
        _problem(c.post("/api/v1/tokens", json={"name": "bob", "password": "wrong"}), 401)
        _problem(c.post("/api/v1/tokens", json={"name": "nobody", "password": "x"}), 401)
    logins = _audit(service, subtype="110122")
    assert any(e["outcome"] == "0" and e["agent"][0]["who"]["display"] == "bob"
               for e in logins)
    assert any(e["outcome"] == "4" and e["agent"][0]["who"]["display"] == "nobody"
               for e in logins)


# --- patients, versions, assessments ------------------------------------------------------

def test_patient_lifecycle(service: Service) -> None:
    first, second = NATIVE[0].read_bytes(), NATIVE[1].read_bytes()
    with service.client("alice") as c:
        created = c.post("/api/v1/patients", content=first, headers={"Content-Type": YAML})
        assert created.status_code == 201
        pid = created.json()["id"]
        assert created.headers["location"] == f"/api/v1/patients/{pid}"
        assert created.json()["version"] == 1
        got = c.get(created.headers["location"])
        assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
        assert got.json()["document"]["episodes"]
        assert got.headers["etag"] == 'W/"1"'
        _problem(c.put(f"/api/v1/patients/{pid}", content=second,
                       headers={"Content-Type": YAML, "If-Match": 'W/"7"'}), 412)
        put = c.put(f"/api/v1/patients/{pid}", content=second,
                    headers={"Content-Type": YAML, "If-Match": 'W/"1"'})
        assert put.status_code == 200 and put.json()["version"] == 2
        versions = c.get(f"/api/v1/patients/{pid}/versions").json()["items"]
        assert [v["version"] for v in versions] == [1, 2]
        assert all(v["author"] == "alice" for v in versions)
        v1 = c.get(f"/api/v1/patients/{pid}/versions/1").json()
        assert v1["document"] == created.json()["document"]
        assert c.get(f"/api/v1/patients/{pid}").json()["document"] == put.json()["document"]
        _problem(c.get(f"/api/v1/patients/{pid}/versions/9"), 404)
        listed = c.get("/api/v1/patients", params={"_count": 1})
        assert listed.json()["total"] >= 1 and len(listed.json()["items"]) == 1
    events = _audit(service, patient=pid)
    subtypes = [e["subtype"][0]["code"] for e in reversed(events)]
    assert subtypes[:6] == ["create", "read", "update", "history-instance", "vread", "read"]
    for event in events:
        validate_fhir(event)
        assert {"reference": f"Patient/{pid}"} in [x.get("what") for x in event["entity"]]


def test_stored_assessment(service: Service) -> None:
    pid = _new_patient(service, "alice", EXAMPLES / "d2-ssri-snri.yaml")
    with service.client("alice") as c:
        resp = c.post(f"/api/v1/patients/{pid}/assessments",
                      params={"as_of": "2026-01-01", "policy": "default"})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert resp.headers["location"] == f"/api/v1/assessments/{body['id']}"
        assert body["patient"] == pid and body["patient_version"] == 1
        assert body["as_of"] == "2026-01-01" and body["policy"] == "default"
        assert body["trdstage_version"] and body["knowledge_version"].startswith("sha256:")
        code, out, _ = run("assess", str(EXAMPLES / "d2-ssri-snri.yaml"), "--as-of",
                           "2026-01-01", "--format", "json")
        assert code == 0 and body["result"] == json.loads(out)
        again = c.get(resp.headers["location"])
        assert again.json() == body
        html = c.get(resp.headers["location"], headers={"Accept": "text/html"})
        assert html.headers["content-type"].startswith("text/html") and "<html" in html.text
        pdf = c.get(resp.headers["location"], headers={"Accept": "application/pdf"},
                    params={"audience": "patient"})
        assert pdf.content.startswith(b"%PDF")
        fhir = c.get(resp.headers["location"], headers={"Accept": FHIR}).json()
        assert fhir["entry"][-1]["resource"]["resourceType"] == "Provenance"
        listed = c.get(f"/api/v1/patients/{pid}/assessments").json()
        assert [a["id"] for a in listed["items"]] == [body["id"]]
        _problem(c.post(f"/api/v1/patients/{pid}/assessments", params={"version": 5}), 404)
        _problem(c.post(f"/api/v1/patients/{pid}/assessments",
                        params={"policy": "nonsense"}), 400)
    events = _audit(service, patient=pid, action="C")
    assert {f"Assessment/{body['id']}"} <= {x.get("what", {}).get("reference") for e in events
                                             for x in e.get("entity", [])}


def test_another_accounts_objects_are_not_found(service: Service) -> None:
    pid = _new_patient(service, "alice")
    with service.client("alice") as c:
        aid = c.post(f"/api/v1/patients/{pid}/assessments").json()["id"]
    with service.client("bob") as c:
        theirs = _problem(c.get(f"/api/v1/patients/{pid}"), 404)
        unknown = _problem(c.get("/api/v1/patients/0000"), 404)
        assert theirs["detail"] == unknown["detail"]
        _problem(c.put(f"/api/v1/patients/{pid}", content=NATIVE[0].read_bytes(),
                       headers={"Content-Type": YAML}), 404)
        _problem(c.get(f"/api/v1/patients/{pid}/versions"), 404)
        _problem(c.get(f"/api/v1/patients/{pid}/assessments"), 404)
        _problem(c.post(f"/api/v1/patients/{pid}/assessments"), 404)
        a_theirs = _problem(c.get(f"/api/v1/assessments/{aid}"), 404)
        a_unknown = _problem(c.get("/api/v1/assessments/0000"), 404)
        assert a_theirs["detail"] == a_unknown["detail"]
        assert pid not in {p["id"] for p in c.get("/api/v1/patients").json()["items"]}
    with service.client("alice") as c:
        assert c.get(f"/api/v1/patients/{pid}").json()["version"] == 1
    denied = _audit(service, patient=pid, agent="bob")
    assert len(denied) >= 5 and all(e["outcome"] == "4" for e in denied)


# --- POST /assess -------------------------------------------------------------------------

@pytest.mark.parametrize("path", [*NATIVE, FHIR_EXAMPLE], ids=lambda p: p.name)
def test_assess_equals_the_command_line(service: Service, path: Path) -> None:
    code, out, _ = run("assess", str(path), "--as-of", "2026-01-01", "--format", "json")
    assert code == 0
    media = FHIR if path.suffix == ".json" else YAML
    with service.client("alice") as c:
        resp = c.post("/api/v1/assess", params={"as_of": "2026-01-01"},
                      content=path.read_bytes(), headers={"Content-Type": media})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == json.loads(out)


def test_assess_a_bundle_in_application_json(service: Service) -> None:
    with service.client("alice") as c:
        resp = c.post("/api/v1/assess", params={"as_of": "2026-01-01"},
                      content=FHIR_EXAMPLE.read_bytes(),
                      headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json()["patient_id"]


def test_assess_fhir_output_has_a_provenance_pointing_at_the_inputs(service: Service) -> None:
    bundle_in = json.loads(FHIR_EXAMPLE.read_text())
    inputs = {e["fullUrl"] for e in bundle_in["entry"]} | {
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle_in["entry"]
        if "id" in e["resource"]}
    with service.client("alice") as c:
        resp = c.post("/api/v1/assess", params={"as_of": "2026-01-01"},
                      content=FHIR_EXAMPLE.read_bytes(),
                      headers={"Content-Type": FHIR, "Accept": FHIR})
    assert resp.headers["content-type"].startswith(FHIR)
    bundle = resp.json()
    code, out, _ = run("assess", str(FHIR_EXAMPLE), "--as-of", "2026-01-01", "--format", "fhir")
    assert code == 0
    cli = json.loads(out)
    assert bundle["entry"][:-1] == cli["entry"]
    provenance = bundle["entry"][-1]["resource"]
    assert provenance["resourceType"] == "Provenance"
    targets = {t["reference"] for t in provenance["target"]}
    assert targets == {e["fullUrl"] for e in cli["entry"]}
    used = {e["what"]["reference"] for e in provenance["entity"]}
    assert used and used <= inputs
    assert {e["role"] for e in provenance["entity"]} == {"derivation"}
    assert "trdstage" in provenance["agent"][0]["who"]["display"]


def test_assess_reports(service: Service) -> None:
    body = (EXAMPLES / "demo-safety-pgx.yaml").read_bytes()
    with service.client("alice") as c:
        html = c.post("/api/v1/assess", content=body, params={"as_of": "2026-01-01"},
                      headers={"Content-Type": YAML, "Accept": "text/html"})
        assert html.status_code == 200 and "<html" in html.text
        assert "script-src" not in html.headers["content-security-policy"]
        patient = c.post("/api/v1/assess", content=body,
                         params={"as_of": "2026-01-01", "audience": "patient"},
                         headers={"Content-Type": YAML, "Accept": "text/html"})
        assert patient.status_code == 200 and patient.text != html.text
        pdf = c.post("/api/v1/assess", content=body, params={"as_of": "2026-01-01"},
                     headers={"Content-Type": YAML, "Accept": "application/pdf"})
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        preferred = c.post("/api/v1/assess", content=body,
                           headers={"Content-Type": YAML,
                                    "Accept": "text/html;q=0.5, application/json"})
        assert preferred.headers["content-type"].startswith("application/json")
        _problem(c.post("/api/v1/assess", content=body, params={"audience": "patient"},
                        headers={"Content-Type": YAML}), 400)
        _problem(c.post("/api/v1/assess", content=body,
                        headers={"Content-Type": YAML, "Accept": "image/png"}), 406)


def test_assess_bad_requests_name_the_place(service: Service) -> None:
    body = NATIVE[0].read_bytes()
    with service.client("alice") as c:
        bad_json = _problem(c.post("/api/v1/assess", content=b'{"episodes": [',
                                   headers={"Content-Type": "application/json"}), 422)
        assert bad_json["where"].startswith("body:1:") and "malformed JSON" in bad_json["detail"]
        wrong = _problem(c.post("/api/v1/assess", content=body,
                                headers={"Content-Type": "text/plain"}), 415)
        assert wrong["where"] == "Content-Type"
        _problem(c.post("/api/v1/assess", content=body), 415)
        policy = _problem(c.post("/api/v1/assess", content=body, params={"policy": "nope"},
                                 headers={"Content-Type": YAML}), 400)
        assert policy["where"] == "policy" and "default" in policy["detail"]
        path_policy = _problem(c.post("/api/v1/assess", content=body,
                                      params={"policy": "/etc/passwd"},
                                      headers={"Content-Type": YAML}), 400)
        assert path_policy["where"] == "policy"
        as_of = _problem(c.post("/api/v1/assess", content=body, params={"as_of": "2026-13-01"},
                                headers={"Content-Type": YAML}), 400)
        assert as_of["where"] == "as_of"
        _problem(c.post("/api/v1/assess", content=b"\xff\xfe",
                        headers={"Content-Type": "application/json"}), 422)


def test_fhir_requests_get_an_operation_outcome(service: Service) -> None:
    bad = {"resourceType": "Bundle", "type": "message", "entry": []}
    with service.client("alice") as c:
        resp = c.post("/api/v1/assess", json=bad, headers={"Content-Type": FHIR})
        assert resp.status_code == 422
        assert resp.headers["content-type"].startswith(FHIR)
        outcome = resp.json()
        assert outcome["resourceType"] == "OperationOutcome"
        issue = outcome["issue"][0]
        assert issue["severity"] == "error" and issue["code"] == "invalid"
        assert "Bundle.type" in issue["location"][0]
        denied = httpx.get(service.url + "/api/v1/patients", headers={"Accept": FHIR})
        assert denied.status_code == 401 and denied.json()["issue"][0]["code"] == "login"


@pytest.mark.parametrize(("text", "expected"), BAD_INPUTS)
def test_every_input_the_command_line_refuses_is_refused(service: Service, text: str,
                                                         expected: str) -> None:
    with service.client("alice") as c:
        before = c.get("/api/v1/patients").json()["total"]
        for url in ("/api/v1/assess", "/api/v1/patients"):
            resp = c.post(url, content=text.encode(), params={"as_of": "2026-01-01"},
                          headers={"Content-Type": YAML})
            body = _problem(resp, 422)
            assert expected in f"{body['where']}: {body['detail']}"
        assert c.get("/api/v1/patients").json()["total"] == before  # nothing stored


def test_a_fhir_bundle_is_not_stored_as_a_patient(service: Service) -> None:
    with service.client("alice") as c:
        body = _problem(c.post("/api/v1/patients", content=FHIR_EXAMPLE.read_bytes(),
                               headers={"Content-Type": "application/json"}), 422)
    assert "/api/v1/assess" in body["detail"]


# --- the audit trail ----------------------------------------------------------------------

def test_audit_trail_is_a_paged_filterable_fhir_bundle(service: Service) -> None:
    from fhir.resources.R4B.bundle import Bundle

    _new_patient(service, "bob")
    today = datetime.now(UTC).date().isoformat()
    with service.client("root") as c:
        page = c.get("/api/v1/audit", params={"_count": 2, "agent": "bob", "date": f"ge{today}"})
        assert page.headers["content-type"].startswith(FHIR)
        bundle = page.json()
        Bundle.model_validate(bundle)
        assert bundle["type"] == "searchset" and bundle["total"] >= 2
        assert len(bundle["entry"]) == 2
        nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        second = c.get(nxt).json()
        assert {e["fullUrl"] for e in second["entry"]}.isdisjoint(
            {e["fullUrl"] for e in bundle["entry"]})
        for entry in bundle["entry"] + second["entry"]:
            event = entry["resource"]
            validate_fhir(event)
            assert event["agent"][0]["who"]["display"] == "bob"
            assert event["agent"][0]["network"]["address"] == "127.0.0.1"
            assert event["source"]["observer"]["display"] == "trdstage"
        creates = c.get("/api/v1/audit", params={"action": "C", "agent": "bob"}).json()
        assert creates["total"] >= 1
        assert all(e["resource"]["action"] == "C" for e in creates["entry"])
        none = c.get("/api/v1/audit", params={"date": "lt2000-01-01"}).json()
        assert none["total"] == 0
        _problem(c.get("/api/v1/audit", params={"date": "yesterday"}), 400)
        _problem(c.get("/api/v1/audit", params={"action": "X"}), 400)
        _problem(c.get("/api/v1/audit", params={"_count": 100000}), 400)
    reads = _audit(service, agent="root", subtype="search-type")
    assert any("AuditEvent" in str(e.get("entity")) for e in reads)


def test_assess_is_audited_without_patient_data(service: Service) -> None:
    with service.client("bob") as c:
        c.post("/api/v1/assess", content=FHIR_EXAMPLE.read_bytes(),
               headers={"Content-Type": FHIR, "X-Request-Id": "assess-audit-1"})
    events = [e for e in _audit(service, agent="bob", subtype="operation")
              if {"identifier": {"value": "assess-audit-1"}} in
              [x.get("what") for x in e.get("entity", [])]]
    assert len(events) == 1
    assert events[0]["action"] == "E" and events[0]["outcome"] == "0"


def test_logs_carry_request_ids_and_no_secrets_or_patient_data(service: Service) -> None:
    with service.client("alice", **{"X-Request-Id": "log-check-1"}) as c:
        c.get("/api/v1/patients?_count=3")
        c.post("/api/v1/assess", content=(EXAMPLES / "demo-safety-pgx.yaml").read_bytes(),
               headers={"Content-Type": YAML})
    log = service.log_text()
    assert "[log-check-1] GET /api/v1/patients 200" in log
    assert "_count" not in log  # no query strings
    for secret in [*service.tokens.values(), PASSWORD]:
        assert secret not in log
    for patient_data in ("sertraline", "venlafaxine", "1975-03-14", "CYP2D6", "episodes"):
        assert patient_data not in log


def test_values_no_database_can_store_are_refused_not_failed(service: Service) -> None:
    with service.client("alice") as c:
        pid = _new_patient(service)
        for resp in (c.get("/api/v1/patients/a%00b"),
                     c.get("/api/v1/patients", params={"x": "\x00"}),
                     c.get(f"/api/v1/patients/{pid}/versions/99999999999"),
                     c.post(f"/api/v1/patients/{pid}/assessments",
                            params={"version": 99999999999}),
                     c.post("/api/v1/patients", content=b'{"id": "\\ud800", "episodes": []}',
                            headers={"Content-Type": "application/json"}),
                     c.post("/api/v1/tokens", json={"name": "a\x00b", "password": "x"})):
            assert 400 <= resp.status_code < 500, resp.text
    with service.client("root") as c:
        assert c.get("/api/v1/audit", params={"outcome": 99999999999}).status_code == 400
