"""Benchmark: `trdstage serve` under load, on loopback.

Starts the service (one uvicorn process, SQLite, a fresh database in a temporary folder) on
127.0.0.1 at a free port, then N concurrent clients (default 50) post the bundled FHIR example
to POST /api/v1/assess for a fixed time (default 30 s), each request bounded (timeout) and the
total bounded (--max-requests). Reports requests per second, p50/p95/p99 latency, errors, the
server's peak memory, and beside them one client alone and the in-process time of the same
work (parse the Bundle + `evaluate()`): the service's overhead as a ratio.

    uv run --frozen python bench/bench_service.py [--clients 50] [--seconds 30]
        [--single-seconds 10] [--max-requests 200000] [--json FILE]

Targets (issue 17), on the 2-core machine: 0 errors, p95 under 250 ms, overhead under 2x
`evaluate()` at one client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

EXAMPLE = Path(__file__).parents[1] / "src/trdstage/examples/fhir/trd-fhir-example.json"
AS_OF = "2026-01-01"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(folder: Path) -> tuple[Path, str]:
    from trdstage.service.auth import issue_token
    from trdstage.service.db import Database, migrate
    from trdstage.service.models import Account

    url = f"sqlite:///{folder / 'bench.sqlite'}"
    config = folder / "bench.toml"
    config.write_text(f'[server]\ndatabase = "{url}"\nrate_limit_per_minute = 0\n'
                      'log_level = "warning"\n', encoding="utf-8")
    migrate(url)
    db = Database(url)
    with db.session() as session:
        account = Account(name="bench", role="clinician")
        session.add(account)
        session.flush()
        token, _ = issue_token(session, account)
        session.commit()
    db.dispose()
    return config, token


def start(config: Path, port: int, folder: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # noqa: S603 - our own command line, loopback only
        [sys.executable, "-m", "trdstage", "serve", "--config", str(config), "--host",
         "127.0.0.1", "--port", str(port)], cwd=folder,
        stdout=subprocess.DEVNULL, stderr=(folder / "serve.log").open("wb"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the service exited: " + (folder / "serve.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(url: str, token: str, body: bytes, clients: int, seconds: float,
               max_requests: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as client:

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < stop_at and sent < max_requests:
                sent += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post("/api/v1/assess", params={"as_of": AS_OF},
                                             content=body)
                    ok = resp.status_code == 200
                    key = str(resp.status_code)
                except httpx.HTTPError as exc:
                    ok, key = False, type(exc).__name__
                elapsed = time.perf_counter() - t0
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    return summarise(latencies, errors, wall, clients)


def summarise(latencies: list[float], errors: dict[str, int], wall: float,
              clients: int) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))] if ms else float("nan")

    return {"clients": clients, "requests": len(ms) + sum(errors.values()), "ok": len(ms),
            "errors": errors, "seconds": round(wall, 2), "rps": round(len(ms) / wall, 1),
            "p50_ms": round(pct(50), 1), "p95_ms": round(pct(95), 1),
            "p99_ms": round(pct(99), 1), "max_ms": round(ms[-1], 1) if ms else None}


def in_process(body: bytes, repeats: int = 200) -> dict[str, float]:
    """The same work without HTTP: parse the Bundle and evaluate(), and evaluate() alone."""
    from trdstage import evaluate
    from trdstage.adapters.fhir import read_fhir_data

    when = date.fromisoformat(AS_OF)
    parse_eval, eval_only = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = read_fhir_data(json.loads(body), "bench")
        t1 = time.perf_counter()
        result = evaluate(got.patient, as_of=when)
        result.model_dump_json()
        t2 = time.perf_counter()
        parse_eval.append((t2 - t0) * 1000)
        eval_only.append((t2 - t1) * 1000)
    return {"parse_evaluate_median_ms": round(statistics.median(parse_eval), 2),
            "evaluate_median_ms": round(statistics.median(eval_only), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--single-seconds", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    body = EXAMPLE.read_bytes()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="trdstage-bench-") as tmp:
        folder = Path(tmp)
        config, token = prepare(folder)
        port = free_port()
        proc = start(config, port, folder)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(load(url, token, body, 2, 2, 200))  # warm-up
            single = asyncio.run(load(url, token, body, 1, args.single_seconds,
                                      args.max_requests))
            many = asyncio.run(load(url, token, body, args.clients, args.seconds,
                                    args.max_requests))
            memory = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    local = in_process(body)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
        "single_client": single, "concurrent": many,
        "server_peak_rss_mb": round(memory, 1), "in_process": local,
        "overhead_vs_parse_evaluate": round(single["p50_ms"]
                                            / local["parse_evaluate_median_ms"], 2),
        "overhead_vs_evaluate": round(single["p50_ms"] / local["evaluate_median_ms"], 2),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
