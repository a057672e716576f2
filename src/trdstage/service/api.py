"""REST API /api/v1: assess (stateless), patients with versions, stored assessments, the
audit trail, sign-in. Every route needs a bearer token; every look at or change of patient
data, and every refusal, is an audit event written in the same transaction."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from trdstage import assessing
from trdstage.adapters.errors import InputError
from trdstage.domain.patient import Patient as DomainPatient
from trdstage.domain.results import Assessment as AssessmentResult
from trdstage.service import audit, store
from trdstage.service.auth import (
    Admin,
    Clinician,
    DbSession,
    Principal,
    current_principal,
    get_session,
    issue_token,
    refuse,
    sign_in,
)
from trdstage.service.fhir_out import results_bundle
from trdstage.service.models import Account, Assessment, Patient, PatientVersion
from trdstage.service.problems import FHIR_JSON, Problem, responses
from trdstage.service.schemas import (
    AccountOut,
    AssessmentOut,
    AssessmentPage,
    AssessmentSummary,
    PatientOut,
    PatientPage,
    PatientSummary,
    SignIn,
    TokenOut,
    VersionDocument,
    VersionOut,
    VersionPage,
)

router = APIRouter(prefix="/api/v1", responses=responses(400, 401, 429))

# Accept -> output format of an assessment
OUTPUTS = {"application/json": "json", FHIR_JSON: "fhir", "text/html": "html",
           "application/pdf": "pdf"}
# A rendered report (text/html answer): its own inline styles and SVG charts, nothing else.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
BODY_TYPES = store.JSON_TYPES + store.YAML_TYPES
MAX_COUNT = 200


async def _body(request: Request) -> bytes:
    return await request.body()


Body = Annotated[bytes, Depends(_body)]
AsOf = Annotated[str | None, Query(
    description="Assessment date YYYY-MM-DD (default: today).", examples=["2026-01-01"],
    max_length=10)]
PolicyName = Annotated[str, Query(description="A bundled policy (`trdstage policies`).",
                                  max_length=100)]
AudienceQ = Annotated[Literal["clinician", "patient"], Query(
    description="Reader of the HTML or PDF report.")]
Count = Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)]
Offset = Annotated[int, Query(alias="_offset", ge=0, le=10_000_000)]


def _input_problem(exc: InputError | store.UnsupportedMediaType) -> Problem:
    if isinstance(exc, store.UnsupportedMediaType):
        return Problem(415, str(exc), where="Content-Type")
    return Problem(422, exc.message, where=exc.where)


def _as_of(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise Problem(400, f"{value!r} is not a date (YYYY-MM-DD)", where="as_of") from None


def _policy(name: str) -> Any:
    try:
        return store.bundled_policy(name)
    except InputError as exc:
        raise Problem(400, exc.message, where="policy") from None


def negotiate(accept: str | None, offered: dict[str, str] = OUTPUTS) -> str:
    """The output format for an Accept header (JSON when absent or */*); 406 when none of
    `offered` is acceptable."""
    if not accept or not accept.strip():
        return offered["application/json"]
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in ("*/*", "application/*"):
            media = "application/json"
        if media in offered and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, media)
    if best is None:
        raise Problem(406, f"cannot answer in {accept!r}; offered: {', '.join(offered)}",
                      where="Accept")
    return offered[best[2]]


def _render(patient: DomainPatient, result: AssessmentResult, fmt: str,
            audience: assessing.Audience,
            sources: dict[str, list[str]], inputs: list[str]) -> Response:
    if fmt == "json":
        return Response(result.model_dump_json(indent=2) + "\n", media_type="application/json")
    if fmt == "fhir":
        bundle = results_bundle(result, sources, inputs)
        return Response(json.dumps(bundle, indent=2) + "\n", media_type=FHIR_JSON)
    if fmt == "pdf":
        return Response(assessing.render(patient, result, "pdf", audience),
                        media_type="application/pdf")
    return Response(assessing.render(patient, result, "html", audience),
                    media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": REPORT_CSP})


_ASSESS_OUTPUT = {
    "description": "The result: the JSON contract (`trdstage schema --result`), a FHIR "
                   "results Bundle with a Provenance, or the report (HTML or PDF).",
    "model": AssessmentResult,
    "content": {FHIR_JSON: {"schema": {"type": "object"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}
# A synthetic native history (the bundled example D1) as the documented example body.
_EXAMPLE_PATIENT = {"id": "D1", "sex": "female", "episodes": [{
    "onset": "2025-05-02", "severity": "moderate", "medications": [{
        "id": "rx1", "agent": "sertraline", "adherence": "good", "outcome": "non_response",
        "steps": [{"start": "2025-05-16", "end": "2025-07-11", "dose": "100 mg"}]}]}]}


def _body_doc(description: str) -> dict[str, Any]:
    content: dict[str, Any] = {t: {"schema": {"type": "object"}} for t in BODY_TYPES}
    content["application/json"]["example"] = _EXAMPLE_PATIENT
    return {"requestBody": {"required": True, "description": description,
                            "content": content}}


_BODY_DOC = _body_doc("A FHIR R4 Bundle, or a native patient document (`trdstage schema`) "
                      "in JSON or YAML.")
_PATIENT_BODY = _body_doc("A native patient document (`trdstage schema`) in JSON or YAML.")


@router.post("/assess", tags=["assess"], summary="Assess one record (nothing stored)",
             responses={200: _ASSESS_OUTPUT, **responses(400, 403, 406, 413, 415, 422)},
             openapi_extra=_BODY_DOC)
async def assess(request: Request, body: Body, principal: Clinician,
                 session: DbSession, as_of: AsOf = None, policy: PolicyName = "default",
                 audience: AudienceQ = "clinician") -> Response:
    """Stage a FHIR Bundle or a native patient document under every model, with the advice.
    `Accept` picks the output: `application/json` (default), `application/fhir+json`,
    `text/html` or `application/pdf`."""
    fmt = negotiate(request.headers.get("accept"))
    when = _as_of(as_of)
    chosen = _policy(policy)
    if audience != "clinician" and fmt not in ("html", "pdf"):
        raise Problem(400, "audience=patient needs Accept: text/html or application/pdf",
                      where="audience")

    def work() -> Response:
        try:
            raw = store.read_body(body, request.headers.get("content-type"))
            got = store.read_input(raw)
        except (InputError, store.UnsupportedMediaType) as exc:
            raise _input_problem(exc) from None
        result = assessing.run(got.patient, as_of=when, policy=chosen, notices=got.notices)
        inputs = sorted({ref for refs in got.sources.values() for ref in refs})
        response = _render(got.patient, result, fmt, audience, got.sources, inputs)
        audit.record(session, actor=principal.actor, kind=audit.rest("operation"),
                     action=audit.Action.execute, request=request,
                     query=f"$assess as_of={when.isoformat()} policy={chosen.name} "
                           f"output={fmt} input={store.digest(raw)[:16]}")
        session.commit()
        return response

    return await run_in_threadpool(work)


def _patient_out(patient: Patient, version: PatientVersion) -> PatientOut:
    return PatientOut(id=patient.id, version=version.version, created=patient.created,
                      updated=patient.updated, document=version.document)


def _owned(session: Session, request: Request, principal: Principal, patient_id: str,
           kind: audit.Kind) -> Patient:
    patient = store.find_patient(session, principal.account, patient_id)
    if patient is None:
        raise refuse(session, request, 404, "no such patient", kind, principal.actor,
                     patient_id=patient_id[:64], action=audit.Action.read)
    return patient


def _read_document(request: Request, body: bytes) -> Any:
    try:
        raw = store.read_body(body, request.headers.get("content-type"))
        store.native_patient(raw)
    except (InputError, store.UnsupportedMediaType) as exc:
        raise _input_problem(exc) from None
    return raw


def _page_link(request: Request, total: int, offset: int, count: int) -> str | None:
    if offset + count >= total:
        return None
    params = dict(request.query_params)
    params.update({"_offset": str(offset + count), "_count": str(count)})
    return f"{request.url.path}?{urlencode(params)}"


@router.post("/patients", tags=["patients"], status_code=201, response_model=PatientOut,
             summary="Store a new patient (native history)",
             responses=responses(403, 413, 415, 422), openapi_extra=_PATIENT_BODY)
def create_patient(request: Request, response: Response, body: Body, principal: Clinician,
                   session: DbSession) -> PatientOut:
    raw = _read_document(request, body)
    patient = store.create_patient(session, principal.account, raw)
    audit.record(session, actor=principal.actor, kind=audit.rest("create"),
                 action=audit.Action.create, request=request, patient_id=patient.id)
    session.commit()
    version = store.version_of(session, patient)
    assert version is not None  # noqa: S101 - created just above
    response.headers["Location"] = f"/api/v1/patients/{patient.id}"
    response.headers["ETag"] = f'W/"{patient.current_version}"'
    return _patient_out(patient, version)


@router.get("/patients", tags=["patients"], response_model=PatientPage,
            summary="The patients this account stores", responses=responses(400, 403))
def list_patients(request: Request, principal: Clinician, session: DbSession,
                  count: Count = 50, offset: Offset = 0) -> PatientPage:
    total, rows = store.list_patients(session, principal.account, offset, count)
    audit.record(session, actor=principal.actor, kind=audit.rest("search-type"),
                 action=audit.Action.read, request=request, entity="Patient",
                 query=f"_offset={offset}&_count={count}")
    session.commit()
    return PatientPage(total=total, offset=offset, items=[
        PatientSummary(id=p.id, version=p.current_version, created=p.created,
                       updated=p.updated) for p in rows],
        next=_page_link(request, total, offset, count))


@router.get("/patients/{patient_id}", tags=["patients"], response_model=PatientOut,
            summary="A patient's current version", responses=responses(403, 404))
def read_patient(request: Request, response: Response, patient_id: str,
                 principal: Clinician, session: DbSession) -> PatientOut:
    patient = _owned(session, request, principal, patient_id, audit.rest("read"))
    version = store.version_of(session, patient)
    assert version is not None  # noqa: S101 - current_version always exists
    audit.record(session, actor=principal.actor, kind=audit.rest("read"),
                 action=audit.Action.read, request=request, patient_id=patient.id)
    session.commit()
    response.headers["ETag"] = f'W/"{patient.current_version}"'
    return _patient_out(patient, version)


@router.put("/patients/{patient_id}", tags=["patients"], response_model=PatientOut,
            summary="Store a new version of a patient (the previous ones are kept)",
            responses=responses(403, 404, 412, 413, 415, 422), openapi_extra=_PATIENT_BODY)
def update_patient(request: Request, response: Response, patient_id: str, body: Body,
                   principal: Clinician, session: DbSession) -> PatientOut:
    patient = _owned(session, request, principal, patient_id, audit.rest("update"))
    expected = request.headers.get("if-match")
    if expected is not None and expected.strip() not in (
            f'W/"{patient.current_version}"', f'"{patient.current_version}"', "*"):
        raise Problem(412, f"the patient is at version {patient.current_version}, not "
                      f"{expected}", where="If-Match")
    raw = _read_document(request, body)
    version = store.update_patient(session, patient, principal.account, raw)
    audit.record(session, actor=principal.actor, kind=audit.rest("update"),
                 action=audit.Action.update, request=request, patient_id=patient.id)
    session.commit()
    response.headers["ETag"] = f'W/"{patient.current_version}"'
    return _patient_out(patient, version)


@router.get("/patients/{patient_id}/versions", tags=["patients"], response_model=VersionPage,
            summary="Every version of a patient", responses=responses(403, 404))
def list_versions(request: Request, patient_id: str, principal: Clinician,
                  session: DbSession) -> VersionPage:
    patient = _owned(session, request, principal, patient_id, audit.rest("history-instance"))
    items = [VersionOut(version=v.version, created=v.created, author=_name(session, v.author_id),
                        digest=v.digest) for v in patient.versions]
    audit.record(session, actor=principal.actor, kind=audit.rest("history-instance"),
                 action=audit.Action.read, request=request, patient_id=patient.id)
    session.commit()
    return VersionPage(patient=patient.id, items=items)


@router.get("/patients/{patient_id}/versions/{version}", tags=["patients"],
            response_model=VersionDocument, summary="One version of a patient",
            responses=responses(403, 404))
def read_version(request: Request, patient_id: str,
                 version: Annotated[int, Path(ge=1, le=2_147_483_647)], principal: Clinician,
                 session: DbSession) -> VersionDocument:
    patient = _owned(session, request, principal, patient_id, audit.rest("vread"))
    row = store.version_of(session, patient, version)
    if row is None:
        raise refuse(session, request, 404, "no such version", audit.rest("vread"),
                     principal.actor, patient_id=patient.id, action=audit.Action.read)
    audit.record(session, actor=principal.actor, kind=audit.rest("vread"),
                 action=audit.Action.read, request=request, patient_id=patient.id,
                 entity=f"Patient/{patient.id}/_history/{row.version}")
    session.commit()
    return VersionDocument(version=row.version, created=row.created,
                           author=_name(session, row.author_id), digest=row.digest,
                           document=row.document)


def _name(session: Session, account_id: int) -> str:
    account = session.get(Account, account_id)
    return account.name if account is not None else str(account_id)


def _assessment_out(session: Session, row: Assessment) -> AssessmentOut:
    return AssessmentOut(id=row.id, patient=row.patient_id, patient_version=row.patient_version,
                         as_of=row.as_of, policy=row.policy,
                         trdstage_version=row.trdstage_version,
                         knowledge_version=row.knowledge_version, created=row.created,
                         author=_name(session, row.author_id),
                         result=AssessmentResult.model_validate(row.result))


@router.post("/patients/{patient_id}/assessments", tags=["assessments"], status_code=201,
             response_model=AssessmentOut, summary="Assess a stored patient and store the "
             "result", responses=responses(400, 403, 404, 422))
def create_assessment(request: Request, response: Response, patient_id: str,
                      principal: Clinician, session: DbSession, as_of: AsOf = None,
                      policy: PolicyName = "default",
                      version: Annotated[int | None, Query(
                          ge=1, le=2_147_483_647,
                          description="The patient version (default: current).")] = None,
                      ) -> AssessmentOut:
    when = _as_of(as_of)
    chosen = _policy(policy)
    patient = _owned(session, request, principal, patient_id, audit.rest("create"))
    try:
        row = store.assess_patient(session, principal.account, patient, as_of=when,
                                   policy=chosen, version=version)
    except InputError as exc:
        raise refuse(session, request, 404 if exc.where == "version" else 422, exc.message,
                     audit.rest("create"), principal.actor, patient_id=patient.id,
                     action=audit.Action.create) from None
    audit.record(session, actor=principal.actor, kind=audit.rest("create"),
                 action=audit.Action.create, request=request, patient_id=patient.id,
                 entity=f"Assessment/{row.id}",
                 query=f"as_of={when.isoformat()} policy={chosen.name} "
                       f"version={row.patient_version}")
    session.commit()
    response.headers["Location"] = f"/api/v1/assessments/{row.id}"
    return _assessment_out(session, row)


@router.get("/patients/{patient_id}/assessments", tags=["assessments"],
            response_model=AssessmentPage, summary="A patient's stored assessments",
            responses=responses(400, 403, 404))
def list_assessments(request: Request, patient_id: str, principal: Clinician,
                     session: DbSession, count: Count = 50, offset: Offset = 0
                     ) -> AssessmentPage:
    patient = _owned(session, request, principal, patient_id, audit.rest("search-type"))
    total, rows = store.list_assessments(session, patient, offset, count)
    audit.record(session, actor=principal.actor, kind=audit.rest("search-type"),
                 action=audit.Action.read, request=request, patient_id=patient.id,
                 entity="Assessment", query=f"_offset={offset}&_count={count}")
    session.commit()
    return AssessmentPage(patient=patient.id, total=total, offset=offset, items=[
        AssessmentSummary(id=a.id, patient_version=a.patient_version, as_of=a.as_of,
                          policy=a.policy, created=a.created) for a in rows],
        next=_page_link(request, total, offset, count))


@router.get("/assessments/{assessment_id}", tags=["assessments"],
            summary="A stored assessment",
            responses={200: {"model": AssessmentOut, "description": "The stored assessment "
                             "(JSON), its FHIR results Bundle, or the report (HTML, PDF).",
                             "content": {FHIR_JSON: {"schema": {"type": "object"}},
                                         "text/html": {"schema": {"type": "string"}},
                                         "application/pdf": {"schema": {
                                             "type": "string", "format": "binary"}}}},
                       **responses(400, 403, 404, 406)})
def read_assessment(request: Request, assessment_id: str, principal: Clinician,
                    session: DbSession, audience: AudienceQ = "clinician") -> Response:
    fmt = negotiate(request.headers.get("accept"))
    row = store.find_assessment(session, principal.account, assessment_id)
    if row is None:
        raise refuse(session, request, 404, "no such assessment", audit.rest("read"),
                     principal.actor, action=audit.Action.read)
    if audience != "clinician" and fmt not in ("html", "pdf"):
        raise Problem(400, "audience=patient needs Accept: text/html or application/pdf",
                      where="audience")
    out = _assessment_out(session, row)
    audit.record(session, actor=principal.actor, kind=audit.rest("read"),
                 action=audit.Action.read, request=request, patient_id=row.patient_id,
                 entity=f"Assessment/{row.id}")
    session.commit()
    if fmt == "json":
        return Response(out.model_dump_json(indent=2) + "\n", media_type="application/json")
    version = session.get(Patient, row.patient_id)
    document = store.version_of(session, version, row.patient_version) if version else None
    assert document is not None  # noqa: S101 - an assessment's version is never deleted
    patient = store.native_patient(document.document)
    return _render(patient, out.result, fmt, audience, {},
                   [f"Patient/{row.patient_id}/_history/{row.patient_version}"])


# --- the audit trail (admin) ---------------------------------------------------------------

DATE_PREFIXES = ("ge", "le", "gt", "lt", "eq")


@router.get("/audit", tags=["audit"], summary="The audit trail as a FHIR Bundle of "
            "AuditEvents (admin)",
            responses={200: {"description": "A searchset Bundle, newest first.",
                             "content": {FHIR_JSON: {"schema": {"type": "object"}}}},
                       **responses(400, 403)})
def read_audit(
    request: Request, principal: Admin, session: DbSession,
    patient: Annotated[str | None, Query(max_length=64, description="Patient local id.")
                       ] = None,
    agent: Annotated[str | None, Query(max_length=200, description="Account name.")] = None,
    action: Annotated[str | None, Query(pattern="^[CRUDE]$")] = None,
    subtype: Annotated[str | None, Query(max_length=40, description="e.g. read, create, "
                                         "operation, 110122 (login).")] = None,
    outcome: Annotated[int | None, Query(ge=0, le=12, description="0, 4, 8 or 12.")] = None,
    date_: Annotated[list[str] | None, Query(
        alias="date", description="FHIR date search, repeatable: ge2026-01-01, "
        "lt2026-02-01T12:00:00Z ...")] = None,
    count: Count = 50, offset: Offset = 0,
) -> JSONResponse:
    from sqlalchemy import func, select

    from trdstage.service.models import AuditEvent

    query = select(AuditEvent)
    if patient:
        query = query.where(AuditEvent.patient_id == patient)
    if agent:
        query = query.where(AuditEvent.agent_name == agent)
    if action:
        query = query.where(AuditEvent.action == action)
    if subtype:
        query = query.where(AuditEvent.subtype_code == subtype)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    for value in date_ or []:
        query = _date_filter(query, value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).offset(offset).limit(count))
    base = request.app.state.settings.server.public_url
    entries = [{"fullUrl": f"{base}/api/v1/audit/{row.id}", "resource": audit.to_fhir(row, base),
                "search": {"mode": "match"}} for row in rows]
    params = [(k, v) for k, v in request.query_params.multi_items()
              if k not in ("_offset", "_count")]
    links = [{"relation": "self", "url": _url(base, request, params, offset, count)}]
    if offset + count < total:
        links.append({"relation": "next",
                      "url": _url(base, request, params, offset + count, count)})
    if offset > 0:
        links.append({"relation": "previous",
                      "url": _url(base, request, params, max(0, offset - count), count)})
    audit.record(session, actor=principal.actor, kind=audit.rest("search-type"),
                 action=audit.Action.read, request=request, entity="AuditEvent",
                 query=urlencode(request.query_params.multi_items())[:2000] or None)
    session.commit()
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
              "entry": entries}
    return JSONResponse(bundle, media_type=FHIR_JSON)


def _url(base: str, request: Request, params: list[tuple[str, str]], offset: int,
         count: int) -> str:
    return (f"{base}{request.url.path}?"
            f"{urlencode([*params, ('_offset', str(offset)), ('_count', str(count))])}")


def _date_filter(query: Any, value: str) -> Any:
    from datetime import UTC

    from trdstage.service.models import AuditEvent

    prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
    try:
        if len(text) == 10:
            start = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            from datetime import timedelta

            end = start + timedelta(days=1)
        else:
            start = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            end = start
    except ValueError:
        raise Problem(400, f"{value!r} is not a FHIR date search value (e.g. ge2026-01-01)",
                      where="date") from None
    column = AuditEvent.recorded
    if prefix == "ge":
        return query.where(column >= start)
    if prefix == "gt":
        return query.where(column >= end) if end != start else query.where(column > start)
    if prefix == "lt":
        return query.where(column < start)
    if prefix == "le":
        return query.where(column < end) if end != start else query.where(column <= start)
    if end == start:
        return query.where(column == start)
    return query.where(column >= start, column < end)


# --- sign-in and accounts ----------------------------------------------------------------

@router.post("/tokens", tags=["accounts"], status_code=201, response_model=TokenOut,
             summary="Sign in with a name and password: a new API token",
             responses=responses(400, 413, 415))
def create_token(request: Request, credentials: SignIn,
                 session: Annotated[Session, Depends(get_session)]) -> TokenOut:
    limiter = request.app.state.limiter
    wait = limiter.hit(f"failed:{audit.client_address(request)}")
    if wait is not None:
        raise Problem(429, "too many sign-ins from this address",
                      headers={"Retry-After": str(wait)})
    account = sign_in(session, credentials.name, credentials.password, request)
    if account is None:
        session.commit()
        raise Problem(401, "wrong name or password",
                      headers={"WWW-Authenticate": 'Bearer realm="trdstage"'})
    plain, row = issue_token(session, account, days=credentials.expires_days,
                             label="sign-in")
    session.commit()
    return TokenOut(token=plain, id=row.id, account=account.name, role=account.role,
                    expires=row.expires)


@router.get("/me", tags=["accounts"], response_model=AccountOut,
            summary="The account this token acts as")
def me(principal: Annotated[Principal, Depends(current_principal)],
       session: DbSession) -> AccountOut:
    session.commit()
    acc = principal.account
    return AccountOut(name=acc.name, role=acc.role, active=acc.active, created=acc.created)


@router.get("/accounts", tags=["accounts"], response_model=list[AccountOut],
            summary="Every account (admin)", responses=responses(403))
def list_accounts(principal: Admin, session: DbSession) -> list[AccountOut]:
    from sqlalchemy import select

    session.commit()
    return [AccountOut(name=a.name, role=a.role, active=a.active, created=a.created)
            for a in session.scalars(select(Account).order_by(Account.name))]
