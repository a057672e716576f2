"""The CDS Hooks 2.0.1 endpoints: discovery, the two services, feedback.

`build_cds_router(base_url, settings, store)` returns a FastAPI router; `install_cds(app, ...)`
includes it and adds CORS for the configured origins (the CDS Hooks sandbox and browser EHRs
call from a page). Every request, discovery and feedback included, is authenticated with the
client's JWT (`auth.Verifier`) and audited; a refused token is a bare 401.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.middleware.cors import CORSMiddleware

from trdstage.adapters.errors import InputError, format_loc
from trdstage.knowledge import load_policy
from trdstage.service.cds import models as m
from trdstage.service.cds.auth import AuthFailure, Caller, Verifier
from trdstage.service.cds.cards import Links
from trdstage.service.cds.history import PreconditionFailed, load_history, prefetch_templates
from trdstage.service.cds.hooks import order_cards, patient_view
from trdstage.service.cds.settings import CdsSettings
from trdstage.service.cds.store import AuditRecord, CdsStore, IssuedCard

STAGING = "trdstage-staging"
SAFETY = "trdstage-medication-safety"
HOOKS = {STAGING: ("patient-view",), SAFETY: ("order-select", "order-sign")}
MAX_BODY = 16 * 1024 * 1024
NO_STORE = {"Cache-Control": "no-store"}
_ERROR = {"application/json": {"schema": {"type": "object", "properties": {
    "error": {"type": "string"}}}}}
_DOCS = {400: "Bad request (the message names the field)", 401: "JWT refused (no body)",
         404: "No such CDS service", 412: "The FHIR data needed could not be had",
         413: "Body too large", 415: "Not JSON"}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"description": _DOCS[c], **({} if c == 401 else {"content": _ERROR})}
            for c in codes}


def discovery() -> m.Discovery:
    prefetch = prefetch_templates()
    return m.Discovery(services=[
        m.Service(hook="patient-view", id=STAGING, title="TRD staging",
                  description="Stages treatment-resistant depression under five published "
                  "models (Thase & Rush, MGH-S, Maudsley, European, regulatory) from the "
                  "patient's treatment history, with next steps and safety alerts. Decision "
                  "support, not a medical device.", prefetch=prefetch),
        *[m.Service(hook=hook, id=SAFETY, title="Antidepressant order safety",
                    description="Checks each draft antidepressant or augmenter order against "
                    "the history: MAOI washouts and combinations, serotonin syndrome pairs, dose "
                    "ceilings, lithium monitoring, a drug that already failed an adequate trial "
                    "in this episode, CPIC where a genotype is on record.", prefetch=prefetch)
          for hook in HOOKS[SAFETY]],
    ])


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


def _validation(exc: ValidationError, prefix: str) -> str:
    e = exc.errors()[0]
    return f"{prefix}{'.' if e['loc'] else ''}{format_loc(tuple(e['loc']))}: {e['msg']}"


async def _json(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() not in (
            "application/json", "application/fhir+json"):
        raise _Refused(415, "send application/json")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _Refused(413, "request body too large")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise _Refused(400, "malformed JSON") from exc


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse(model: type[BaseModel], value: Any, prefix: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _Refused(400, _validation(exc, prefix)) from exc


def build_cds_router(base_url: str, settings: CdsSettings, store: CdsStore, *,
                     verifier: Verifier | None = None,
                     today: Callable[[], date] = lambda: datetime.now(UTC).date(),
                     report_url: str = "{base}/api/v1/assessments/{id}") -> APIRouter:
    """The CDS Hooks routes under `/cds-services`, for a service published at `base_url`."""
    base = base_url.rstrip("/")
    check = verifier or Verifier(settings)
    policy = load_policy(settings.policy)
    launch = settings.app_launch_url or f"{base}/app/launch"
    router = APIRouter(tags=["CDS Hooks"])

    async def caller(request: Request, path: str, record: AuditRecord) -> Caller | None:
        record.client_ip = request.client.host if request.client else None
        record.request = request
        try:
            found = await check.verify(request.headers.get("authorization"), f"{base}{path}")
        except AuthFailure as exc:
            record.outcome, record.status, record.detail = "denied", 401, str(exc)
            store.audit(record)
            return None
        record.iss, record.tenant, record.jti = found.iss, found.tenant, found.jti
        return found

    def refused(record: AuditRecord, exc: _Refused) -> JSONResponse:
        record.outcome, record.status, record.detail = "failed", exc.status, exc.message
        store.audit(record)
        return _problem(exc.status, exc.message)

    async def admit(request: Request, service_id: str, path: str,
                    record: AuditRecord) -> Caller | Response:
        """The verified caller of a known service, or the answer to send: 404 (audited) for an
        unknown service, 401 for a refused JWT (audited by `caller`)."""
        if service_id not in HOOKS:
            record.outcome, record.status = "failed", 404
            store.audit(record)
            return _problem(404, "no such CDS service")
        who = await caller(request, path, record)
        if who is None:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return who

    @router.get("/cds-services", summary="CDS Hooks discovery", responses=_responses(401))
    async def get_discovery(request: Request) -> Response:
        record = AuditRecord(action="cds.discovery", outcome="success")
        if await caller(request, "/cds-services", record) is None:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        store.audit(record)
        return JSONResponse(m.dump(discovery()))

    @router.post("/cds-services/{service_id}", summary="Call a CDS service",
                 responses=_responses(400, 401, 404, 412, 413, 415))
    async def call_service(service_id: str, request: Request) -> Response:
        record = AuditRecord(action="cds.hook", outcome="success", service=service_id[:64])
        who = await admit(request, service_id, f"/cds-services/{service_id}", record)
        if isinstance(who, Response):
            return who
        try:
            body = _parse(m.Request, await _json(request), "request")
            record.hook, record.hook_instance = body.hook, body.hookInstance[:64]
            if body.hook not in HOOKS[service_id]:
                raise _Refused(400, f"hook {body.hook!r} is not served by {service_id}")
            ctx_model = m.PatientContext if body.hook == "patient-view" else m.OrderContext
            context = _parse(ctx_model, body.context, "context")
            record.user, record.patient = context.userId[:200], context.patientId
            history = await load_history(body, who.client, context.patientId,
                                         settings.fhir_deadline_s)
            record.fetched = history.fetched
        except _Refused as exc:
            return refused(record, exc)
        except PreconditionFailed as exc:
            return refused(record, _Refused(412, str(exc)))
        except InputError as exc:
            return refused(record, _Refused(400, str(exc)))
        assessment_id = str(uuid.uuid4())
        links = Links(docs_url=settings.docs_url, app_launch_url=launch,
                      report_url=report_url.format(base=base, id=assessment_id))
        as_of = today()
        try:
            if body.hook == "patient-view":
                assessment, cards = await asyncio.to_thread(
                    patient_view, history.read, as_of, policy, links)
            else:
                assessment = None
                links.report_url = None
                cards = await asyncio.to_thread(
                    order_cards, history.read, history.resources, context.draftOrders,
                    context.selections if body.hook == "order-select" else None,
                    context.patientId, as_of, policy, links)
        except InputError as exc:
            return refused(record, _Refused(400, str(exc)))
        if not cards:
            assessment = None
        issued = [IssuedCard(uuid=c.uuid or "", service=service_id, hook=body.hook,
                             hook_instance=body.hookInstance, iss=who.iss, tenant=who.tenant,
                             patient=context.patientId, indicator=c.indicator, summary=c.summary,
                             card=m.dump(c), assessment_id=assessment_id if assessment else None)
                  for c in cards]
        record.cards = [c.uuid for c in issued]
        store.issue(issued, assessment_id if assessment else None, assessment, record)
        return JSONResponse(m.dump(m.Response(cards=cards)), headers=NO_STORE)

    @router.post("/cds-services/{service_id}/feedback", summary="Feedback on issued cards",
                 responses=_responses(400, 401, 404, 413, 415))
    async def feedback(service_id: str, request: Request) -> Response:
        record = AuditRecord(action="cds.feedback", outcome="success", service=service_id[:64])
        who = await admit(request, service_id, f"/cds-services/{service_id}/feedback", record)
        if isinstance(who, Response):
            return who
        try:
            body = _parse(m.Feedback, await _json(request), "")
        except _Refused as exc:
            return refused(record, exc)
        record.cards = [i.card for i in body.feedback]
        unknown = store.feedback(service_id, who.iss, who.tenant, body.feedback, record)
        return JSONResponse({"stored": len(body.feedback) - len(unknown),
                             **({"unknownCards": unknown} if unknown else {})},
                            headers=NO_STORE)

    return router


def install_cds(app: FastAPI, base_url: str, settings: CdsSettings, store: CdsStore,
                **kwargs: Any) -> None:
    """Mount the CDS Hooks routes on `app`, with CORS for the configured origins."""
    app.include_router(build_cds_router(base_url, settings, store, **kwargs))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
