"""The clinician web app at /app: pages, forms, downloads and the SMART launch.

`create_router(backend, settings)` returns a FastAPI router that any app can include; the service
includes it in `create_app`. Every page works without JavaScript (plain links and forms); htmx,
served from the package, only makes some of them quicker. Every request touching patient data
needs a signed-in session and leaves an audit event.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote, urlencode

import yaml
from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.read import FhirRead, read_fhir_data
from trdstage.adapters.native import MAX_FILE_BYTES, patient_from_mapping
from trdstage.domain.enums import Adherence, CourseKind, Laterality, Outcome, Scale, Severity, Sex
from trdstage.domain.patient import Patient
from trdstage.domain.results import Assessment, Notice
from trdstage.knowledge import KnowledgeError, load_policy, policy_names
from trdstage.report.content import (
    COURSE_COLUMNS,
    ECT_COLUMNS,
    TRIAL_COLUMNS,
    build_clinician,
)
from trdstage.report.html import render_html, version
from trdstage.report.text import render_json
from trdstage.service.webapp import forms, smart, views
from trdstage.service.webapp.backend import (
    AssessmentEntry,
    AuditEntry,
    PatientVersion,
    SavedEvent,
    WebBackend,
    now,
)
from trdstage.service.webapp.security import (
    COOKIE,
    Session,
    SessionStore,
    clear_cookie,
    csrf_ok,
    origin_of,
    security_headers,
    set_cookie,
)
from trdstage.service.webapp.settings import WebSettings

STATIC = {"htmx.min.js": "text/javascript", "app.js": "text/javascript",
          "app.css": "text/css"}
PHQ9_ITEMS = 9


@cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("trdstage.service.webapp", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(
        dv=forms.display_value, step_dose=forms.step_dose, version=version(),
        adherences=[a.value for a in Adherence], outcomes=[o.value for o in Outcome],
        severities=[s.value for s in Severity], sexes=[s.value for s in Sex],
        lateralities=[x.value for x in Laterality], course_kinds=[c.value for c in CourseKind],
        scales=[s.value for s in Scale], genes=["CYP2D6", "CYP2C19", "CYP2B6"],
        phq9_items=PHQ9_ITEMS, severity_words=views.SEVERITY_WORDS,
        fid=lambda path: "f-" + path.replace(".", "-"))
    return env


@dataclass
class WebApp:
    backend: WebBackend
    settings: WebSettings
    sessions: SessionStore
    pending: smart.PendingLaunches = field(default_factory=smart.PendingLaunches)

    # ------------------------------------------------------------------ responses
    def headers(self, response: Response) -> Response:
        ehr_origins = sorted({origin_of(e.iss) for e in self.settings.ehrs})
        security_headers(response, ehr_origins, [])
        return response

    def csp(self) -> str:
        probe = Response()
        self.headers(probe)
        return probe.headers["Content-Security-Policy"]

    def page(self, request: Request, template: str, session: Session | None,
             status: int = 200, **values: Any) -> HTMLResponse:
        flash = ""
        if session is not None and session.flash:
            flash, session.flash = session.flash, ""
        html = _env().get_template(template).render(
            session=session, flash=flash, path=request.url.path,
            ehrs=self.settings.ehrs, **values)
        response = HTMLResponse(html, status_code=status)
        if session is not None:
            set_cookie(response, session, self.secure(request))
        return self.headers(response)  # type: ignore[return-value]

    def secure(self, request: Request) -> bool:
        """Secure cookies, except over plain HTTP to a loopback address (the demo), where a
        browser would not send them back."""
        if not self.settings.cookie_secure:
            return False
        local = request.url.hostname in ("127.0.0.1", "localhost", "::1")
        return request.url.scheme == "https" or not local

    def redirect(self, url: str, session: Session | None = None,
                 request: Request | None = None) -> Response:
        response = RedirectResponse(url, status_code=303)
        if session is not None:
            set_cookie(response, session, self.secure(request) if request is not None
                       else self.settings.cookie_secure)
        return self.headers(response)

    # ------------------------------------------------------------------ sessions
    def session(self, request: Request) -> Session:
        """The signed-in session, or a redirect to sign-in (after a time-out, saying so)."""
        session, timed_out = self.sessions.get(request.cookies.get(COOKIE))
        if session is None or not session.signed_in:
            note = "?timeout=1" if timed_out else ""
            nxt = quote(str(request.url.path) + (f"?{request.url.query}"
                                                 if request.url.query else ""))
            sep = "&" if note else "?"
            raise HTTPException(303, headers={"Location": f"/app/signin{note}{sep}next={nxt}"})
        return session

    def admin(self, request: Request) -> Session:
        session = self.session(request)
        if session.role != "admin":
            self.audit(request, session, "denied", "", "failure", "admin page")
            raise HTTPException(403, "this page is for administrators")
        return session

    async def form(self, request: Request, session: Session | None) -> list[tuple[str, str]]:
        """The posted fields, after the CSRF check (403 without a matching token)."""
        data = await request.form()
        token = data.get("csrf")
        if not csrf_ok(session, token if isinstance(token, str) else None):
            raise HTTPException(403, "the form's security token is missing or stale; reload "
                                "the page and try again")
        return [(k, v) for k, v in data.multi_items() if isinstance(v, str)]

    def entry(self, request: Request, session: Session | None, action: str, what: str,
              outcome: str = "success", detail: str = "") -> AuditEntry:
        return AuditEntry(
            at=now(), who=session.account if session and session.account else "anonymous",
            action=action, what=what, outcome="success" if outcome == "success" else "failure",
            detail=detail, source=request.client.host if request.client else "")

    def audit(self, request: Request, session: Session | None, action: str, what: str,
              outcome: str = "success", detail: str = "") -> None:
        self.backend.audit(self.entry(request, session, action, what, outcome, detail))

    def saved_event(self, request: Request, session: Session, action: str = "",
                    detail: str = "") -> SavedEvent:
        """The audit event of a saved version (create or update unless `action` is given),
        written by the backend in the save's transaction."""
        def event(saved: PatientVersion) -> AuditEntry:
            verb = action or ("create" if saved.version == 1 else "update")
            return self.entry(request, session, verb, f"Patient/{saved.local_id}",
                              detail=f"{detail}version {saved.version}")
        return event

    # ------------------------------------------------------------------ patients
    def stored(self, session: Session, key: str, version: int | None = None
               ) -> PatientVersion:
        stored = self.backend.patient(session.account, key, version)
        if stored is None:
            raise HTTPException(404, "no such patient or version")
        return stored

    def assessed(self, stored: PatientVersion, as_of: date, policy: str
                 ) -> tuple[Patient, Assessment]:
        """The stored version assessed (nothing stored yet: `keep` stores it)."""
        try:
            patient = views.patient_of(stored.document, today=max(as_of, date.today()))
            result = views.run(patient, as_of, policy)
        except (InputError, KnowledgeError) as exc:
            raise HTTPException(400, str(exc)) from exc
        ignored = [Notice.model_validate(n) for n in stored.data_used.get("ignored", [])]
        if ignored:
            result = result.model_copy(update={"warnings": [*ignored, *result.warnings]})
        return patient, result

    def keep(self, request: Request, session: Session, stored: PatientVersion,
             result: Assessment, action: str, detail: str) -> None:
        """Store the assessment with the audit event of the request that showed it."""
        entry = AssessmentEntry(id=secrets.token_hex(8), local_id=stored.local_id,
                                version=stored.version, as_of=result.as_of,
                                policy=result.policy, summary=views.one_line(result), at=now(),
                                by=session.account)
        self.backend.record_assessment(
            session.account, entry, json.loads(render_json(result)),
            self.entry(request, session, action, f"Patient/{stored.local_id}", detail=detail))


def _as_of(value: str | None) -> date:
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(400, f"as_of: {value!r} is not a date (YYYY-MM-DD)") from exc


def _number(text: str, name: str, default: float, low: float, high: float) -> float:
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {text!r} is not a number") from exc
    if not low <= value <= high:
        raise HTTPException(400, f"{name}: give {low:g} to {high:g}")
    return value


def _policy(value: str | None, default: str) -> str:
    name = value or default
    if name not in policy_names():
        raise HTTPException(400, f"policy: unknown policy {name!r}; choose one of "
                            f"{', '.join(policy_names())}")
    return name


def _json_ready(value: Any) -> Any:
    """Dates from YAML to ISO text, so that the stored document is plain JSON."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()
                                 if isinstance(v, date | datetime) else str(v)))


def _fhir_used(read: FhirRead, origin: str) -> dict[str, Any]:
    return {"resources": read.sources, "ignored": [n.model_dump(mode="json")
                                                   for n in read.notices],
            "read_at": now().isoformat(timespec="seconds"), "server": origin}


def _patient_document(patient: Patient) -> dict[str, Any]:
    document: dict[str, Any] = _json_ready(patient.model_dump(mode="json",
                                                              exclude_defaults=True))
    return document


def create_router(backend: WebBackend, settings: WebSettings | None = None) -> APIRouter:
    """The /app router over `backend` (accounts, patients, audit)."""
    settings = settings or WebSettings()
    web = WebApp(backend, settings, SessionStore(settings.idle_minutes * 60))
    router = APIRouter(prefix="/app", include_in_schema=False)
    router.state = web  # type: ignore[attr-defined]  # for tests and the service

    # ---------------------------------------------------------------- static and sign-in
    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404)
        body = (resources.files("trdstage.service.webapp") / "static" / name).read_bytes()
        response = Response(body, media_type=STATIC[name])
        response.headers["Cache-Control"] = "public, max-age=3600"
        return web.headers(response)

    @router.get("/signin")
    def signin_page(request: Request, next: str = "/app/", timeout: str = "") -> Response:
        session = web.sessions.new()
        note = (f"You were signed out after {settings.idle_minutes:g} minutes without "
                "activity." if timeout else "")
        return web.page(request, "signin.html.j2", session, next=_safe_next(next), note=note,
                        error="")

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        session, _ = web.sessions.get(request.cookies.get(COOKIE))
        fields = dict(await web.form(request, session))
        name, password = fields.get("username", ""), fields.get("password", "")
        account = backend.verify_password(name, password) if name and password else None
        nxt = _safe_next(fields.get("next", "/app/"))
        if account is None:
            web.audit(request, None, "signin", "", "failure", f"account {name!r}"[:80])
            return web.page(request, "signin.html.j2", session, status=401, next=nxt,
                            note="", error="The account name or password is not right.")
        if session is not None:
            web.sessions.drop(session.id)  # a new id at sign-in: no session fixation
        fresh = web.sessions.new(account=account.name, role=account.role)
        web.audit(request, fresh, "signin", "")
        return web.redirect(nxt, fresh, request)

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        session = web.session(request)
        await web.form(request, session)
        web.audit(request, session, "signout", "")
        web.sessions.drop(session.id)
        response = web.redirect("/app/signin")
        clear_cookie(response, web.secure(request))
        return response

    # ---------------------------------------------------------------- lists
    @router.get("/")
    def home(request: Request, q: str = "") -> Response:
        session = web.session(request)
        found = backend.search_patients(session.account, q)
        web.audit(request, session, "search", "Patient", detail=f"{len(found)} found")
        return web.page(request, "home.html.j2", session, q=q, patients=found,
                        recent=backend.recent_assessments(session.account, 20),
                        labels=_labels(session))

    @router.get("/admin/accounts")
    def accounts(request: Request) -> Response:
        session = web.admin(request)
        web.audit(request, session, "read", "accounts")
        return web.page(request, "accounts.html.j2", session, accounts=backend.accounts())

    def _trail(who: str, what: str, action: str, since: str) -> list[AuditEntry]:
        return backend.audit_trail(who=who, what=what, action=action,
                                   since=_as_of(since) if since else None)

    @router.get("/admin/audit")
    def audit_page(request: Request, who: str = "", what: str = "", action: str = "",
                   since: str = "") -> Response:
        session = web.admin(request)
        rows = _trail(who, what, action, since)
        web.audit(request, session, "read", "audit")
        query = urlencode({k: v for k, v in (("who", who), ("what", what), ("action", action),
                                              ("since", since)) if v})
        return web.page(request, "audit.html.j2", session, rows=rows, who=who, what=what,
                        action=action, since=since, query=query)

    @router.get("/admin/audit.json")
    def audit_export(request: Request, who: str = "", what: str = "", action: str = "",
                     since: str = "") -> Response:
        session = web.admin(request)
        bundle = backend.audit_export(who=who, what=what, action=action,
                                      since=_as_of(since) if since else None)
        web.audit(request, session, "download", "audit", detail="FHIR Bundle")
        body = json.dumps(bundle, indent=1)
        return web.headers(Response(body, media_type="application/fhir+json", headers={
            "Content-Disposition": 'attachment; filename="trdstage-audit.json"'}))

    # ---------------------------------------------------------------- history form
    def _form_page(request: Request, session: Session, doc: dict[str, Any], mode: str,
                   errors: dict[str, str], focus: str = "", status: int = 200,
                   key: str = "") -> Response:
        return web.page(request, "history.html.j2", session, status=status,
                        doc=forms.with_blank_rows(doc), mode=mode, errors=errors, focus=focus,
                        agents=forms.agent_names(), key=key)

    def _by_label(session: Session, label: str) -> PatientVersion | None:
        return next((p for p in backend.search_patients(session.account, label, 1000)
                     if p.label == label), None)

    def _labels(session: Session) -> dict[str, str]:
        return {p.local_id: p.label for p in backend.search_patients(session.account, "", 1000)}

    @router.get("/patients/new")
    def new_patient(request: Request) -> Response:
        session = web.session(request)
        return _form_page(request, session, {}, "new", {}, focus="id")

    @router.get("/patients/{local_id}/edit")
    def edit_patient(request: Request, local_id: str, version: int | None = None) -> Response:
        session = web.session(request)
        stored = web.stored(session, local_id, version)
        web.audit(request, session, "read", f"Patient/{local_id}", detail="history form")
        return _form_page(request, session, stored.document, "edit", {}, key=local_id)

    @router.post("/patients/form")
    async def save_form(request: Request) -> Response:
        session = web.session(request)
        fields = await web.form(request, session)
        values = dict(fields)
        mode = values.get("mode", "new")
        key = values.get("key", "") if mode == "edit" else ""
        if key:
            web.stored(session, key)  # 404 for another account's patient
        doc = forms.document_from_form((k, v) for k, v in fields if k not in ("mode", "key"))
        action = values.get("action", "save")
        if action != "save":
            focus = forms.apply_action(doc, action) or ""
            return _form_page(request, session, doc, mode, {}, focus=focus, key=key)
        doc = forms.prune(doc)
        patient, errors = forms.validate(doc)
        label = str(doc.get("id") or "")
        if patient is not None and mode == "new" and _by_label(session, label) is not None:
            errors = {"id": f"a patient with local id {label!r} exists; open it and edit "
                            "its history, or choose another id"}
        if patient is None or errors:
            return _form_page(request, session, doc, mode, errors, status=422, key=key)
        saved = backend.save_patient(session.account, key or None, _json_ready(doc), "form",
                                     event=web.saved_event(request, session))
        session.flash = f"Saved version {saved.version} of {label}."
        return web.redirect(f"/app/patients/{quote(saved.local_id)}")

    @router.post("/check-agent")
    async def check_agent(request: Request) -> Response:
        session = web.session(request)
        fields = await web.form(request, session)
        text = next((v for k, v in fields if k.endswith(".agent")), "")
        return web.headers(HTMLResponse(forms.check_agent(text)))

    # ---------------------------------------------------------------- import
    @router.get("/import")
    def import_page(request: Request) -> Response:
        session = web.session(request)
        return web.page(request, "import.html.j2", session, error="")

    @router.post("/import")
    async def import_file(request: Request, file: UploadFile = File(...)) -> Response:  # noqa: B008
        session = web.session(request)
        data = await request.form()
        token = data.get("csrf")
        if not csrf_ok(session, token if isinstance(token, str) else None):
            raise HTTPException(403, "the form's security token is missing or stale")
        raw = await file.read(MAX_FILE_BYTES + 1)
        name = file.filename or "upload"
        try:
            if len(raw) > MAX_FILE_BYTES:
                raise InputError(name, f"file larger than {MAX_FILE_BYTES // 1048576} MB")
            doc, origin, used = _read_upload(raw, name)
        except InputError as exc:
            web.audit(request, session, "import", "Patient", "failure", exc.message[:120])
            return web.page(request, "import.html.j2", session, status=422, error=str(exc))
        label = str(doc.get("id") or "patient")
        same = _by_label(session, label)
        saved = backend.save_patient(
            session.account, same.local_id if same else None, doc, origin, used,
            event=web.saved_event(request, session, detail=f"import ({origin}), "))
        session.flash = f"Imported {name} as version {saved.version} of {label}."
        return web.redirect(f"/app/patients/{quote(saved.local_id)}")

    # ---------------------------------------------------------------- patient page
    @router.get("/patients/{local_id}")
    def patient_page(request: Request, local_id: str, version: int | None = None,
                     policy: str = "", as_of: str = "") -> Response:
        session = web.session(request)
        stored = web.stored(session, local_id, version)
        when, chosen = _as_of(as_of), _policy(policy, settings.default_policy)
        patient, result = web.assessed(stored, when, chosen)
        web.keep(request, session, stored, result, "read",
                 f"version {stored.version}, assessed as of {when}, policy {chosen}")
        timeline, symptom = views.chart_uris(patient, result)
        checks = _checks(local_id)
        readings = sorted(patient.current_episode(when).ratings, key=lambda x: x.date)
        return web.page(
            request, "patient.html.j2", session, stored=stored, a=result,
            r=build_clinician(patient, result), timeline=timeline, symptom=symptom,
            policies=[(n, load_policy(n).description) for n in policy_names()],
            policy=chosen, as_of=when.isoformat(), version_query=_query(stored, chosen, when),
            trial_columns=TRIAL_COLUMNS, ect_columns=ECT_COLUMNS, course_columns=COURSE_COLUMNS,
            choices=views.plan_choices(result), note=views.note_text(result), checks=checks,
            used=views.data_used(stored.origin, stored.data_used), readings=readings,
            latest=web.stored(session, local_id).version,
            banner=session.smart.get("banner", True) if session.smart else True)

    def _checks(local_id: str) -> dict[str, AuditEntry]:
        """The checklist state: the latest 'checklist' audit event per item."""
        state: dict[str, AuditEntry] = {}
        for event in reversed(backend.audit_trail(what=f"Patient/{local_id}",
                                                  action="checklist", limit=10_000)):
            item, _, mark = event.detail.partition(" ")
            if mark == "checked":
                state[item] = event
            else:
                state.pop(item, None)
        return state

    @router.post("/patients/{local_id}/checklist")
    async def checklist(request: Request, local_id: str) -> Response:
        session = web.session(request)
        fields = await web.form(request, session)
        stored = web.stored(session, local_id)
        values = dict(fields)
        marked = {v for k, v in fields if k == "checked"}
        shown = {v for k, v in fields if k == "item"}
        before = set(_checks(local_id))
        backend.audit(*(web.entry(request, session, "checklist", f"Patient/{local_id}",
                                  detail=f"{item} {'checked' if item in marked else 'unchecked'}")
                        for item in sorted(shown) if (item in marked) != (item in before)))
        session.flash = "Checklist saved."
        return web.redirect(f"/app/patients/{quote(local_id)}?"
                            + _query(stored, values.get("policy", ""),
                                     _as_of(values.get("as_of"))) + "#reassessment")

    @router.get("/patients/{local_id}/versions")
    def versions(request: Request, local_id: str) -> Response:
        session = web.session(request)
        rows = backend.versions(session.account, local_id)
        if not rows:
            raise HTTPException(404, "no such patient")
        web.audit(request, session, "read", f"Patient/{local_id}", detail="versions")
        return web.page(request, "versions.html.j2", session, local_id=local_id,
                        label=rows[-1].label, rows=list(reversed(rows)))

    @router.get("/patients/{local_id}/plan")
    def plan(request: Request, local_id: str, choice: str = "", weeks: str = "",
             dose: str = "", policy: str = "", as_of: str = "",
             version: int | None = None) -> Response:
        session = web.session(request)
        stored = web.stored(session, local_id, version)
        when, chosen = _as_of(as_of), _policy(policy, settings.default_policy)
        patient, result = web.assessed(stored, when, chosen)
        choices = views.plan_choices(result)
        picked = next((c for c in choices if f"{c.option}:{c.agent}" == choice), None)
        if picked is None:
            raise HTTPException(400, "choice: pick one of the switch options listed")
        min_weeks = int(-(-load_policy(chosen).min_adequate_weeks // 1))
        n_weeks = _number(weeks, "weeks", min_weeks, 1, 104)
        mg = _number(dose, "dose", picked.dose_mg, 0.001, 10_000)
        result_plan = views.plan_failed_trial(patient, result, picked, int(n_weeks), mg, chosen)
        web.keep(request, session, stored, result, "read",
                 f"plan {picked.option} {picked.agent} (not stored)")
        return web.page(request, "plan.html.j2", session, stored=stored, plan=result_plan,
                        rows=_side_by_side(result_plan.before, result_plan.after),
                        policy=chosen, as_of=when.isoformat(),
                        back=f"/app/patients/{quote(local_id)}?{_query(stored, chosen, when)}")

    # ---------------------------------------------------------------- share
    @router.get("/patients/{local_id}/{kind}.{ext}")
    def download(request: Request, local_id: str, kind: str, ext: str, policy: str = "",
                 as_of: str = "", version: int | None = None) -> Response:
        if kind not in ("report", "summary", "note") or ext not in ("html", "pdf", "txt"):
            raise HTTPException(404)
        session = web.session(request)
        stored = web.stored(session, local_id, version)
        when, chosen = _as_of(as_of), _policy(policy, settings.default_policy)
        patient, result = web.assessed(stored, when, chosen)
        audience: Literal["clinician", "patient"] = ("patient" if kind == "summary"
                                                     else "clinician")
        filename = f"trdstage-{kind}-{_safe_name(stored.label)}-{when.isoformat()}.{ext}"
        if kind == "note" and ext == "txt":
            body: bytes | str = views.note_text(result)
            media = "text/plain; charset=utf-8"
        elif ext == "html" and kind != "note":
            body, media = render_html(patient, result, audience), "text/html; charset=utf-8"
        elif ext == "pdf" and kind != "note":
            from trdstage.report.pdf import render_pdf

            body, media = render_pdf(patient, result, audience), "application/pdf"
        else:
            raise HTTPException(404)
        web.keep(request, session, stored, result, "download",
                 f"{kind}.{ext}, version {stored.version}, as of {when}")
        response = Response(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})
        web.headers(response)
        # The report is self-contained with inline CSS; it runs no script.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            "frame-ancestors 'none'; sandbox")
        return response

    # ---------------------------------------------------------------- SMART launch
    @router.get("/smart")
    def smart_page(request: Request) -> Response:
        session, _ = web.sessions.get(request.cookies.get(COOKIE))
        return web.page(request, "smart.html.j2", session, error="")

    @router.get("/launch")
    def launch(request: Request, iss: str = "", launch: str = "") -> Response:
        ehr = settings.ehr(iss) if iss else None
        if ehr is None:
            web.audit(request, None, "smart-launch", "", "failure", "iss not registered")
            return web.page(request, "smart.html.j2", None, status=400,
                            error="This EHR is not registered with trdstage: its iss is not "
                            "among the [[smart.ehrs]] of the service's settings.")
        framed = request.headers.get("sec-fetch-dest") == "iframe"
        try:
            url = smart.start(ehr, launch or None, web.pending, framed)
        except smart.SmartError as exc:
            return web.page(request, "smart.html.j2", None, status=502, error=str(exc))
        return web.headers(RedirectResponse(url, status_code=302))

    @router.get("/smart/callback")
    def callback(request: Request, state: str = "", code: str = "", error: str = "",
                 error_description: str = "") -> Response:
        pending = web.pending.take(state) if state else None
        if pending is None:
            web.audit(request, None, "smart-launch", "", "failure", "unknown or used state")
            return web.page(request, "smart.html.j2", None, status=400,
                            error="This sign-in answer does not match a launch in progress "
                            "(unknown, used or expired state). Launch the app again.")
        if error or not code:
            return web.page(request, "smart.html.j2", None, status=400,
                            error=f"The EHR did not authorise the launch: "
                            f"{error or 'no code'} {error_description}".strip())
        try:
            token = smart.finish(pending, code)
            user = smart.fhir_user(pending, token) or f"smart:{pending.ehr.client_id}"
            from trdstage.adapters.fhir.client import fetch_patient

            read = fetch_patient(pending.ehr.iss, str(token["patient"]),
                                 token=str(token["access_token"]), timeout=smart.TIMEOUT)
        except smart.SmartError as exc:
            return web.page(request, "smart.html.j2", None, status=400, error=str(exc))
        except InputError as exc:
            return web.page(request, "smart.html.j2", None, status=502,
                            error=f"The record could not be read: {exc}")
        session = web.sessions.new(account=user, role="clinician", framed=pending.framed)
        session.smart = {"iss": pending.ehr.iss, "patient": str(token["patient"]),
                         "access_token": token["access_token"], "scope": token.get("scope", ""),
                         "banner": token.get("need_patient_banner", True) is not False}
        backend.account(user)
        label = f"{token['patient']}@{_host(pending.ehr.iss)}"
        doc = _patient_document(read.patient.model_copy(update={"id": label}))
        same = _by_label(session, label)
        saved = backend.save_patient(
            user, same.local_id if same else None, doc, "smart",
            _fhir_used(read, pending.ehr.iss),
            event=web.saved_event(request, session, "smart-launch",
                                  f"read from {pending.ehr.label}, "))
        return web.redirect(f"/app/patients/{quote(saved.local_id)}", session, request)

    return router


def _read_upload(raw: bytes, name: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, f"not UTF-8 text ({exc.reason})") from exc
    parsed: Any
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(name, f"neither JSON nor YAML: {exc}") from exc
    if isinstance(parsed, dict) and "resourceType" in parsed:
        read = read_fhir_data(parsed, name)
        return _patient_document(read.patient), "fhir-upload", _fhir_used(read, name)
    patient_from_mapping(parsed, name)
    return _json_ready(parsed), "native-upload", {}


def _side_by_side(before: Assessment, after: Assessment) -> list[tuple[str, str, str, bool]]:
    from trdstage.report.content import headline

    now_ = headline(before)
    then = dict(headline(after))
    return [(name, value, then[name], value != then[name]) for name, value in now_]


def _query(stored: PatientVersion, policy: str, when: date) -> str:
    return urlencode({"version": stored.version, "policy": policy, "as_of": when.isoformat()})


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]


def _safe_next(url: str) -> str:
    """Only a path inside the app: never an open redirect."""
    return url if url.startswith("/app/") and not url.startswith("//") else "/app/"


