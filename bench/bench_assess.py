"""Benchmark: assess 10,000 synthetic patients of 5-30 treatments each, parsing included.

Each patient is a native JSON document (as a clinician's file would be); the timed unit is
parse + validate + resolve drug names + assess (all five models), one patient at a time on one
core. Reports median and p99 time per patient and peak memory (max RSS).

    uv run --frozen python bench/bench_assess.py [--patients 10000] [--seed 7] [--json FILE]

Target (docs/benchmarks.md): median under 1 ms per patient.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from datetime import date, timedelta
from typing import Any

from trdstage.adapters.native import parse_patient_text
from trdstage.engine import assess
from trdstage.knowledge import load_knowledge, load_policy

AS_OF = date(2026, 1, 1)


def synth_patient(rng: random.Random, index: int, agents: list[tuple[str, float]],
                  augmenters: list[str]) -> str:
    n = rng.randint(5, 30)
    onset = AS_OF - timedelta(weeks=26 * n + rng.randint(0, 52))  # room for every treatment
    t = onset + timedelta(days=rng.randint(0, 30))
    meds: list[dict[str, Any]] = []
    ect: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.random()
        weeks = rng.randint(2, 16)
        if kind < 0.05:
            ect.append({"start": t.isoformat(), "end": (t + timedelta(weeks=4)).isoformat(),
                        "sessions": rng.randint(3, 14),
                        "laterality": rng.choice(["bilateral", "unilateral", "unknown"]),
                        "outcome": rng.choice(["non_response", "response"])})
            t += timedelta(weeks=5)
            continue
        agent, minimum = rng.choice(agents)
        steps = []
        s = t
        for _ in range(rng.randint(1, 3)):
            w = max(1, weeks // 2)
            steps.append({"start": s.isoformat(), "end": (s + timedelta(weeks=w)).isoformat(),
                          "dose": f"{minimum * rng.choice([0.5, 1, 1.5, 2]):g} mg"})
            s += timedelta(weeks=w)
        med: dict[str, Any] = {
            "id": f"rx{i}", "agent": agent, "steps": steps,
            "adherence": rng.choice(["good", "good", "partial", "poor", "unknown"]),
            "outcome": rng.choice(["non_response", "partial_response", "response",
                                   "intolerance", None]),
        }
        if rng.random() < 0.2:
            med["added"] = [{"agent": rng.choice(augmenters), "steps": [{
                "start": (t + timedelta(weeks=1)).isoformat(),
                "end": (t + timedelta(weeks=weeks)).isoformat(), "dose": "1 mg"}]}]
        if rng.random() < 0.3:
            ratings.append({"scale": "PHQ-9", "date": t.isoformat(), "total": rng.randint(10, 27)})
            ratings.append({"scale": "PHQ-9", "date": s.isoformat(), "total": rng.randint(0, 27)})
        meds.append(med)
        t = s + timedelta(days=rng.randint(-10, 60))
    doc = {"id": f"P{index}", "sex": rng.choice(["female", "male"]),
           "episodes": [{"onset": onset.isoformat(),
                         "severity": rng.choice(["mild", "moderate", "severe"]),
                         "medications": meds, "ect": ect, "ratings": ratings}]}
    return json.dumps(doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    knowledge = load_knowledge()
    policy = load_policy("default")
    agents = [(n, a.min_adequate_mg) for n, a in knowledge.antidepressants.items()
              if a.min_adequate_mg]
    augmenters = sorted(knowledge.augmenters)
    rng = random.Random(args.seed)
    docs = [synth_patient(rng, i, agents, augmenters) for i in range(args.patients)]
    treatments = [len(ep["medications"]) + len(ep["ect"])
                  for ep in (json.loads(d)["episodes"][0] for d in docs)]

    # warm-up (imports, caches) outside the timed loop
    for doc in docs[:50]:
        assess(parse_patient_text(doc, as_json=True, today=AS_OF), as_of=AS_OF, policy=policy)

    # Wall time per patient, and CPU time of this process per patient: on a shared machine the
    # CPU time is what "one core" costs; the wall time also counts waiting for the core.
    wall, cpu = [], []
    for doc in docs:
        w0, c0 = time.perf_counter(), time.process_time()
        assess(parse_patient_text(doc, as_json=True, today=AS_OF), as_of=AS_OF, policy=policy)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    wall.sort()
    cpu.sort()
    median_ms = statistics.median(cpu) * 1000
    p99_ms = cpu[int(len(cpu) * 0.99) - 1] * 1000
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "patients": args.patients,
        "treatments_per_patient": f"{min(treatments)}-{max(treatments)} "
                                  f"(mean {statistics.mean(treatments):.1f})",
        "median_ms": round(median_ms, 3),
        "p99_ms": round(p99_ms, 3),
        "wall_median_ms": round(statistics.median(wall) * 1000, 3),
        "wall_p99_ms": round(wall[int(len(wall) * 0.99) - 1] * 1000, 3),
        "total_s": round(sum(wall), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(peak_mb, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "target_median_ms": 1.0,
        "meets_target": median_ms < 1.0,
    }
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
