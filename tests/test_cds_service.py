"""CDS Hooks inside `trdstage serve` (create_app with a `[cds]` table, SQLite migrated by the
shipped migrations), called by the sandbox EHR on another loopback port: cards, assessments,
feedback and audit events are in the database; no JWT or access token is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from cds_support import check_response, post, serve
from trdstage.service.app import create_app
from trdstage.service.auth import issue_token
from trdstage.service.cds import cds_settings
from trdstage.service.cds.history import prefetch_templates
from trdstage.service.cds.router import SAFETY, STAGING
from trdstage.service.cds.sql import CdsAssessment, CdsCard, CdsFeedback
from trdstage.service.db import Database, migrate
from trdstage.service.models import Account, AuditEvent
from trdstage.service.sandbox.app import Sandbox, build_sandbox
from trdstage.service.sandbox.client import draft_order
from trdstage.service.sandbox.run import free_port
from trdstage.service.settings import SettingsError, settings_from_mapping


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Database, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('cds') / 'service.sqlite'}"
    migrate(url)
    ehr_port, port = free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    sb = build_sandbox(f"http://127.0.0.1:{ehr_port}", service_url=service)
    settings = settings_from_mapping({
        "server": {"database": url, "host": "127.0.0.1", "port": port},
        "cds": {"clients": [{"iss": sb.client.iss, "jwks_url": sb.client.jwks_url,
                             "fhir_servers": [sb.client.fhir_base]}]}})
    app = create_app(settings)
    with serve(sb.app, ehr_port), serve(app, port, lifespan="on"):
        sb.base_url = service  # the hooks are called on the service
        yield sb, app.state.db, service


def _view(sb: Sandbox, pid: str) -> httpx.Response:
    body = sb.client.request("patient-view", pid, prefetch_templates(), "none",
                             access_token=sb.fhir.token)
    return post(sb, STAGING, body)


def test_cards_assessment_feedback_and_audit_are_stored(wired: tuple[Sandbox, Database, str]
                                                        ) -> None:
    sb, db, service = wired
    r = _view(sb, "d3")
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] and r.headers["cache-control"] == "no-store"
    (card,) = check_response(r.json())
    draft = draft_order("fluoxetine", "phenelzine 15 MG Oral Tablet", 3)
    body = sb.client.request("order-sign", "fluoxetine", prefetch_templates(), "full", draft,
                             access_token=sb.fhir.token)
    (critical,) = check_response(post(sb, SAFETY, body).json())
    fb = {"feedback": [{"card": critical["uuid"], "outcome": "overridden",
                        "overrideReason": {"reason": critical["overrideReasons"][0]},
                        "outcomeTimestamp": "2026-12-02T12:00:00Z"}]}
    r = post(sb, SAFETY, fb, path=f"/cds-services/{SAFETY}/feedback")
    assert r.json() == {"stored": 1}
    with db.session() as s:
        row = s.get(CdsCard, card["uuid"])
        assert row is not None and row.patient_ref == "d3" and row.assessment_id
        stored = s.get(CdsAssessment, row.assessment_id)
        assert stored is not None and stored.result["staging"]["thase_rush"]["stage"] >= 1
        assert s.get(CdsCard, critical["uuid"]) is not None
        (feedback,) = s.scalars(select(CdsFeedback).where(
            CdsFeedback.card_uuid == critical["uuid"]))
        assert feedback.outcome == "overridden" and feedback.reason is not None
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.agent_kind == "client")))
        assert {(e.subtype_code, e.action) for e in events} >= {
            ("operation", "E"), ("create", "C")}
        hook = next(e for e in events if e.patient_id == "d3")
        assert hook.agent_name == sb.client.iss and hook.request_id and card["uuid"] in (
            hook.query or "")
        # the absolute link: the stored assessment, for a signed-in clinician
        account = Account(name="dr-cds", role="clinician")
        s.add(account)
        s.flush()
        token, _ = issue_token(s, account)
        s.commit()
    link = next(x["url"] for x in card["links"] if x["type"] == "absolute")
    assert link.startswith(f"{service}/api/v1/cds-assessments/")
    assert httpx.get(link).status_code == 401
    got = httpx.get(link, headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200 and got.json()["staging"] == stored.result["staging"]


def test_a_refused_jwt_is_audited_and_nothing_secret_is_stored(
        wired: tuple[Sandbox, Database, str]) -> None:
    sb, db, _ = wired
    url = f"{sb.base_url}/cds-services/{STAGING}"
    bad = sb.client.token(url, iss="https://evil.example")
    body = sb.client.request("patient-view", "d1", prefetch_templates(), "full")
    r = post(sb, STAGING, body, token=bad)
    assert r.status_code == 401 and r.content == b""
    assert _view(sb, "d1").status_code == 200
    with db.session() as s:
        last = s.scalars(select(AuditEvent).where(AuditEvent.outcome == 4).order_by(
            AuditEvent.id.desc())).first()
        assert last is not None and last.outcome_desc == "unknown iss or tenant"
        assert last.agent_kind == "anonymous"
        dump: list[Any] = []
        for table in ("audit_event", "cds_card", "cds_assessment", "cds_feedback"):
            dump += [tuple(row) for row in s.execute(text(f"SELECT * FROM {table}"))]  # noqa: S608
    blob = repr(dump)
    assert sb.fhir.token not in blob and bad not in blob and "eyJ" not in blob


def test_a_replayed_jti_is_refused_through_the_database(
        wired: tuple[Sandbox, Database, str]) -> None:
    """The jti store is the database: every server process sharing it refuses a replay."""
    sb, db, _ = wired
    url = f"{sb.base_url}/cds-services/{STAGING}"
    token = sb.client.token(url)
    body = sb.client.request("patient-view", "d1", prefetch_templates(), "full")
    assert post(sb, STAGING, body, token=token).status_code == 200
    assert post(sb, STAGING, body, token=token).status_code == 401
    from trdstage.service.cds.sql import CdsJti, SqlReplayCache

    with db.session() as s:
        assert s.scalars(select(CdsJti)).first() is not None
    other = SqlReplayCache(db)  # another process's view of the same database
    import jwt

    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert other.add(sb.client.iss, jti, 4_000_000_000.0) is False
    assert other.add(sb.client.iss, "fresh-" + jti, 4_000_000_000.0) is True


def test_cds_settings_errors_name_the_key() -> None:
    with pytest.raises(SettingsError, match=r"\[cds\] clients\[0\]"):
        cds_settings({"clients": [{"iss": "x"}]})
    with pytest.raises(SettingsError, match="cors_origins"):
        cds_settings({"cors_origins": ["*"]})
    with pytest.raises(SettingsError, match=r"unknown_key|extra"):
        cds_settings({"unknown_key": 1})


def test_cors_for_configured_origins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    migrate(url)
    port = free_port()
    origin = "https://sandbox.cds-hooks.org"
    settings = settings_from_mapping({"server": {"database": url, "port": port},
                                      "cds": {"cors_origins": [origin]}})
    with serve(create_app(settings), port, lifespan="on"):
        target = f"http://127.0.0.1:{port}/cds-services/{STAGING}"
        headers = {"Access-Control-Request-Method": "POST",
                   "Access-Control-Request-Headers": "authorization,content-type"}
        ok = httpx.options(target, headers={**headers, "Origin": origin})
        assert ok.headers["access-control-allow-origin"] == origin
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = httpx.options(target, headers={**headers, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_the_shipped_migrations_create_the_cds_tables(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from trdstage.service.db import make_engine
    from trdstage.service.models import Base

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                Base.metadata)
    engine.dispose()
    assert diff == []
