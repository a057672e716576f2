"""The staging card's absolute link: the stored assessment behind it, for a trdstage account
(a clinician's bearer token; the read is audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trdstage.service import audit
from trdstage.service.auth import Clinician, DbSession
from trdstage.service.cds.sql import CdsAssessment
from trdstage.service.problems import Problem, responses

PATH = "/api/v1/cds-assessments/{id}"


def reports_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["CDS Hooks"])

    @router.get("/cds-assessments/{assessment_id}", summary="The assessment behind a staging "
                "card (the card's absolute link)", responses=responses(400, 401, 403, 404))
    def read(request: Request, assessment_id: str, principal: Clinician,
             session: DbSession) -> JSONResponse:
        row = session.get(CdsAssessment, assessment_id[:36])
        found = None if row is None else dict(row.result)
        audit.record(session, actor=principal.actor, kind=audit.rest("read"),
                     action=audit.Action.read, request=request,
                     outcome=audit.Outcome.success if found else audit.Outcome.minor_failure,
                     entity=f"CdsAssessment/{assessment_id[:36]}")
        session.commit()
        if found is None:
            raise Problem(404, "no such assessment")
        return JSONResponse(found)

    return router
