"""Benchmark: the CDS Hooks service under concurrent CDS clients, on loopback.

Starts the service (one uvicorn worker, in a child process, with the sandbox FHIR server
mounted beside it for `Medication/{id}` reads) and sends, from `--clients` concurrent
clients, a fixed number of signed requests per scenario:

- `patient-view`, full prefetch, cycling over the sandbox's synthetic patients;
- `order-select`, full prefetch, one draft order per call (phenelzine for the patient still on
  fluoxetine, citalopram at 40 mg for a 71-year-old, sertraline again after it failed, ...);
- `patient-view`, full prefetch of a large history: 200 medication records, 100 PHQ-9
  observations.

Every request carries a fresh ES384 JWT (verified by the service). Reports p50/p95/p99
latency, errors and requests per second per scenario.

    uv run --frozen python bench/bench_cds.py [--clients 50] [--requests 500] [--json FILE]

Target (issue 18): 50 concurrent clients, 0 errors, p95 under 500 ms, large history included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from trdstage.service.cds.history import prefetch_templates
from trdstage.service.cds.router import SAFETY, STAGING
from trdstage.service.sandbox.client import CdsClientSim, SigningKey, draft_order
from trdstage.service.sandbox.fhir import FhirSandbox, load_patients

ISS = "https://bench-ehr.invalid"
TOKEN = "bench-fhir-token"  # noqa: S105 - the loopback FHIR server's test token
DEADLINE_S = 600  # the whole run stops after this, whatever is left
ORDERS = [("fluoxetine", "phenelzine 15 MG Oral Tablet", 3),
          ("lithium", "citalopram 20 MG Oral Tablet", 2),
          ("fluoxetine", "sertraline 50 MG Oral Tablet", 2),
          ("d3", "lithium carbonate 300 MG Oral Capsule", 2),
          ("d1", "mirtazapine 30 MG Oral Tablet", 1),
          ("demo-complex-history", "tranylcypromine 10 MG Oral Tablet", 3)]


def large_history(pid: str = "large") -> list[dict[str, Any]]:
    """200 medication records (monthly supplies over 16 years, five agents in turn) and 100
    PHQ-9 totals."""
    subject = {"reference": f"Patient/{pid}"}
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": "1970-05-05", "gender": "female"},
        {"resourceType": "Condition", "id": f"{pid}-mdd", "subject": subject,
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.2"}]},
         "onsetDateTime": "2010-01-01"}]
    agents = ["sertraline 100 MG Oral Tablet", "venlafaxine 75 MG Oral Tablet",
              "mirtazapine 30 MG Oral Tablet", "escitalopram 10 MG Oral Tablet",
              "bupropion hydrochloride 150 MG Extended Release Oral Tablet"]
    start = date(2010, 1, 15)
    for i in range(200):
        day = start + timedelta(days=30 * i)
        out.append({"resourceType": "MedicationDispense", "id": f"{pid}-md{i}",
                    "status": "completed", "subject": subject,
                    "medicationCodeableConcept": {"text": agents[(i // 40) % len(agents)]},
                    "whenHandedOver": day.isoformat(),
                    "quantity": {"value": 60, "unit": "tablet"},
                    "daysSupply": {"value": 30, "unit": "day", "code": "d"}})
    for i in range(100):
        day = start + timedelta(days=60 * i)
        out.append({"resourceType": "Observation", "id": f"{pid}-o{i}", "status": "final",
                    "subject": subject, "code": {"coding": [
                        {"system": "http://loinc.org", "code": "44261-6"}]},
                    "effectiveDateTime": day.isoformat(),
                    "valueQuantity": {"value": 10 + i % 12, "unit": "{score}"}})
    return out


def patients() -> dict[str, list[dict[str, Any]]]:
    found = load_patients()
    found["large"] = large_history()
    return found


def serve(port: int, jwks_file: str) -> None:
    """Child process: the CDS service and the FHIR server, one uvicorn worker."""
    import uvicorn
    from fastapi import FastAPI

    from trdstage.service.cds.router import install_cds
    from trdstage.service.cds.settings import CdsSettings
    from trdstage.service.cds.store import MemoryStore
    from trdstage.service.sandbox.fhir import build_fhir_app

    base = f"http://127.0.0.1:{port}"
    jwks = json.loads(Path(jwks_file).read_text(encoding="utf-8"))
    app = FastAPI()
    app.mount("/fhir", build_fhir_app(FhirSandbox(patients=patients(), token=TOKEN)))
    settings = CdsSettings(clients=[{"iss": ISS, "jwks": jwks,
                                     "fhir_servers": [f"{base}/fhir"]}])
    install_cds(app, base, settings, MemoryStore())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bodies(client: CdsClientSim, scenario: str) -> list[tuple[str, dict[str, Any]]]:
    templates = prefetch_templates()
    if scenario == "patient-view":
        pids = [p for p in client.fhir.patients if p != "large"]
        return [(STAGING, client.request("patient-view", p, templates, "full",
                                         access_token=TOKEN)) for p in pids]
    if scenario == "order-select":
        return [(SAFETY, client.request("order-select", pid, templates, "full",
                                        draft_order(pid, text, n), access_token=TOKEN))
                for pid, text, n in ORDERS]
    return [(STAGING, client.request("patient-view", "large", templates, "full",
                                     access_token=TOKEN))]


async def _run(base: str, client: CdsClientSim, scenario: str, clients: int,
               requests: int) -> dict[str, Any]:
    bodies = _bodies(client, scenario)
    payloads = [(service, json.dumps(body).encode()) for service, body in bodies]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    todo = iter(range(requests))
    stop = time.monotonic() + DEADLINE_S
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(http: httpx.AsyncClient) -> None:
        for i in todo:
            if time.monotonic() > stop:
                return
            service, payload = payloads[i % len(payloads)]
            url = f"{base}/cds-services/{service}"
            headers = {"Authorization": f"Bearer {client.token(url)}",
                       "Content-Type": "application/json"}
            started = time.perf_counter()
            try:
                r = await http.post(url, content=payload, headers=headers)
                code = str(r.status_code)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            if code != "200":
                errors[code] = errors.get(code, 0) + 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    size = max(len(p) for _, p in payloads)
    return {"scenario": scenario, "requests": len(latencies), "clients": clients,
            "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
            "p99_ms": round(q[98] * 1000, 1), "errors": sum(errors.values()),
            "error_codes": errors, "rps": round(len(latencies) / wall, 1),
            "max_body_kb": round(size / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=500, help="per scenario")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jwks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.jwks)
        return
    key = SigningKey()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    jwks_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-cds-jwks-{port}.json"  # noqa: S108
    jwks_file.write_text(json.dumps(key.jwks()), encoding="utf-8")
    client = CdsClientSim(iss=ISS, jwks_url=None, fhir_base=f"{base}/fhir",
                          fhir=FhirSandbox(patients=patients(), token=TOKEN), key=key)
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--jwks",  # noqa: S603
                              str(jwks_file)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/fhir/metadata", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit("the service did not start") from None
                time.sleep(0.2)
        asyncio.run(_run(base, client, "patient-view", 4, 40))  # warm-up
        results = [asyncio.run(_run(base, client, s, args.clients, args.requests))
                   for s in ("patient-view", "order-select", "large-history")]
    finally:
        child.terminate()
        child.wait(20)
        jwks_file.unlink(missing_ok=True)
    print(f"CDS Hooks, {args.clients} concurrent clients, one uvicorn worker, "
          f"{platform.python_version()} on {os.cpu_count()} CPUs")
    print("| scenario | requests | p50 ms | p95 ms | p99 ms | errors | req/s | largest body |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['scenario']} | {r['requests']} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['p99_ms']} | {r['errors']} {r['error_codes'] or ''} | {r['rps']} | "
              f"{r['max_body_kb']} kB |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
