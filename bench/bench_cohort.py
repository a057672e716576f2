"""Cohort staging benchmark: synthesise N persons, stage them on DuckDB, compare with the floor.

    uv run --frozen python bench/bench_cohort.py --persons 1000000

Staging runs twice: with the scan engine (the DuckDB default) and with the in-database expression
engine (`--no-expression` skips it). Each measured step runs in its own child process, so its
peak memory (ru_maxrss, which counts DuckDB's native allocations, unlike tracemalloc) is its own.
The floor is a bare DuckDB scan that groups drug_exposure by person, fetched like the staging
result.
Targets (2-core machine, 1,000,000 persons; docs/benchmarks.md): warm staging under 3 s and under
2 GB, the cold first run (kernel built, bytecode cache empty) under 20 s.
A first scan run (not counted) fills the bytecode cache and builds the scan's compiled kernel
(Numba, then cached as machine code in the work folder); the floor also runs once before it is
measured. The floor and the scan engine then
run --repeat times (default 3) and the median run is reported, with its minor page faults (each
first touch of a 4 KiB page; in a virtual machine these cost more than the arithmetic).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

AS_OF = date(2026, 1, 1)


def _child(step: str, db: Path, persons: int, seed: int, out: Path) -> dict[str, float]:
    t0 = time.perf_counter()  # the step's imports count: a user's run pays them too
    info: dict[str, float] = {}
    if step == "synth":
        from trdstage.cohort.omop_io import write_duckdb
        from trdstage.cohort.synth import synth_tables

        tables = synth_tables(persons, seed=seed)
        info["drug_exposure_rows"] = tables["drug_exposure"].num_rows
        write_duckdb(db, tables)
    elif step == "floor":
        import duckdb

        info["seconds_imports"] = time.perf_counter() - t0

        con = duckdb.connect(str(db), read_only=True)
        result = con.execute(
            "SELECT person_id, count(*) AS n, min(drug_exposure_start_date) AS first, "
            "max(drug_exposure_end_date) AS last FROM drug_exposure GROUP BY person_id"
        ).to_arrow_table()
        info["rows"] = result.num_rows
    elif step.startswith("stage"):
        from trdstage.cohort.run import stage_cohort
        from trdstage.knowledge import load_policy

        info["seconds_imports"] = time.perf_counter() - t0
        engine = step.removeprefix("stage-") if "-" in step else "auto"
        table, summary = stage_cohort(str(db), AS_OF, load_policy("claims"), out=out,
                                      engine=engine)
        info["rows"] = table.num_rows
        info.update({f"seconds_{k}": v for k, v in summary.seconds.items()})
    info["seconds"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    info["peak_mb"] = usage.ru_maxrss / 1024
    info["page_faults"] = usage.ru_minflt  # first touches of memory: the costly part in a VM
    return info


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median duration (its own parts and memory, not a mix of runs)."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def run(step: str, db: Path, persons: int, seed: int, out: Path,
        env: dict[str, str] | None = None) -> dict[str, float]:
    proc = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, __file__, "--child", step, "--db", str(db), "--persons", str(persons),
         "--seed", str(seed), "--out", str(out)], capture_output=True, text=True, check=True,
        env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", default=None)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of the floor and of the scan engine; the median is reported.")
    parser.add_argument("--no-expression", action="store_true",
                        help="Skip the second staging run with the in-database expression engine.")
    parser.add_argument("--as-configured", action="store_true",
                        help="Run the children with this environment's bytecode settings (by "
                             "default they cache bytecode in the work folder, as Python does on "
                             "any machine unless PYTHONDONTWRITEBYTECODE is set).")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.db, args.persons, args.seed, args.out)))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="trdstage-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db, out = work / "cdm.duckdb", work / "results.parquet"
    env = dict(os.environ)
    if not args.as_configured:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        # the compiled kernel's cache too (cohort/scan_native.py): the first run builds it
        env["NUMBA_CACHE_DIR"] = str(work / "kernel-cache")
    synth = run("synth", db, args.persons, args.seed, out, env)
    # first runs fill the bytecode cache and build the scan's compiled kernel (Numba)
    first = run("stage-scan", db, args.persons, args.seed, out, env)
    run("floor", db, args.persons, args.seed, out, env)
    floor = _median([run("floor", db, args.persons, args.seed, out, env)
                     for _ in range(args.repeat)])
    stage = _median([run("stage-scan", db, args.persons, args.seed, out, env)
                     for _ in range(args.repeat)])
    expression = None if args.no_expression else run("stage-expression", db, args.persons,
                                                      args.seed, out, env)
    warm_ratio = (stage["seconds"] - stage["seconds_imports"]) / (
        floor["seconds"] - floor["seconds_imports"])
    print(f"machine: {platform.machine()}, {platform.python_version()}, "
          f"cores {len(os.sched_getaffinity(0))}")
    print(f"persons {args.persons:,}; drug_exposure rows {int(synth['drug_exposure_rows']):,}; "
          f"staged {int(stage['rows']):,}; database {db.stat().st_size / 1e6:.0f} MB")
    print()
    print(f"(floor and scan engine: median of {args.repeat} runs)")
    print("| step | seconds | persons/s | peak memory (MB) | page faults |")
    print("|---|---|---|---|---|")
    steps = [("synthesise + write DuckDB", synth),
             ("floor: bare scan grouping drug_exposure by person", floor),
             ("stage, scan engine (the DuckDB default)", stage)]
    if expression is not None:
        steps.append(("stage, expression engine (in-database Ibis)", expression))
    for name, r in steps:
        print(f"| {name} | {r['seconds']:.2f} | {args.persons / r['seconds']:,.0f} | "
              f"{r['peak_mb']:,.0f} | {r['page_faults']:,.0f} |")
    print()
    for name, r in (("scan", stage), ("expression", expression)):
        if r is not None:
            print(f"{name}: staging / floor = {r['seconds'] / floor['seconds']:.1f}x; parts: "
                  + ", ".join(f"{k.removeprefix('seconds_')} {v:.2f} s" for k, v in r.items()
                              if k.startswith("seconds_")))
    print(f"first scan run (bytecode cache empty, kernel built): {first['seconds']:.1f} s")
    print(f"imports excluded (a Python session that has imported trdstage): staging / floor = "
          f"{warm_ratio:.1f}x")
    targets = {"warm under 3 s": stage["seconds"] < 3, "under 2 GB": stage["peak_mb"] < 2048,
               "first run under 20 s": first["seconds"] < 20}
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))


if __name__ == "__main__":
    main()
