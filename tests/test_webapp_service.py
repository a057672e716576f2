"""The web app inside `trdstage serve` (create_app on a migrated SQLite database): local accounts
with argon2 hashes, each save a stored version the REST API also sees, assessments and audit
events in the service's tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from trdstage.service.app import create_app
from trdstage.service.auth import hash_password, issue_token
from trdstage.service.db import Database, migrate
from trdstage.service.models import Account, AuditEvent, PatientVersion
from trdstage.service.settings import settings_from_mapping
from webapp_support import USERS, csrf_of, history_form


@pytest.fixture
def service(tmp_path: Path) -> tuple[TestClient, Database]:
    url = f"sqlite:///{tmp_path / 'trdstage.sqlite'}"
    migrate(url)
    db = Database(url)
    with db.session() as s:
        for name, (password, role) in USERS.items():
            s.add(Account(name=name, role=role, password_hash=hash_password(password)))
        s.commit()
    settings = settings_from_mapping({"server": {"database": url},
                                      "webapp": {"idle_minutes": 30}})
    app = create_app(settings, db)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, db
    db.dispose()


def _sign_in(client: TestClient, name: str = "dr-ann", password: str | None = None) -> int:
    page = client.get("/app/signin")
    r = client.post("/app/signin", data={"csrf": csrf_of(page.text), "username": name,
                                         "password": password or USERS[name][0]},
                    follow_redirects=False)
    return r.status_code


def test_sign_in_save_and_the_api_sees_the_same_patient(service: tuple[TestClient, Database]
                                                        ) -> None:
    client, db = service
    assert _sign_in(client, password="wrong") == 401  # noqa: S106 - a wrong one
    assert _sign_in(client) == 303
    form = client.get("/app/patients/new")
    r = client.post("/app/patients/form", data=history_form(csrf_of(form.text)),
                    follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"]
    key = url.rsplit("/", 1)[1]
    page = client.get(url)
    assert page.status_code == 200 and "Stage II:" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert client.get(f"{url}/report.pdf").headers["content-type"] == "application/pdf"
    with db.session() as s:
        rows = s.query(PatientVersion).filter_by(patient_id=key).all()
        assert [r.version for r in rows] == [1] and rows[0].document["id"] == "P-100"
        events = s.query(AuditEvent).all()
        codes = [(e.subtype_code, e.outcome, e.patient_id) for e in events]
        account = s.query(Account).filter_by(name="dr-ann").one()
        token = issue_token(s, account)[0]
        s.commit()
    assert ("110122", 4, None) in codes and ("110122", 0, None) in codes
    assert ("create", 0, key) in codes and ("read", 0, key) in codes
    assert ("download", 0, key) in codes
    home = client.get("/app/")
    assert "P-100" in home.text and "T&amp;R II" in home.text  # recent assessments
    api = client.get(f"/api/v1/patients/{key}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200, api.text


def test_admin_audit_trail_and_export(service: tuple[TestClient, Database]) -> None:
    client, _ = service
    _sign_in(client)
    client.get("/app/")
    admin = TestClient(client.app, base_url="https://testserver")
    assert _sign_in(admin, "root") == 303
    trail = admin.get("/app/admin/audit", params={"who": "dr-ann"})
    assert "<td>signin</td>" in trail.text and "<td>search</td>" in trail.text
    bundle = admin.get("/app/admin/audit.json", params={"who": "dr-ann"}).json()
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    assert bundle["total"] >= 2
    assert client.get("/app/admin/audit").status_code == 403


def _fails(call: Callable[[], Any]) -> bool:
    """The request failed on the server (500, or the error itself through the test client)."""
    try:
        return bool(call().status_code == 500)
    except RuntimeError as exc:
        return "audit store down" in str(exc)


def test_a_saved_version_and_its_audit_event_are_one_transaction(
        service: tuple[TestClient, Database], monkeypatch: pytest.MonkeyPatch) -> None:
    from trdstage.service import audit
    from trdstage.service.models import Assessment, Patient, VersionSource

    client, db = service
    assert _sign_in(client) == 303
    form = client.get("/app/patients/new")
    real = audit.record

    def failing(session: object, **kwargs: object) -> AuditEvent:
        if kwargs["kind"] in (audit.rest("create"), audit.rest("read")):
            raise RuntimeError("audit store down")
        return real(session, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "record", failing)
    assert _fails(lambda: client.post("/app/patients/form",
                                      data=history_form(csrf_of(form.text))))
    with db.session() as s:  # the save rolled back with its event
        assert s.query(Patient).count() == 0
        assert s.query(PatientVersion).count() == 0
        assert s.query(VersionSource).count() == 0
    monkeypatch.setattr(audit, "record", real)
    r = client.post("/app/patients/form", data=history_form(csrf_of(form.text)),
                    follow_redirects=False)
    key = r.headers["location"].rsplit("/", 1)[1]
    with db.session() as s:
        version = s.query(PatientVersion).filter_by(patient_id=key).one()
        created = s.query(AuditEvent).filter_by(patient_id=key, subtype_code="create").one()
        assert created.query == "version 1" and created.recorded >= version.created
    monkeypatch.setattr(audit, "record", failing)
    assert _fails(lambda: client.get(f"/app/patients/{key}"))  # a page view: its read event
    with db.session() as s:  # ... and the assessment it would have stored, neither kept
        assert s.query(Assessment).filter_by(patient_id=key).count() == 0
    monkeypatch.setattr(audit, "record", real)
    assert client.get(f"/app/patients/{key}").status_code == 200
    with db.session() as s:
        assert s.query(Assessment).filter_by(patient_id=key).count() == 1
        assert s.query(AuditEvent).filter_by(patient_id=key, subtype_code="read").count() == 1


def test_the_data_used_of_an_upload_survives_a_restart(service: tuple[TestClient, Database]
                                                       ) -> None:
    client, db = service
    _sign_in(client)
    page = client.get("/app/import")
    bundle = (Path(__file__).parents[1] / "src" / "trdstage" / "examples" / "fhir"
              / "trd-fhir-example.json").read_bytes()
    r = client.post("/app/import", data={"csrf": csrf_of(page.text)},
                    files={"file": ("bundle.json", bundle, "application/fhir+json")},
                    follow_redirects=False)
    url = r.headers["location"]
    first = client.get(url).text
    section = first[first.index('id="data-used"'):]
    assert "a FHIR Bundle file" in section and "Read but not used, or changed, and why" in section
    settings = settings_from_mapping({"server": {"database": db.url}})
    fresh_db = Database(db.url)
    try:  # a new app on the same database: nothing kept in memory
        with TestClient(create_app(settings, fresh_db), base_url="https://testserver") as again:
            assert _sign_in(again) == 303
            later = again.get(url).text
    finally:
        fresh_db.dispose()
    assert later[later.index('id="data-used"'):].split("</section>")[0] == \
        section.split("</section>")[0]
    assert "MedicationRequest/" in section or "MedicationStatement/" in section
