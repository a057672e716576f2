"""The cohort engine as one read per table and one compiled pass (the single-machine path).

`engine.build_plan` states every rule as one Ibis expression so that it runs inside any database
(PostgreSQL, Spark). On one machine, the dozen window passes that expression needs cost far more
than reading the rows once: here the database does what it is best at (filters, the joins to the
concept and strength lookups; `scan_inputs.py`, or `duckdb_native.py` on DuckDB), the drug rows
are grouped by person in linear time and the sequential rules (gaps and islands, the PHQ-9
baseline and endpoint, the switch and overlap tests, courses, per-person counts) run in one
compiled pass over them (`scan_kernel.py`, loaded by `scan_native.py`; one thread per range
of persons), and every model's arithmetic runs here on the per-person counts. When the reader
can (`DrugRows`, on DuckDB), the drug rows come a range of person ids at a time, each range
staged on a worker thread while the next is read, and its models and table computed on two
more threads (and handed, in order, to the Parquet writer) while the next ranges are staged.
The rules are the expression's, step for step (the kernel's comments name the step of
`build_plan` each block mirrors), and the equivalence tests hold both paths to `engine.assess`
on every person.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from trdstage.adapters.omop import Concepts, OmopSource
from trdstage.cohort import scan_layout as lay
from trdstage.cohort.arrow_arrays import arrow_of, numpy_of, strings_of
from trdstage.cohort.quirks import min_days_over_weeks, months_split
from trdstage.cohort.rules import (
    PHQ9_OUT_OF_RANGE,
    agent_columns,
    agent_names,
    augmenter_gap_days,
    check_policy,
    class_of,
)
from trdstage.cohort.scan_inputs import KEPT, LEFT_OUT, DrugRows, ScanInputs, read_scan_inputs
from trdstage.domain import MissingDose, Policy, Scope
from trdstage.knowledge import Knowledge, load_knowledge
from trdstage.knowledge.omop_schema import GenderMap, OmopSpec, load_omop_spec

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
B = npt.NDArray[np.bool_]
Step = Callable[[str], None]

EPOCH = date(1970, 1, 1)
# The drug rows are read and staged a range of persons at a time: the read of one range overlaps
# the staging of the one before (DuckDB and the compiled pass both release the GIL), and memory
# holds a few ranges' rows, not every row. A range is one read of drug_exposure, which skips the
# row groups outside it when the table is stored in person order (as OMOP loads usually are);
# otherwise every read scans the whole table, hence the cap. Smaller ranges shorten the end of
# the run (what is left to stage and write once the last range is read), up to a point where
# more ranges gain nothing (docs/cohort.md, Batches).
PERSONS_PER_BATCH = 175_000
MAX_BATCHES = 16
INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)

OUTPUT_SCHEMA = pa.schema([
    ("person_id", pa.int64()), ("n_episodes", pa.int64()),
    ("sex", pa.string()), ("age", pa.int32()), ("episode_onset", pa.date32()),
    ("thase_rush_stage", pa.int32()), ("mgh_score", pa.float64()),
    ("maudsley_score", pa.int32()), ("maudsley_band", pa.string()),
    ("european_category", pa.string()), ("regulatory_met", pa.bool_()),
    ("regulatory_first_met", pa.date32()), ("failed_trials", pa.int32()),
    ("trials", pa.int32()), ("adequate_trials", pa.int32()),
    ("duration_only_trials", pa.int32()), ("ect_courses", pa.int32()),
    ("rtms_courses", pa.int32()), ("severity", pa.string()), ("bipolar", pa.bool_()),
    ("psychosis", pa.bool_()),
])


@dataclass
class ScanResult:
    """The person-level table (ordered by person_id) and the counts the summary needs."""

    persons: pa.Table
    excluded_rows: dict[str, int]
    n_person: int
    with_mdd: int
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- array helpers


def _known_person(table: Any) -> Any:
    """The rows with a person_id (a row without one belongs to no one staged)."""
    if table is None or not table["person_id"].null_count:
        return table
    return table.filter(pc.is_valid(table["person_id"]))


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _first_of_groups(*keys: npt.NDArray[Any]) -> B:
    n = len(keys[0])
    first = np.zeros(n, dtype=bool)
    if n:
        first[0] = True
        for k in keys:
            first[1:] |= k[1:] != k[:-1]
    return first


def _unique(values: npt.NDArray[Any]) -> I64:
    """Sorted distinct values (a sort and one comparison: faster here than np.unique's hash)."""
    ordered = np.sort(values, kind="stable")  # (radix sort on integers: fast when sorted)
    return ordered[_first_of_groups(ordered)]


def _member(values: npt.NDArray[Any], pool: npt.NDArray[Any]) -> B:
    """values in `pool` (sorted, distinct)."""
    if not len(pool):
        return np.zeros(len(values), dtype=bool)
    at = np.clip(np.searchsorted(pool, values), 0, len(pool) - 1)
    return np.asarray(pool[at] == values)


def _member_sorted(values: I64, pool: I64) -> B:
    """`_member` when `values` too are sorted and distinct: the pool's values within their range
    are looked up among them (few, when the pool is a few persons of many)."""
    found = np.zeros(len(values), dtype=bool)
    if len(values) and len(pool):
        lo = int(np.searchsorted(pool, values[0], side="left"))
        hi = int(np.searchsorted(pool, values[-1], side="right"))
        inside = pool[lo:hi]  # (each within values[0] .. values[-1]: found a place among them)
        at = np.searchsorted(values, inside)
        found[at[values[at] == inside]] = True
    return found


def _rows_by_person(values: I64, people: I64) -> I64:
    """The row numbers of the rows of persons in `people` (sorted, distinct), grouped by person
    in that order, each person's rows in their given order. NumPy, not the compiled kernel: the
    scan calls it before the kernel has loaded."""
    kept = np.flatnonzero(_member(values, people))
    return kept[np.argsort(values[kept], kind="stable")]


# --------------------------------------------------------------------------- drug rows, in batches


def _batch_count(persons: int) -> int:
    return max(1, min(MAX_BATCHES, -(-persons // PERSONS_PER_BATCH)))


def _person_ranges(people: I64, batches: int) -> list[tuple[int, int, int, int]]:
    """`batches` ranges of person ids covering every int64, cut at persons of the (sorted,
    distinct) person table: (first id, last id, first person's place, past the last person's
    place). Each range holds about as many persons, but the last half as many: what is left to
    stage once every row is read is that range, so the run ends sooner."""
    m = len(people)
    cuts = sorted({2 * m * k // (2 * batches - 1) for k in range(1, batches)} - {0, m}) \
        if m else []
    places = [0, *cuts, m]
    firsts = [INT64_MIN, *(int(people[c]) for c in cuts)]
    lasts = [*(int(people[c]) - 1 for c in cuts), INT64_MAX]
    return [(firsts[i], lasts[i], places[i], places[i + 1]) for i in range(len(firsts))]


def _load_kernel() -> None:
    from trdstage.cohort import scan_native

    scan_native.warm_up()


def _stage_drug_rows(drugs: pa.Table | DrugRows, people: I64, prepare: Callable[[], _Prepared],
                     batches: int, threads: int, say: Step,
                     on_table: Callable[[pa.Table], None] | None,
                     ) -> tuple[list[pa.Table], dict[str, int], _Prepared]:
    """The compiled pass over every person, the drug rows read a range of persons at a time
    (one range when they come as a table), three steps in flight: while the next range is read,
    a worker thread groups and stages the range before it, and two more threads compute every
    model's result for the ranges before that, whose tables a fourth hands to `on_table` (the
    Parquet writer) in person_id order. The worker first loads the kernel and runs `prepare`
    (the kernel's other arguments) while the first range is read. Returns the ranges' tables
    (in person_id order), the drug rows left out (negative supply, end before start) and what
    `prepare` gave."""
    if isinstance(drugs, pa.Table):
        table = drugs
        reads: list[tuple[int, int, Callable[[], pa.Table]]] = [(0, len(people), lambda: table)]
    else:
        reads = [(a, b, partial(drugs.between, first, last))
                 for first, last, a, b in _person_ranges(people, batches)]
    out = lay.new_results(len(people))

    def stage(rows: pa.Table, a: int, b: int) -> tuple[int, Counter[str]]:
        from trdstage.cohort import scan_native as sk

        bad: Counter[str] = Counter()
        code = numpy_of(rows["bad"], np.int8, KEPT, "drug rows bad")
        skip = code != KEPT
        for value, (_, reason) in LEFT_OUT.items():
            bad[reason] += int(np.count_nonzero(code == value))
        if rows["person_id"].null_count:
            skip |= ~numpy_of(pc.is_valid(rows["person_id"]), np.bool_)
        if a == b:
            return 0, bad
        persons = people[a:b]
        ready = preparing.result()  # (done: the worker's task before this one)
        P = numpy_of(rows["person_id"], np.int64, 0)
        G = numpy_of(rows["agent_index"], np.int32)
        S = numpy_of(rows["start"], np.int32)
        order, offsets = sk.group_drugs(
            P, G, S, numpy_of(rows["drug_exposure_id"], np.int64, INT64_MAX),
            numpy_of(rows["is_ad"], np.bool_), skip, persons)
        staged = sk.run_into(
            out, a, P, G, S, numpy_of(rows["end"], np.int32),
            numpy_of(rows["dose"], np.float64, np.nan), order, offsets,
            *ready.streams, persons, *ready.tail,
            threads=threads)
        return staged, bad

    def finish(staging: Future[tuple[int, Counter[str]]], a: int) -> pa.Table:
        staged, _ = staging.result()
        out_p, out_i, out_f = out
        return _person_table(out_p[a:a + staged], out_i[:, a:a + staged],
                             out_f[:, a:a + staged], preparing.result().fixed)

    def write(finishing: Future[pa.Table]) -> None:
        assert on_table is not None  # noqa: S101 - submitted only then
        on_table(finishing.result())

    bad_rows: Counter[str] = Counter()
    # one thread stages (the compiled pass has threads of its own), two compute the models (the
    # last ranges' in parallel once every row is staged), one writes, range after range
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trdstage-scan") as worker, \
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="trdstage-models") as finisher, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="trdstage-write") as writer:
        # the kernel loads and the other arguments are prepared while the main thread reads
        # the first range (DuckDB, the GIL released)
        loading = worker.submit(_load_kernel)
        preparing = worker.submit(prepare)
        staging: list[Future[tuple[int, Counter[str]]]] = []
        finishing: list[Future[pa.Table]] = []
        writing: list[Future[None]] = []
        for i, (a, b, read) in enumerate(reads):
            if len(reads) > 1:
                say(f"staging persons {a + 1:,} to {b:,} of {len(people):,} "
                    f"(batch {i + 1} of {len(reads)})")
            got = read()
            if len(staging) >= 2:  # at most two ranges' rows wait in memory
                staging[-2].result()
            staging.append(worker.submit(stage, got, a, b))
            finishing.append(finisher.submit(finish, staging[-1], a))
            if on_table is not None:
                writing.append(writer.submit(write, finishing[-1]))
        if not isinstance(drugs, pa.Table):  # rows of no person: only counted
            staging.append(worker.submit(stage, drugs.without_person(), 0, 0))
            drugs.done()  # (the database may close while the last persons are staged)
        loading.result()
        for done in staging:
            bad_rows += done.result()[1]
        tables = [done.result() for done in finishing]
        for written in writing:
            written.result()
    return tables, dict(bad_rows), preparing.result()


# --------------------------------------------------------------------------- the scan


def stage_scan(
    source: OmopSource | ScanInputs,
    concepts: Concepts,
    as_of: date,
    policy: Policy,
    spec: OmopSpec | None = None,
    knowledge: Knowledge | None = None,
    step: Step | None = None,
    threads: int | None = None,
    batches: int | None = None,
    on_table: Callable[[pa.Table], None] | None = None,
) -> ScanResult:
    """Every person's staging, as `build_plan(...).persons` gives it, ordered by person_id.
    `threads`: how many threads the compiled pass may use (default: the cores this process may
    run on). `batches`: in how many ranges of person ids the drug rows are read and staged when
    `DrugRows` reads them (default: one per PERSONS_PER_BATCH persons, at most MAX_BATCHES).
    `on_table`: called with each range's part of the table, in person_id order, as soon as it
    is computed (on a worker thread, one call at a time): the Parquet writer writes it while
    the next ranges are staged."""
    check_policy(policy)
    threads = threads or _cores()
    spec = spec or load_omop_spec()
    k = knowledge or load_knowledge()
    rules = spec.rules

    say = step or (lambda _m: None)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()

    # ------------------------------------------------------------ one read per table
    if isinstance(source, ScanInputs):
        inputs = source
    else:
        say("reading drug_exposure (one pass)")
        inputs = read_scan_inputs(source.tables, concepts, as_of, policy, rules)
    people_pid = numpy_of(inputs.people["person_id"], np.int64, what="person.person_id")
    people_sorted = _unique(people_pid)
    clock["read"] = time.perf_counter() - t0
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        clock[name] = now - mark[0]
        mark[0] = now

    prepare = partial(_prepare, inputs, concepts, as_of, policy, rules, k, people_pid,
                      people_sorted, spec.gender)
    tables, bad_rows, prepared = _stage_drug_rows(
        inputs.drugs, people_sorted, prepare, batches or _batch_count(len(people_sorted)),
        threads, say, on_table)
    excluded_rows = {**prepared.excluded_rows, **bad_rows}
    lap("drugs")
    # (on their own threads, overlapping the drug rows: summed)
    clock["arrays"] = prepared.seconds
    clock["models"] = sum(models for models, _ in prepared.fixed.laps)
    clock["table"] = sum(table for _, table in prepared.fixed.laps)
    # persons are in rank order, which is person_id order: the table needs no sort
    table = pa.concat_tables(tables) if tables else OUTPUT_SCHEMA.empty_table()
    # (rows of persons not in the person table are left out of with_mdd)
    return ScanResult(persons=table, excluded_rows=excluded_rows, n_person=len(people_pid),
                      with_mdd=prepared.with_mdd, seconds=clock)


@dataclass
class _Prepared:
    """The kernel's arguments besides the drug rows, and what every range's models read."""

    streams: tuple[Any, ...]  # MDD diagnoses, PHQ-9 readings, ECT and rTMS sessions
    tail: tuple[Any, ...]  # per agent: minimum dose, mechanism, class; the settings
    fixed: _Fixed
    with_mdd: int  # persons of the person table with an MDD diagnosis
    excluded_rows: dict[str, int]  # PHQ-9 readings out of range
    seconds: float


def _prepare(inputs: ScanInputs, concepts: Concepts, as_of: date, policy: Policy, rules: Any,
             k: Knowledge, people_pid: I64, people_sorted: I64,
             gender_map: list[GenderMap]) -> _Prepared:
    """The other rows as arrays (diagnoses grouped by person), the knowledge and settings as
    the kernel's arrays, and what every range's models read. The staging thread's first task:
    meanwhile the main thread reads the first range of drug rows."""
    t0 = time.perf_counter()
    people, readings = inputs.people, inputs.readings
    asof_day = (as_of - EPOCH).days
    duration_only = policy.missing_dose is MissingDose.duration_only
    failure = {o.value for o in policy.failure_outcomes}
    names = agent_names(concepts)
    cond: dict[str, tuple[I64, I32]] = {
        name: (numpy_of(sub["person_id"], np.int64, what=f"{name} person_id"),
               numpy_of(sub["d"], np.int32, what=f"{name} date"))
        for name, sub in ((n, _known_person(t)) for n, t in inputs.diagnoses.items())}
    excluded_rows: dict[str, int] = {}
    procs: dict[str, tuple[I64, I32] | None] = {
        name: None if got is None else (numpy_of(got["person_id"], np.int64, what=name),
                                        numpy_of(got["s"], np.int32, what=name))
        for name, got in ((n, _known_person(t)) for n, t in inputs.procedures.items())}
    # ------------------------------------------------------------ the other rows, as arrays
    mdd_p, mdd_d = cond["mdd"]
    by_person = _rows_by_person(mdd_p, people_sorted)
    mdd_p, mdd_d = mdd_p[by_person], mdd_d[by_person]
    mdd_persons = mdd_p[_first_of_groups(mdd_p)]
    empty = np.zeros(0, np.int64)
    no_days = np.zeros(0, np.int32)
    if readings is not None:
        rv_all = numpy_of(readings["r_value"], np.float64, what="PHQ-9 value")
        out_of_range = ~((rv_all >= 0) & (rv_all <= k.scales["PHQ-9"].max))  # NaN: out
        if int(out_of_range.sum()):
            excluded_rows[PHQ9_OUT_OF_RANGE] = int(out_of_range.sum())
        ok = ~out_of_range & numpy_of(pc.is_valid(readings["person_id"]), np.bool_)
        r_pid = numpy_of(readings["person_id"], np.int64, 0)[ok]
        r_day = numpy_of(readings["r_date"], np.int32, what="PHQ-9 date")[ok]
        r_val = rv_all[ok]
    else:
        r_pid, r_day, r_val = empty, no_days, np.zeros(0, np.float64)
    proc_rows = {name: (empty, no_days) if got is None else got for name, got in procs.items()}

    # ------------------------------------------------------------ the knowledge, as arrays
    cols = agent_columns(k, policy)
    n_names = len(names)
    min_mg = np.full(n_names, np.nan)
    mech_idx = np.full(n_names, -1, dtype=np.int64)
    cls_idx = np.full(n_names, -1, dtype=np.int64)
    mech_names = sorted(set(cols["mechanism"]))
    cls_names = sorted(set(cols["cls"]))
    for name, mech, cls, mg in zip(cols["agent"], cols["mechanism"], cols["cls"], cols["min_mg"],
                                   strict=True):
        if name in names:
            i = names.index(name)
            mech_idx[i] = mech_names.index(mech)
            cls_idx[i] = cls_names.index(cls)
            min_mg[i] = np.nan if mg is None else mg
    models = k.models
    pts = models.mgh.points
    tr = models.thase_rush
    code_of = {"response": 2, "partial_response": 1, "non_response": 0}
    failure_code = np.zeros(3, dtype=np.int64)
    for outcome in failure:
        if outcome in code_of:
            failure_code[code_of[outcome]] = 1
    severity_on = readings is not None and bool(rules.severity_from_phq9)
    settings_int = np.zeros(lay.N_SETTINGS_INT, dtype=np.int64)
    for index, value in (
        (lay.SAME_GAP, policy.same_agent_gap_days), (lay.WASHOUT, rules.episode_washout_days),
        (lay.MDD_OPENS, rules.mdd_diagnosis_opens_episode),
        (lay.REQUIRE_MDD, rules.require_mdd_diagnosis), (lay.AS_OF, asof_day),
        (lay.AUG_GAP, augmenter_gap_days(rules, policy)), (lay.DURATION_ONLY, duration_only),
        (lay.MIN_DAYS, round(policy.min_adequate_weeks * 7)),
        (lay.SWITCH_DAYS, -1 if policy.failure_from_switch_days is None
         else policy.failure_from_switch_days),
        (lay.CONCURRENT_DAYS, policy.concurrent_min_days),
        (lay.BASELINE_WINDOW, policy.baseline_window_days),
        (lay.CURRENT_EPISODE, policy.scope is Scope.current_episode),
        (lay.ECT_GAP, rules.ect_course_gap_days), (lay.ECT_MIN_SESSIONS, policy.ect_min_sessions),
        (lay.RTMS_GAP, rules.rtms_course_gap_days),
        (lay.SEVERITY_WINDOW, rules.severity_window_days if severity_on else -1),
        (lay.MGH_LONG_DAYS, min_days_over_weeks(policy.mgh_duration_optimisation_weeks)),
        (lay.TCA_MECH, mech_names.index(tr.stage_3_mechanism)),
        (lay.MAOI_MECH, mech_names.index(tr.stage_4_mechanism)),
        (lay.TCA_CLASS, cls_names.index(class_of(k, policy, tr.stage_3_mechanism))),
        (lay.MAOI_CLASS, cls_names.index(class_of(k, policy, tr.stage_4_mechanism))),
        (lay.REG_NEEDED, policy.regulatory_min_failed_agents),
        (lay.UNKNOWN_FAILS, "unknown" in failure),
    ):
        settings_int[index] = int(value)
    settings_float = np.zeros(lay.N_SETTINGS_FLOAT, dtype=np.float64)
    for index, number in (
        (lay.RESPONSE_PCT, policy.response_min_reduction_pct),
        (lay.PARTIAL_PCT, policy.partial_response_min_reduction_pct),
        (lay.PTS_FAILED, pts["failed_trial"].value), (lay.PTS_DOSE, pts["dose_optimisation"].value),
        (lay.PTS_DURATION, pts["duration_optimisation"].value),
        (lay.PTS_AUGMENT, pts["augmentation_or_combination"].value),
    ):
        settings_float[index] = float(number)

    # ------------------------------------------------------------ what every range's models read
    by_id = np.argsort(people_pid, kind="stable")
    first_rows = by_id[_first_of_groups(people_pid[by_id])]  # (a person's first row counts)
    gender = numpy_of(people["gender_concept_id"], np.float64, np.nan)[first_rows]
    yob = numpy_of(people["year_of_birth"], np.float64, np.nan)[first_rows]
    fixed = _Fixed(
        k=k, policy=policy, rules=rules, as_of=as_of, severity_on=severity_on,
        diagnosed={name: _unique(cond[name][0]) for name in ("bipolar", "psychosis")},
        people=people_sorted, gender=gender, yob=yob, gender_map=gender_map)
    streams = (mdd_p, mdd_d, r_pid, r_day, r_val, *proc_rows["ect"], *proc_rows["rtms"])
    tail = (min_mg, mech_idx, cls_idx, failure_code, settings_int, settings_float)
    return _Prepared(streams=streams, tail=tail, fixed=fixed, with_mdd=len(mdd_persons),
                     excluded_rows=excluded_rows, seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- every model


@dataclass
class _Fixed:
    """What every range's models and table read: the settings and the person table's columns."""

    k: Knowledge
    policy: Policy
    rules: Any
    as_of: date
    severity_on: bool
    diagnosed: dict[str, I64]  # sorted, distinct ids of persons with a bipolar / psychosis row
    people: I64  # sorted, distinct ids of the person table; gender and yob in that order
    gender: npt.NDArray[np.float64]
    yob: npt.NDArray[np.float64]
    gender_map: list[GenderMap]  # the spec's gender concepts, in its order
    laps: list[tuple[float, float]] = field(default_factory=list)  # per range: models, table


def _person_table(cur_pid: I64, out_i: Any, out_f: Any, fx: _Fixed) -> pa.Table:
    """Every model's result and the person-level table of the staged persons `cur_pid` (in
    person_id order), from the compiled pass's per-person counts (`out_i`, `out_f`: their
    columns)."""
    from trdstage.cohort import scan_native as sk

    t0 = time.perf_counter()
    k, policy, rules = fx.k, fx.policy, fx.rules
    models = k.models
    pts = models.mgh.points
    n_cur = len(cur_pid)
    cur_n = out_i[lay.N_EPISODES]
    cur_onset = out_i[lay.ONSET]
    cur_end = out_i[lay.CUR_END]
    failed_trials = out_i[lay.FAILED_TRIALS]
    classes = out_i[lay.CLASSES]
    failed_agents = out_i[lay.FAILED_AGENTS]
    n_tca, n_maoi = out_i[lay.N_TCA], out_i[lay.N_MAOI]
    n_cls_tca, n_cls_maoi = out_i[lay.N_CLS_TCA], out_i[lay.N_CLS_MAOI]
    first_start, last_end = out_i[lay.FIRST_START], out_i[lay.LAST_END]
    n_trials = out_i[lay.N_TRIALS]
    adequate_trials = out_i[lay.ADEQUATE_TRIALS]
    duration_only_trials = out_i[lay.DURATION_ONLY_TRIALS]
    aug_used = out_i[lay.AUG_USED] > 0
    regulatory_met = out_i[lay.REG_AGENTS] >= policy.regulatory_min_failed_agents
    reg_first = out_i[lay.REG_FIRST]
    ect_courses, failed_ect = out_i[lay.ECT_COURSES], out_i[lay.FAILED_ECT]
    rtms_courses = out_i[lay.RTMS_COURSES]
    mgh_trials = out_f[lay.MGH_TRIALS]

    # ------------------------------------------------------------ severity, flags
    severity_code = np.full(n_cur, -1, dtype=np.int64)
    severity_values: list[str | None] = []
    if fx.severity_on:
        value = out_f[lay.SEVERITY_VALUE]
        hit = ~np.isnan(value)
        for i, band in enumerate(k.scales["PHQ-9"].bands):
            target = rules.severity_from_phq9.get(band.label)
            severity_values.append(target.value if target else None)
            inside = hit & (severity_code == -1) & (value >= band.low) & (value <= band.high)
            severity_code[inside] = i
    sev_known = severity_code >= 0
    if severity_values:
        # index -1 (no reading in the window) lands on the appended False
        mapped = np.array([v is not None for v in severity_values] + [False])
        sev_known &= mapped[severity_code]
    bipolar = _member_sorted(cur_pid, fx.diagnosed["bipolar"])
    psychosis = _member_sorted(cur_pid, fx.diagnosed["psychosis"])

    # ------------------------------------------------------------ every model (step 6)
    # Thase & Rush (any order): see quirks.py
    drop_tca = (n_cls_tca == 1).astype(np.int64)
    drop_maoi = (n_cls_maoi == 1).astype(np.int64)
    stage3 = (n_tca >= 1) & (classes - drop_tca >= 2)
    stage4 = stage3 & (n_maoi >= 1) & (classes - drop_tca - drop_maoi >= 2)
    stage = np.select([failed_trials == 0, classes < 2, ~stage3, ~stage4, failed_ect == 0],
                      [0, 1, 2, 3, 4], 5)
    mgh = mgh_trials + failed_ect.astype(np.float64) * pts["failed_ect_course"].value
    # European
    eu = models.european
    cat_labels = [s.category for s in eu.by_failed_trials]
    cat = np.full(n_cur, len(cat_labels) - 1, dtype=np.int64)
    for i, s in reversed(list(enumerate(eu.by_failed_trials[:-1]))):
        cat[failed_trials == s.failed] = i
    whole, extra = months_split(policy.european_crd_months)
    has_failed = failed_trials > 0
    crd = (failed_trials >= eu.crd_min_failed_trials) & has_failed & (
        last_end - sk.shift_months(np.where(has_failed, first_start, 0), whole) >= extra)
    labels = [*cat_labels, "CRD"]
    cat = np.where(crd, len(labels) - 1, cat)
    # Maudsley
    ms = models.maudsley
    dur_pts = np.full(n_cur, 0, dtype=np.int64)
    decided = np.zeros(n_cur, dtype=bool)
    for months in ms.duration_months:
        if months.max_months is None:
            dur_pts[~decided] = months.points
            decided[:] = True
            break
        w_, x_ = months_split(months.max_months)
        inside = ~decided & (cur_end - sk.shift_months(cur_onset, w_) <= x_)
        dur_pts[inside] = months.points
        decided |= inside
    sev_pts = np.zeros(n_cur, dtype=np.int64)
    sev_has = np.zeros(n_cur, dtype=bool)
    for key, value in ms.severity.items():
        if key == "severe_psychotic":
            continue
        for i, label in enumerate(severity_values):
            if label == key:
                m = sev_known & (severity_code == i)
                sev_pts[m] = value
                sev_has |= m
    lvl_pts = np.zeros(n_cur, dtype=np.int64)
    decided = np.zeros(n_cur, dtype=bool)
    for cb in ms.failed_antidepressants:
        if cb.max is None:
            lvl_pts[~decided] = cb.points
            break
        inside = ~decided & (failed_agents <= cb.max)
        lvl_pts[inside] = cb.points
        decided |= inside
    score = (dur_pts + sev_pts + lvl_pts + np.where(aug_used, ms.augmentation_points, 0)
             + np.where(ect_courses > 0, ms.ect_points, 0))
    msm_ok = (failed_agents > 0) & sev_has
    band_idx = np.full(n_cur, -1, dtype=np.int64)
    for i, b in enumerate(ms.bands):
        band_idx[msm_ok & (band_idx == -1) & (score >= b.low) & (score <= b.high)] = i
    t1 = time.perf_counter()

    # ------------------------------------------------------------ the table
    where = np.searchsorted(fx.people, cur_pid)  # (both sorted: a cheap search)
    g = fx.gender[where]
    sexes = fx.gender_map
    sex_idx = np.full(n_cur, len(sexes), dtype=np.int64)
    for i, gm in reversed(list(enumerate(sexes))):
        sex_idx[g == gm.concept_id] = i
    yob = fx.yob[where]
    age = np.where(np.isnan(yob), 0, fx.as_of.year - np.nan_to_num(yob))
    age_mask = ~np.isnan(yob)

    def dates(days: I64, mask: B | None = None) -> pa.Array:
        return arrow_of(days, pa.date32(), mask)

    def ints(values: Any) -> pa.Array:
        return arrow_of(values, pa.int32())

    columns = {
        "person_id": arrow_of(cur_pid, pa.int64()),
        "n_episodes": arrow_of(cur_n, pa.int64()),
        "sex": strings_of([gm.sex.value for gm in sexes] + ["unknown"], sex_idx),
        "age": arrow_of(age, pa.int32(), age_mask),
        "episode_onset": dates(cur_onset),
        "thase_rush_stage": ints(stage),
        "mgh_score": arrow_of(mgh, pa.float64()),
        "maudsley_score": arrow_of(score, pa.int32(), msm_ok),
        "maudsley_band": strings_of([b.label for b in ms.bands] or [None],
                                    np.clip(band_idx, 0, None), band_idx >= 0),
        "european_category": strings_of(labels, cat),
        "regulatory_met": arrow_of(regulatory_met, pa.bool_()),
        "regulatory_first_met": dates(reg_first, regulatory_met),
        "failed_trials": ints(failed_trials),
        "trials": ints(n_trials),
        "adequate_trials": ints(adequate_trials),
        "duration_only_trials": ints(duration_only_trials),
        "ect_courses": ints(ect_courses),
        "rtms_courses": ints(rtms_courses),
        "severity": strings_of(severity_values or [None], np.clip(severity_code, 0, None),
                               sev_known),
        "bipolar": arrow_of(bipolar, pa.bool_()),
        "psychosis": arrow_of(psychosis, pa.bool_()),
    }
    table = pa.Table.from_arrays([columns[f.name] for f in OUTPUT_SCHEMA], schema=OUTPUT_SCHEMA)
    fx.laps.append((t1 - t0, time.perf_counter() - t1))
    return table


__all__ = ["OUTPUT_SCHEMA", "ScanResult", "stage_scan"]
