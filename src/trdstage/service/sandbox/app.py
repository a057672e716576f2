"""`trdstage sandbox`: a test EHR on loopback, so the CDS service can be seen working without one.

One process on 127.0.0.1 serves:
- `/fhir`: the FHIR server over the synthetic patients (`fhir.py`), bearer token required;
- `/ehr`: the EHR's pages (open a patient: patient-view; order a drug: order-select then
  order-sign; accept or override a card: feedback) and its JWKS (`/ehr/.well-known/jwks.json`);
- `/cds-services`: the trdstage CDS service, configured to trust this EHR (unless `service_url`
  points at another one, e.g. a `trdstage serve`).

Pages are server-rendered HTML with plain forms (no script). Other parts (a SMART authorization
server) mount beside these through `Sandbox.app`.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Form
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markdown_it import MarkdownIt

from trdstage.service.cds.history import prefetch_templates
from trdstage.service.cds.router import SAFETY, STAGING, install_cds
from trdstage.service.cds.settings import CdsClient, CdsSettings
from trdstage.service.cds.store import MemoryStore
from trdstage.service.sandbox.client import CdsClientSim, Prefetch, draft_order
from trdstage.service.sandbox.fhir import FhirSandbox, build_fhir_app

# drug -> (order text, units per day): what the order form offers
ORDERS: dict[str, tuple[str, float]] = {
    "phenelzine": ("phenelzine 15 MG Oral Tablet", 3),
    "sertraline": ("sertraline 50 MG Oral Tablet", 3),
    "citalopram": ("citalopram 20 MG Oral Tablet", 2),
    "venlafaxine": ("venlafaxine 75 MG 24HR Extended Release Oral Capsule", 2),
    "bupropion": ("bupropion hydrochloride 150 MG Extended Release Oral Tablet", 2),
    "mirtazapine": ("mirtazapine 30 MG Oral Tablet", 1),
    "lithium": ("lithium carbonate 300 MG Oral Capsule", 2),
    "tranylcypromine": ("tranylcypromine 10 MG Oral Tablet", 3),
}
CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}
.card{border:1px solid #888;border-left:.6rem solid #888;padding:.5rem 1rem;margin:1rem 0}
.info{border-left-color:#1d6fb8}.warning{border-left-color:#c77700}
.critical{border-left-color:#b3261e}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2rem .4rem}form.inline{display:inline}"""
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass
class Sandbox:
    """The parts of one sandbox, for `trdstage sandbox` and the tests."""

    base_url: str  # http://127.0.0.1:<port>
    service_url: str  # where the CDS service is (this process by default)
    fhir: FhirSandbox
    client: CdsClientSim
    store: MemoryStore = field(default_factory=MemoryStore)
    app: FastAPI = field(default_factory=FastAPI)
    last: dict[str, Any] = field(default_factory=dict)
    smart: Any = None  # the SMART authorization server (sandbox_smart), when an app is registered

    def client_settings(self) -> CdsSettings:
        return CdsSettings(clients=[CdsClient(iss=self.client.iss,
                                              jwks_url=self.client.jwks_url,
                                              fhir_servers=[self.client.fhir_base])],
                           docs_url=f"{self.base_url}/ehr/docs")

    async def call(self, service: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = f"{self.service_url}/cds-services/{service}"
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(url, json=body,
                                headers={"Authorization": f"Bearer {self.client.token(url)}"})
        try:
            data = r.json()
        except ValueError:
            data = {}
        return r.status_code, data if isinstance(data, dict) else {}


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
                        f"{html.escape(title)}</title><style>{CSS}</style></head><body>"
                        f"<p><a href='/ehr/'>Test EHR</a> · synthetic patients only · "
                        f"decision support, not a medical device</p>{body}</body></html>",
                        headers={"Cache-Control": "no-store"})


def _cards(service: str, pid: str, status: int, data: dict[str, Any]) -> str:
    if status != 200:
        return (f"<p role=alert>The CDS service answered HTTP {status}: "
                f"{html.escape(str(data.get('error', '')))}</p>")
    cards = data.get("cards") or []
    if not cards:
        return "<p>No card (nothing to flag).</p>"
    out = []
    for c in cards:
        e = html.escape
        indicator = e(str(c.get("indicator")))
        parts = [f"<section class='card {indicator}'><h3>[{indicator}] {e(c['summary'])}</h3>",
                 _MD.render(str(c.get("detail", "")))]
        for link in c.get("links") or []:
            parts.append(f"<p>Link ({e(link['type'])}): <a href='{e(link['url'])}'>"
                         f"{e(link['label'])}</a></p>")
        for s in c.get("suggestions") or []:
            parts.append(f"<form method=post action='/ehr/feedback' class=inline>"
                         f"<input type=hidden name=service value='{e(service)}'>"
                         f"<input type=hidden name=patient value='{e(pid)}'>"
                         f"<input type=hidden name=card value='{e(c['uuid'])}'>"
                         f"<input type=hidden name=suggestion value='{e(s['uuid'])}'>"
                         f"<button>{e(s['label'])}</button></form> ")
        if c.get("uuid"):
            options = "".join(f"<option value='{e(r['code'])}'>{e(r['display'])}</option>"
                              for r in c.get("overrideReasons") or [])
            parts.append(f"<form method=post action='/ehr/feedback' class=inline>"
                         f"<input type=hidden name=service value='{e(service)}'>"
                         f"<input type=hidden name=patient value='{e(pid)}'>"
                         f"<input type=hidden name=card value='{e(c['uuid'])}'>"
                         + (f"<label>Reason <select name=reason>{options}</select></label> "
                            if options else "")
                         + "<button>Override</button></form>")
        out.append("".join(parts) + "</section>")
    return "".join(out)


def ehr_router(sb: Sandbox) -> APIRouter:
    router = APIRouter()

    @router.get("/.well-known/jwks.json")
    async def jwks() -> JSONResponse:
        return JSONResponse(sb.client.key.jwks())

    @router.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        rows = []
        for pid, found in sb.fhir.patients.items():
            p = next(r for r in found if r["resourceType"] == "Patient")
            rows.append(f"<tr><td><a href='/ehr/patients/{html.escape(pid)}'>"
                        f"{html.escape(pid)}</a></td><td>{html.escape(p.get('gender', ''))}</td>"
                        f"<td>{html.escape(p.get('birthDate', ''))}</td>"
                        f"<td>{len(found) - 1}</td></tr>")
        return _page("Test EHR", "<h1>Test EHR: synthetic patients</h1><table><tr><th>patient"
                     "</th><th>sex</th><th>born</th><th>records</th></tr>" + "".join(rows)
                     + "</table><p>Opening a patient calls <code>patient-view</code>.</p>")

    @router.get("/patients/{pid}", response_class=HTMLResponse)
    async def chart(pid: str, prefetch: Prefetch = "full") -> HTMLResponse:
        if pid not in sb.fhir.patients:
            return _page("Not found", "<p>No such patient.</p>")
        body = sb.client.request("patient-view", pid, prefetch_templates(), prefetch,
                                 access_token=sb.fhir.token)
        status, data = await sb.call(STAGING, body)
        options = "".join(f"<option>{html.escape(d)}</option>" for d in ORDERS)
        e = html.escape
        launch = (f"<p><a href='/ehr/launch?patient={e(pid)}'>Open trdstage for this patient"
                  "</a> (SMART App Launch)</p>" if sb.smart is not None else "")
        return _page(f"Patient {pid}", f"<h1>Patient {e(pid)}</h1>{launch}<h2>patient-view</h2>"
                     + _cards(STAGING, pid, status, data)
                     + f"<h2>Order a drug</h2><form method=post action='/ehr/patients/{e(pid)}"
                     f"/order'><label>Drug <select name=drug>{options}</select></label> "
                     "<button>Select and sign (order-select, order-sign)</button></form>")

    @router.post("/patients/{pid}/order", response_class=HTMLResponse)
    async def order(pid: str, drug: str = Form()) -> HTMLResponse:
        if pid not in sb.fhir.patients or drug not in ORDERS:
            return _page("Not found", "<p>No such patient or drug.</p>")
        text, per_day = ORDERS[drug]
        draft = draft_order(pid, text, per_day)
        parts = [f"<h1>Patient {html.escape(pid)}: draft order</h1><p>{html.escape(text)}, "
                 f"{per_day:g} per day</p>"]
        for hook in ("order-select", "order-sign"):
            body = sb.client.request(hook, pid, prefetch_templates(), "full", draft,
                                     access_token=sb.fhir.token)
            status, data = await sb.call(SAFETY, body)
            parts.append(f"<h2>{hook}</h2>" + _cards(SAFETY, pid, status, data))
        parts.append(f"<p><a href='/ehr/patients/{html.escape(pid)}'>Back to the chart</a></p>")
        return _page(f"Order for {pid}", "".join(parts))

    @router.post("/feedback")
    async def feedback(service: str = Form(), patient: str = Form(), card: str = Form(),
                       suggestion: str | None = Form(None),
                       reason: str | None = Form(None)) -> Response:
        item: dict[str, Any] = {"card": card, "outcomeTimestamp": _now()}
        if suggestion:
            item.update(outcome="accepted", acceptedSuggestions=[{"id": suggestion}])
        else:
            item["outcome"] = "overridden"
            if reason:
                item["overrideReason"] = {"reason": {"code": reason}}
        url = f"{sb.service_url}/cds-services/{service}/feedback"
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(url, json={"feedback": [item]},
                                headers={"Authorization": f"Bearer {sb.client.token(url)}"})
        sb.last["feedback"] = r.status_code
        return RedirectResponse(f"/ehr/patients/{patient}?feedback={r.status_code}",
                                status_code=303)

    @router.get("/docs", response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return _page("About", "<p>See docs/cds-hooks.md in the trdstage repository.</p>")

    return router


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_sandbox(base_url: str, service_url: str | None = None,
                  fhir: FhirSandbox | None = None, app_url: str | None = None,
                  **cds: Any) -> Sandbox:
    """The sandbox app for a server at `base_url` (loopback). With `service_url` the pages call
    that CDS service instead of the one mounted here. With `app_url` (a `trdstage serve`), a
    SMART authorization server registers the web app there (client `SMART_CLIENT_ID`) and each
    chart links to an EHR launch of it."""
    base = base_url.rstrip("/")
    data = fhir or FhirSandbox(token=secrets.token_urlsafe(24))
    client = CdsClientSim(iss=f"{base}/ehr", jwks_url=f"{base}/ehr/.well-known/jwks.json",
                          fhir_base=f"{base}/fhir", fhir=data)
    sb = Sandbox(base_url=base, service_url=(service_url or base).rstrip("/"), fhir=data,
                 client=client)
    sb.app = FastAPI(title="trdstage sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    sb.app.mount("/fhir", build_fhir_app(data))
    sb.app.include_router(ehr_router(sb), prefix="/ehr")

    @sb.app.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/ehr/")

    if service_url is None:
        install_cds(sb.app, base, sb.client_settings(), sb.store, **cds)
    if app_url:
        from trdstage.service.sandbox_smart import Client, SmartSandbox, attach

        app = app_url.rstrip("/")
        sb.smart = SmartSandbox(base, patients=data.patients, static_token=data.token)
        sb.smart.clients[SMART_CLIENT_ID] = Client(SMART_CLIENT_ID, SMART_CLIENT_SECRET,
                                                   f"{app}/app/smart/callback",
                                                   f"{app}/app/launch")
        attach(sb.app, sb.smart)
    return sb


# The web app's registration in the sandbox: loopback and synthetic data only, so a fixed,
# documented secret (docs/app.md) that a `trdstage serve` config can name.
SMART_CLIENT_ID = "trdstage"
SMART_CLIENT_SECRET = "sandbox-only-secret"  # noqa: S105 - a test EHR on loopback
