"""The cohort engine as one sorted read per table and a vectorised scan (the single-machine path).

`engine.build_plan` states every rule as one Ibis expression so that it runs inside any database
(PostgreSQL, Spark). On one machine, the dozen window passes that expression needs cost far more
than reading the rows once: here the database does what it is best at (filters, the joins to the
concept and strength lookups, one sort) through the same Ibis helpers, and the sequential rules
(gaps and islands, the PHQ-9 baseline and endpoint, the switch and overlap tests) run as NumPy
passes over the sorted columns. The rules are the expression's, step for step (the comments name
the step of `build_plan` each block mirrors), and the equivalence tests hold both paths to
`engine.assess` on every person.

Vocabulary: rows are sorted by (person, agent, start, drug_exposure_id); a *group* is a run of
rows sharing a key; a running maximum within groups is one `np.maximum.accumulate` over values
lifted by the group's number times a span larger than any value (so no group sees the one
before it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from trdstage.adapters.omop import Concepts, OmopSource
from trdstage.cohort.quirks import min_days_over_weeks, months_split
from trdstage.cohort.rules import (
    BAD_END,
    BAD_SUPPLY,
    PHQ9_OUT_OF_RANGE,
    agent_columns,
    agent_names,
    augmenter_gap_days,
    check_policy,
    class_of,
)
from trdstage.cohort.scan_inputs import ScanInputs, read_scan_inputs
from trdstage.domain import MissingDose, Policy, Scope
from trdstage.knowledge import Knowledge, load_knowledge
from trdstage.knowledge.omop_schema import OmopSpec, load_omop_spec

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
Step = Callable[[str], None]

EPOCH = date(1970, 1, 1)
DAY_BITS = 22  # a day number (since 1970, offset by 2**21) takes 22 bits: years 0..7700
DAY_OFFSET = 1 << 21
AGENT_BITS = 10

OUTPUT_SCHEMA = pa.schema([
    ("person_id", pa.int64()), ("episode", pa.int64()), ("n_episodes", pa.int64()),
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


def _days(col: Any) -> I64:
    """A date32 column as day numbers since 1970."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(pc.cast(arr, pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int32)


def _np(col: Any, dtype: Any) -> Any:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def _first_of_groups(*keys: npt.NDArray[Any]) -> B:
    n = len(keys[0])
    first = np.zeros(n, dtype=bool)
    if n:
        first[0] = True
        for k in keys:
            first[1:] |= k[1:] != k[:-1]
    return first


def _running_count(marks: B) -> I64:
    """Running count of True. Counting in int32 and widening is several times faster here than
    accumulating booleans into int64 directly."""
    if len(marks) < 2**31:
        return np.cumsum(marks, dtype=np.int32).astype(np.int64)
    return np.add.accumulate(marks, dtype=np.int64)


def _prev_running_max(values: npt.NDArray[Any], first: B, gid: I64 | None = None) -> I64:
    """Within groups (in order): the maximum of the earlier values (the group's first row gets
    a meaningless value: callers mask it with `first`). `gid`: the group numbers, if known."""
    if not len(values):
        return values.astype(np.int64)
    low = int(values.min())
    span = int(values.max()) - low + 1
    if gid is None:
        gid = _running_count(first) - 1
    lift = gid * span - low
    run = np.maximum.accumulate(values + lift)
    prev = np.empty(len(values), dtype=np.int64)
    prev[0] = 0
    np.subtract(run[:-1], lift[1:], out=prev[1:])
    return prev


def _islands(first: B, start: npt.NDArray[Any], end: npt.NDArray[Any], gap: int,
             strict_gt: bool = True, gid: I64 | None = None) -> I64:
    """`engine._islands`: a row opens a new island when it starts more than `gap` days after
    every earlier row of its group has ended (strict_gt=False: after, gap 0 and '>')."""
    prev = _prev_running_max(end, first, gid)
    new = (start - prev > gap) if strict_gt else (start > prev)
    new |= first
    return _running_count(new) - 1


def _run_max(values: npt.NDArray[Any], seg: I64) -> I64:
    """The largest value of each run starting at `seg` (as int64; empty when there are none)."""
    if not len(seg):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(np.maximum.reduceat(values, seg), dtype=np.int64)


def _unique(values: npt.NDArray[Any]) -> I64:
    """Sorted distinct values (a sort and one comparison: faster here than np.unique's hash)."""
    ordered = np.sort(values)
    return ordered[_first_of_groups(ordered)]


def _member(values: npt.NDArray[Any], pool: npt.NDArray[Any]) -> B:
    """values in `pool` (sorted, distinct)."""
    if not len(pool):
        return np.zeros(len(values), dtype=bool)
    at = np.clip(np.searchsorted(pool, values), 0, len(pool) - 1)
    return np.asarray(pool[at] == values)


def _segments(ids: I64) -> I64:
    """Start offsets of the runs of equal (sorted) ids."""
    return np.flatnonzero(_first_of_groups(ids))


def _key(rank: I64, day: I64, agent: I64 | None = None) -> I64:
    """(person rank, [agent,] day) packed into one sortable int64."""
    k = rank << AGENT_BITS
    if agent is not None:
        k = k | agent
    return (k << DAY_BITS) | (day + DAY_OFFSET)


def _count_in(keys: I64, lo: I64, hi: I64) -> I64:
    """How many sorted `keys` lie in (lo, hi]."""
    return np.searchsorted(keys, hi, "right") - np.searchsorted(keys, lo, "right")


def _add_months(days: I64, whole: int) -> I64:
    """`date + INTERVAL whole MONTH`: the same day of the month, clamped to the month's end."""
    if not whole:
        return days
    d = days.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    dom = d - month.astype("datetime64[D]")
    target = month + whole
    last = (target + 1).astype("datetime64[D]") - np.timedelta64(1, "D")
    out = np.minimum(target.astype("datetime64[D]") + dom, last)
    return np.asarray(out.astype(np.int64), dtype=np.int64)


def _str_array(values: Sequence[str | None], index: I64, mask: B | None = None) -> pa.Array:
    """values[index] as an Arrow string array (null where `mask` is False or value is None)."""
    dictionary = pa.array(values, type=pa.string())
    idx = pa.array(index.astype(np.int32), mask=None if mask is None else ~mask)
    return pc.take(dictionary, idx)


# --------------------------------------------------------------------------- the scan


def stage_scan(
    source: OmopSource | ScanInputs,
    concepts: Concepts,
    as_of: date,
    policy: Policy,
    spec: OmopSpec | None = None,
    knowledge: Knowledge | None = None,
    step: Step | None = None,
) -> ScanResult:
    """Every person's staging, as `build_plan(...).persons` gives it, ordered by person_id."""
    check_policy(policy)
    spec = spec or load_omop_spec()
    k = knowledge or load_knowledge()
    rules = spec.rules
    say = step or (lambda _m: None)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    asof_day = (as_of - EPOCH).days
    duration_only = policy.missing_dose is MissingDose.duration_only
    failure = {o.value for o in policy.failure_outcomes}

    # ------------------------------------------------------------ one sorted read per table
    if isinstance(source, ScanInputs):
        inputs = source
    else:
        say("reading drug_exposure (one sorted pass)")
        inputs = read_scan_inputs(source.tables, concepts, as_of, policy, rules)
    drugs, people, readings = inputs.drugs, inputs.people, inputs.readings
    names = agent_names(concepts)
    cond: dict[str, tuple[I64, I64]] = {
        name: (_np(sub["person_id"], np.int64), _days(sub["d"]))
        for name, sub in inputs.diagnoses.items()}
    excluded_rows: dict[str, int] = {}
    procs: dict[str, tuple[I64, I64] | None] = {
        name: None if got is None else (_np(got["person_id"], np.int64), _days(got["s"]))
        for name, got in inputs.procedures.items()}
    clock["read"] = time.perf_counter() - t0
    say("staging every person (vectorised scan)")
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        clock[name] = now - mark[0]
        mark[0] = now

    # ------------------------------------------------------------ drug rows
    P = _np(drugs["person_id"], np.int64)
    G = _np(drugs["agent_index"], np.int32)
    S = _np(drugs["start"], np.int32)
    E = _np(drugs["end"], np.int32)
    D = _np(drugs["dose"], np.float64)
    n_ad = int(pc.sum(drugs["is_ad"]).as_py() or 0)
    bad = pc.or_(drugs["bad_supply"], drugs["bad_end"])
    if pc.any(bad).as_py():
        for reason, column in ((BAD_SUPPLY, "bad_supply"), (BAD_END, "bad_end")):
            n_bad = int(pc.sum(drugs[column]).as_py() or 0)
            if n_bad:
                excluded_rows[reason] = n_bad
        keep_rows = ~_np(bad, bool)
        n_ad = int(keep_rows[:n_ad].sum())
        P, G, S, E, D = P[keep_rows], G[keep_rows], S[keep_rows], E[keep_rows], D[keep_rows]

    # person ranks: every person id seen in drugs or MDD diagnoses, sorted
    mdd_p, mdd_d = cond["mdd"]
    mdd_persons = _unique(mdd_p)
    pid_all = _unique(np.concatenate([P[_first_of_groups(P)], mdd_persons]))

    def rank(p: I64) -> I64:
        return np.searchsorted(pid_all, p).astype(np.int64)

    # antidepressant rows (every one is a formulary antidepressant, by drug_map_table) and
    # augmenter rows: two slices of the read
    tP, tG, tS, tE, tD = P[:n_ad], G[:n_ad], S[:n_ad], E[:n_ad], D[:n_ad]
    aP, aG, aS, aE = P[n_ad:], G[n_ad:], S[n_ad:], E[n_ad:]
    t_first = _first_of_groups(tP, tG)
    t_gid = _running_count(t_first) - 1
    trial = _islands(t_first, tS, tE, policy.same_agent_gap_days, gid=t_gid)
    seg = _segments(trial)
    n_tr = len(seg)
    T_p, T_g = tP[seg], tG[seg].astype(np.int64)
    T_start = tS[seg].astype(np.int64)
    T_end = _run_max(tE, seg)
    T_rank = rank(T_p)

    lap("drug rows")
    # ------------------------------------------------------------ episodes (step 2)
    # Over spans of one agent's rows with gaps no longer than the washout rather than over the
    # rows: every row of such a span falls in the span's episode, and an episode opens before a
    # span exactly when it opens before the span's first row (see docs/cohort.md).
    if policy.same_agent_gap_days <= rules.episode_washout_days:
        sp_r, sp_s, sp_e = T_rank, T_start, T_end
    else:
        span = _islands(t_first, tS, tE, rules.episode_washout_days, gid=t_gid)
        sseg = _segments(span)
        sp_r = rank(tP[sseg])
        sp_s = tS[sseg].astype(np.int64)
        sp_e = _run_max(tE, sseg)
    ev_r, ev_s, ev_e = sp_r, sp_s, sp_e
    if rules.mdd_diagnosis_opens_episode:
        ev_r = np.concatenate([ev_r, rank(mdd_p)])
        ev_s = np.concatenate([ev_s, mdd_d])
        ev_e = np.concatenate([ev_e, mdd_d])
    order = np.argsort(_key(ev_r, ev_s), kind="stable")
    ev_r, ev_s, ev_e = ev_r[order], ev_s[order], ev_e[order]
    ev_first = _first_of_groups(ev_r)
    ev_island = _islands(ev_first, ev_s, ev_e, rules.episode_washout_days)
    eseg = _segments(ev_island)
    isl_r = ev_r[eseg]
    isl_onset = ev_s[eseg]
    isl_last = _run_max(ev_e, eseg)
    # per person: the last island is the current episode
    p_seg = _segments(isl_r)
    p_last = np.append(p_seg[1:], len(isl_r)) - 1
    cur_r = isl_r[p_last]
    cur_n = np.diff(np.append(p_seg, len(isl_r))).astype(np.int64)
    cur_onset = isl_onset[p_last]
    last = isl_last[p_last]
    cur_end = np.where(asof_day - last > rules.episode_washout_days, last, asof_day)
    cur_pid = pid_all[cur_r]
    keep_cur = np.ones(len(cur_r), dtype=bool)
    if rules.require_mdd_diagnosis:
        keep_cur &= _member(cur_pid, mdd_persons)
    people_pid = _np(people["person_id"], np.int64)
    people_sorted = _unique(people_pid)
    keep_cur &= _member(cur_pid, people_sorted)
    cur_r, cur_n, cur_onset, cur_end, cur_pid = (cur_r[keep_cur], cur_n[keep_cur],
                                                 cur_onset[keep_cur], cur_end[keep_cur],
                                                 cur_pid[keep_cur])
    n_cur = len(cur_r)
    # person rank -> row of the current-episode table (-1: not staged)
    slot = np.full(len(pid_all), -1, dtype=np.int64)
    slot[cur_r] = np.arange(n_cur)

    lap("episodes")
    # ------------------------------------------------------------ PHQ-9 readings
    if readings is not None:
        rv_all = _np(readings["r_value"], np.float64)
        out_of_range = (rv_all < 0) | (rv_all > k.scales["PHQ-9"].max)
        if int(out_of_range.sum()):
            excluded_rows[PHQ9_OUT_OF_RANGE] = int(out_of_range.sum())
        ok = ~out_of_range
        r_pid = _np(readings["person_id"], np.int64)[ok]
        r_day = _days(readings["r_date"])[ok]
        r_val = rv_all[ok]
        # readings of persons never seen in drugs/MDD cannot meet any staged period
        seen = _member(r_pid, pid_all)
        r_pid, r_day, r_val = r_pid[seen], r_day[seen], r_val[seen]
        r_key = _key(rank(r_pid), r_day)
    else:
        r_key = np.zeros(0, np.int64)
        r_val = np.zeros(0, np.float64)

    def rated(p_rank: I64, start: I64, end: I64) -> npt.NDArray[np.int8]:
        """Per period: 2 response, 1 partial response, 0 non-response, -1 no outcome."""
        out = np.full(len(p_rank), -1, dtype=np.int8)
        if not len(r_key) or not len(p_rank):
            return out
        at_start = np.searchsorted(r_key, _key(p_rank, start), "right")
        hi_b = at_start - 1
        lo_b = np.searchsorted(r_key, _key(p_rank, start - policy.baseline_window_days), "left")
        hi_e = np.searchsorted(r_key, _key(p_rank, end), "right") - 1
        lo_e = at_start
        has = (hi_b >= lo_b) & (hi_e >= lo_e)
        b = np.where(has, r_val[np.clip(hi_b, 0, None)], np.nan)
        e = np.where(has, r_val[np.clip(hi_e, 0, None)], np.nan)
        has &= b > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            reduction = (b - e) / b * 100
        out[has] = np.where(reduction[has] >= policy.response_min_reduction_pct, 2,
                            np.where(reduction[has] >= policy.partial_response_min_reduction_pct,
                                     1, 0))
        return out

    code_of = {"response": 2, "partial_response": 1, "non_response": 0}
    failure_codes = np.array(sorted(code_of[o] for o in failure if o in code_of), np.int8)
    unknown_fails = "unknown" in failure

    lap("PHQ-9 readings")
    # ------------------------------------------------------------ trials (step 3)
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
    row_min = min_mg[tG]
    dose_missing_row = np.isnan(tD)
    T_dose_missing = (np.add.reduceat(dose_missing_row.astype(np.int64), seg) > 0) if n_tr \
        else np.zeros(0, bool)
    if duration_only:
        qualifies = np.isnan(row_min) | dose_missing_row | (tD >= row_min)
    else:
        qualifies = ~np.isnan(row_min) & ~dose_missing_row & (tD >= row_min)
    # days at an adequate dose: islands of the qualifying rows within each trial
    q_trial, q_s, q_e = trial[qualifies], tS[qualifies], tE[qualifies]
    q_island = _islands(_first_of_groups(q_trial), q_s, q_e, 0, strict_gt=False)
    qseg = _segments(q_island)
    adequate_days = np.zeros(n_tr, dtype=np.int64)
    if len(qseg):
        q_days = np.maximum.reduceat(q_e, qseg) - np.minimum.reduceat(q_s, qseg)
        adequate_days = np.bincount(q_trial[qseg], weights=q_days, minlength=n_tr).astype(
            np.int64)
    # dose raised above the minimum between successive recorded doses
    dm = ~dose_missing_row & ~np.isnan(row_min)
    d_trial, d_dose, d_min = trial[dm], tD[dm], row_min[dm]
    d_first = _first_of_groups(d_trial)
    prev = np.empty_like(d_dose)
    if len(prev):
        prev[0] = np.nan
        prev[1:] = d_dose[:-1]
        prev[d_first] = np.nan
    raised_rows = (d_dose > prev) & (d_dose > d_min)
    T_raised = np.zeros(n_tr, dtype=bool)
    T_raised[d_trial[raised_rows]] = True
    T_min = min_mg[T_g]
    min_days = round(policy.min_adequate_weeks * 7)
    if duration_only:
        T_adequate = adequate_days >= min_days
    else:
        T_adequate = ~np.isnan(T_min) & (adequate_days >= min_days)
    T_duration_only = duration_only & (np.isnan(T_min) | T_dose_missing)
    # augmenter regimens
    a_island = _islands(_first_of_groups(aP, aG), aS, aE, augmenter_gap_days(rules, policy))
    aseg = _segments(a_island)
    A_p, A_g, A_start = aP[aseg], aG[aseg].astype(np.int64), aS[aseg].astype(np.int64)
    A_end = _run_max(aE, aseg)
    A_rank = rank(A_p)

    # outcome: PHQ-9, else the switch convention (step 4)
    T_rated = rated(T_rank, T_start, T_end)
    o_rank = np.concatenate([T_rank, A_rank])
    o_start = np.concatenate([T_start, A_start])
    o_end = np.concatenate([T_end, A_end])
    o_agent = np.concatenate([T_g, A_g])
    o_aug = np.concatenate([np.zeros(n_tr, bool), np.ones(len(A_rank), bool)])
    o_order = np.argsort(_key(o_rank, o_start), kind="stable")
    o_rank, o_start, o_end, o_agent, o_aug = (o_rank[o_order], o_start[o_order],
                                              o_end[o_order], o_agent[o_order], o_aug[o_order])
    o_key = _key(o_rank, o_start)
    if policy.failure_from_switch_days is not None:
        lo, hi = _key(T_rank, T_start), _key(T_rank, T_end + policy.failure_from_switch_days)
        every = _count_in(o_key, lo, hi)
        # trials of the same agent (the trial table is sorted by person, agent, start)
        same_key = _key(T_rank, T_start, T_g)
        same = _count_in(same_key, same_key,
                         _key(T_rank, T_end + policy.failure_from_switch_days, T_g))
        T_switched = (every - same) > 0
    else:
        T_switched = np.zeros(n_tr, dtype=bool)
    # concurrency: another agent (or an augmenter) overlapping by the minimum days
    cmd = policy.concurrent_min_days
    p_lo = np.searchsorted(o_key, _key(T_rank, np.full(n_tr, -DAY_OFFSET)), "left")
    p_hi = np.searchsorted(o_key, _key(T_rank, T_end - cmd), "right")
    n_pairs = np.clip(p_hi - p_lo, 0, None)
    T_concurrent = np.zeros(n_tr, dtype=bool)
    if int(n_pairs.sum()):
        ti = np.repeat(np.arange(n_tr), n_pairs)
        offsets = np.arange(len(ti)) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        oi = np.repeat(p_lo, n_pairs) + offsets
        other = o_aug[oi] | (o_agent[oi] != T_g[ti])
        overlap = np.minimum(T_end[ti], o_end[oi]) - np.maximum(T_start[ti], o_start[oi])
        hit = other & (overlap >= cmd)
        T_concurrent[ti[hit]] = True
    T_outcome = np.where(T_rated >= 0, T_rated,
                         np.where(T_adequate & T_switched, 0, -1)).astype(np.int8)
    T_failed = T_adequate & (np.isin(T_outcome, failure_codes)
                             | (unknown_fails & (T_outcome == -1)))

    # scope: the current episode
    T_slot = slot[T_rank]
    staged = T_slot >= 0
    T_onset = np.where(staged, cur_onset[np.clip(T_slot, 0, None)], 0)
    T_in_episode = staged & (T_start >= T_onset)
    T_in_scope = T_in_episode if policy.scope is Scope.current_episode else staged

    lap("trials")
    # ------------------------------------------------------------ ECT and rTMS (step 5)
    def courses(name: str, gap: int) -> tuple[I64, I64, I64, I64] | None:
        got = procs[name]
        if got is None:
            return None
        c_pid, c_day = got
        c_first = _first_of_groups(c_pid)
        island = _islands(c_first, c_day, c_day, gap)
        cseg = _segments(island)
        sessions = np.diff(np.append(cseg, len(island))).astype(np.int64)
        return c_pid[cseg], c_day[cseg].astype(np.int64), _run_max(c_day, cseg), sessions

    ect_courses = np.zeros(n_cur, dtype=np.int64)
    failed_ect = np.zeros(n_cur, dtype=np.int64)
    ect = courses("ect", rules.ect_course_gap_days)
    if ect is not None:
        e_pid, e_start, e_end, e_sessions = ect
        known_p = _member(e_pid, pid_all)
        e_pid, e_start, e_end, e_sessions = (e_pid[known_p], e_start[known_p], e_end[known_p],
                                             e_sessions[known_p])
        e_rank = rank(e_pid)
        e_slot = slot[e_rank]
        ok = e_slot >= 0
        e_rated = rated(e_rank, e_start, e_end)
        # as the expression: a course without a rated outcome never counts as failed
        e_failed = np.isin(e_rated, failure_codes) & (e_sessions >= policy.ect_min_sessions)
        onset = cur_onset[np.clip(e_slot, 0, None)]
        in_scope = ok & ((e_start >= onset) if policy.scope is Scope.current_episode else True)
        ect_courses = np.bincount(e_slot[in_scope], minlength=n_cur).astype(np.int64)
        failed_ect = np.bincount(e_slot[in_scope & e_failed], minlength=n_cur).astype(np.int64)
    rtms_courses = np.zeros(n_cur, dtype=np.int64)
    rtms = courses("rtms", rules.rtms_course_gap_days)
    if rtms is not None:
        m_pid, m_start, _, _ = rtms
        known_p = _member(m_pid, pid_all)
        m_pid, m_start = m_pid[known_p], m_start[known_p]
        m_slot = slot[rank(m_pid)]
        ok = m_slot >= 0
        if policy.scope is Scope.current_episode:
            ok &= m_start >= cur_onset[np.clip(m_slot, 0, None)]
        rtms_courses = np.bincount(m_slot[ok], minlength=n_cur).astype(np.int64)

    lap("ECT and rTMS")
    # ------------------------------------------------------------ severity
    severity_code = np.full(n_cur, -1, dtype=np.int64)
    severity_values: list[str | None] = []
    if readings is not None and rules.severity_from_phq9 and len(r_key):
        lo = np.searchsorted(r_key, _key(cur_r, cur_onset - rules.severity_window_days), "left")
        hit = lo < len(r_key)
        hit &= (r_key[np.clip(lo, 0, len(r_key) - 1)] >> (AGENT_BITS + DAY_BITS)) == cur_r
        value = r_val[np.clip(lo, 0, len(r_key) - 1)]
        bands = k.scales["PHQ-9"].bands
        chosen = np.full(n_cur, -1, dtype=np.int64)
        for i, band in enumerate(bands):
            target = rules.severity_from_phq9.get(band.label)
            severity_values.append(target.value if target else None)
            inside = hit & (chosen == -1) & (value >= band.low) & (value <= band.high)
            chosen[inside] = i
        severity_code = chosen
    sev_known = severity_code >= 0
    if severity_values:
        # index -1 (no reading in the window) lands on the appended False
        mapped = np.array([v is not None for v in severity_values] + [False])
        sev_known &= mapped[severity_code]

    lap("severity")
    # ------------------------------------------------------------ flags
    def has_dx(name: str) -> B:
        dp, _ = cond[name]
        return _member(cur_pid, _unique(dp))

    bipolar, psychosis = has_dx("bipolar"), has_dx("psychosis")

    lap("flags")
    # ------------------------------------------------------------ per person (step 6)
    models = k.models
    pts = models.mgh.points
    tr = models.thase_rush
    mgh_long = min_days_over_weeks(policy.mgh_duration_optimisation_weeks)
    f = T_in_scope & T_failed
    fs = T_slot[f]
    failed_trials = np.bincount(fs, minlength=n_cur)

    def nunique(values: I64) -> I64:
        pairs = _unique(fs * (values.max(initial=0) + 1) + values)
        return np.bincount(pairs // (values.max(initial=0) + 1), minlength=n_cur)

    f_cls = cls_idx[T_g[f]]
    f_mech = mech_idx[T_g[f]]
    classes = nunique(f_cls)
    failed_agents = nunique(T_g[f])
    tca_m, maoi_m = mech_names.index(tr.stage_3_mechanism), mech_names.index(tr.stage_4_mechanism)
    cls_tca = cls_names.index(class_of(k, policy, tr.stage_3_mechanism))
    cls_maoi = cls_names.index(class_of(k, policy, tr.stage_4_mechanism))
    n_tca = np.bincount(fs, weights=f_mech == tca_m, minlength=n_cur)
    n_maoi = np.bincount(fs, weights=f_mech == maoi_m, minlength=n_cur)
    n_cls_tca = np.bincount(fs, weights=f_cls == cls_tca, minlength=n_cur)
    n_cls_maoi = np.bincount(fs, weights=f_cls == cls_maoi, minlength=n_cur)
    points = (pts["failed_trial"].value
              + np.where(T_raised[f], pts["dose_optimisation"].value, 0.0)
              + np.where(adequate_days[f] >= mgh_long, pts["duration_optimisation"].value, 0.0)
              + np.where(T_concurrent[f], pts["augmentation_or_combination"].value, 0.0))
    # summed in trial order, as the database sums them (the values are exact in binary halves)
    mgh_trials = np.bincount(fs, weights=points, minlength=n_cur)
    # trials are in person order, so each person's failed trials are one run of `fs`
    first_start = np.zeros(n_cur, dtype=np.int64)
    last_end = np.zeros(n_cur, dtype=np.int64)
    fseg = _segments(fs)
    if len(fseg):
        first_start[fs[fseg]] = np.minimum.reduceat(T_start[f], fseg)
        last_end[fs[fseg]] = np.maximum.reduceat(T_end[f], fseg)

    sc = T_slot[T_in_scope]
    n_trials = np.bincount(sc, minlength=n_cur)
    adequate_trials = np.bincount(sc, weights=T_adequate[T_in_scope], minlength=n_cur)
    duration_only_trials = np.bincount(
        sc, weights=np.broadcast_to(T_duration_only, (n_tr,))[T_in_scope], minlength=n_cur)
    aug_used = np.bincount(sc, weights=T_concurrent[T_in_scope], minlength=n_cur) > 0

    # regulatory: each agent's earliest failed end; first_met = the needed-th earliest
    needed = policy.regulatory_min_failed_agents
    rf = T_in_episode & T_failed
    r_slot, r_agent, r_end = T_slot[rf], T_g[rf], T_end[rf]
    order = np.lexsort((r_end, r_agent, r_slot))
    r_slot, r_agent, r_end = r_slot[order], r_agent[order], r_end[order]
    firsts = _first_of_groups(r_slot, r_agent)
    a_slot, a_end = r_slot[firsts], r_end[firsts]
    order = np.lexsort((a_end, a_slot))
    a_slot, a_end = a_slot[order], a_end[order]
    reg_agents = np.bincount(a_slot, minlength=n_cur)
    start_of = np.searchsorted(a_slot, np.arange(n_cur), "left")
    pick = start_of + needed - 1
    regulatory_met = reg_agents >= needed
    reg_first = np.where(regulatory_met, a_end[np.clip(pick, 0, max(len(a_end) - 1, 0))]
                         if len(a_end) else 0, 0)

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
        last_end - _add_months(np.where(has_failed, first_start, 0), whole) >= extra)
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
        inside = ~decided & (cur_end - _add_months(cur_onset, w_) <= x_)
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

    lap("per person")
    # ------------------------------------------------------------ the table
    gender = _np(people["gender_concept_id"], np.float64)
    yob = _np(people["year_of_birth"], np.float64)
    by_id = np.argsort(people_pid)
    where = by_id[np.searchsorted(people_pid, cur_pid, sorter=by_id)]
    g = gender[where]
    sexes = load_omop_spec().gender
    sex_idx = np.full(n_cur, len(sexes), dtype=np.int64)
    for i, gm in reversed(list(enumerate(sexes))):
        sex_idx[g == gm.concept_id] = i
    age = np.where(np.isnan(yob[where]), 0, as_of.year - np.nan_to_num(yob[where]))
    age_mask = ~np.isnan(yob[where])

    def dates(days: I64, mask: B | None = None) -> pa.Array:
        return pa.array(days.astype(np.int32), type=pa.int32(),
                        mask=None if mask is None else ~mask).cast(pa.date32())

    def ints(values: Any) -> pa.Array:
        return pa.array(np.asarray(values).astype(np.int32), pa.int32())

    columns = {
        "person_id": pa.array(cur_pid, pa.int64()),
        "episode": pa.array(cur_n, pa.int64()),
        "n_episodes": pa.array(cur_n, pa.int64()),
        "sex": _str_array([gm.sex.value for gm in sexes] + ["unknown"], sex_idx),
        "age": pa.array(age.astype(np.int32), pa.int32(), mask=~age_mask),
        "episode_onset": dates(cur_onset),
        "thase_rush_stage": ints(stage),
        "mgh_score": pa.array(mgh, pa.float64()),
        "maudsley_score": pa.array(score.astype(np.int32), pa.int32(), mask=~msm_ok),
        "maudsley_band": _str_array([b.label for b in ms.bands] or [None],
                                    np.clip(band_idx, 0, None), band_idx >= 0),
        "european_category": _str_array(labels, cat),
        "regulatory_met": pa.array(regulatory_met, pa.bool_()),
        "regulatory_first_met": dates(reg_first, regulatory_met),
        "failed_trials": ints(failed_trials),
        "trials": ints(n_trials),
        "adequate_trials": ints(adequate_trials),
        "duration_only_trials": ints(duration_only_trials),
        "ect_courses": ints(ect_courses),
        "rtms_courses": ints(rtms_courses),
        "severity": _str_array(severity_values or [None], np.clip(severity_code, 0, None),
                               sev_known),
        "bipolar": pa.array(bipolar, pa.bool_()),
        "psychosis": pa.array(psychosis, pa.bool_()),
    }
    # persons are in rank order, which is person_id order: the table needs no sort
    table = pa.Table.from_pydict(columns, schema=OUTPUT_SCHEMA)
    with_mdd = int(_member(mdd_persons, people_sorted).sum())
    lap("table")
    return ScanResult(persons=table, excluded_rows=excluded_rows, n_person=len(people_pid),
                      with_mdd=with_mdd, seconds=clock)


__all__ = ["OUTPUT_SCHEMA", "ScanResult", "stage_scan"]
