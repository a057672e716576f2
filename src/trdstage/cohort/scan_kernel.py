"""The scan engine's per-person pass, compiled (Numba): every sequential rule in one walk.

The drug rows arrive in any order: `group_drug_rows` finds each person's antidepressant and
augmenter rows, each ordered by agent, start and drug_exposure_id, without moving them (a counting
sort; row numbers and offsets). MDD diagnosis days arrive grouped by person (`scan.py`); PHQ-9
readings and procedure days arrive sorted by person and date. `stage_persons` visits the persons
in person_id order, holding one cursor per sorted stream, and applies the rules of
`engine.build_plan` step for step (each block names its step), writing the per-person counts
from which `scan.py` computes every model's result; `run` cuts the persons into ranges staged on
parallel threads. The compiled code is cached next to this file (or in NUMBA_CACHE_DIR) after the
first run.

Clinical numbers do not live here: every threshold arrives as an argument read from the policy,
omop.yaml and the knowledge files by `scan.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba
import numpy as np

from trdstage.cohort.scan_layout import (
    ADEQUATE_TRIALS,
    AS_OF,
    AUG_GAP,
    AUG_USED,
    BASELINE_WINDOW,
    CLASSES,
    CONCURRENT_DAYS,
    CUR_END,
    CURRENT_EPISODE,
    DURATION_ONLY,
    DURATION_ONLY_TRIALS,
    ECT_COURSES,
    ECT_GAP,
    ECT_MIN_SESSIONS,
    FAILED_AGENTS,
    FAILED_ECT,
    FAILED_TRIALS,
    FIRST_START,
    LAST_END,
    MAOI_CLASS,
    MAOI_MECH,
    MDD_OPENS,
    MGH_LONG_DAYS,
    MGH_TRIALS,
    MIN_DAYS,
    N_CLS_MAOI,
    N_CLS_TCA,
    N_EPISODES,
    N_FLOAT,
    N_INT,
    N_MAOI,
    N_SETTINGS_FLOAT,
    N_SETTINGS_INT,
    N_TCA,
    N_TRIALS,
    ONSET,
    PARTIAL_PCT,
    PTS_AUGMENT,
    PTS_DOSE,
    PTS_DURATION,
    PTS_FAILED,
    REG_AGENTS,
    REG_FIRST,
    REG_NEEDED,
    REQUIRE_MDD,
    RESPONSE_PCT,
    RTMS_COURSES,
    RTMS_GAP,
    SAME_GAP,
    SEVERITY_VALUE,
    SEVERITY_WINDOW,
    SWITCH_DAYS,
    TCA_CLASS,
    TCA_MECH,
    UNKNOWN_FAILS,
    WASHOUT,
    move_results,
    new_results,
)

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(function: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True, boundscheck=False)(function))




@_compiled
def _rated(r_day: Any, r_val: Any, r0: int, r1: int, start: int, end: int,
           baseline_window: int, response_pct: float, partial_pct: float) -> int:
    """Step 4: 2 response, 1 partial response, 0 non-response, -1 no outcome. Baseline: the last
    reading on or before the start and within the window; endpoint: the last reading after the
    start and on or before the end (readings sorted by day, then id)."""
    hi_b = -1
    lo_b = -1
    hi_e = -1
    for j in range(r0, r1):
        d = r_day[j]
        if d <= start:
            hi_b = j
            if lo_b < 0 and d >= start - baseline_window:
                lo_b = j
        elif d <= end:
            hi_e = j
        else:
            break
    if hi_b < 0 or lo_b < 0 or hi_b < lo_b or hi_e < 0:
        return -1
    b = r_val[hi_b]
    if not b > 0:
        return -1
    reduction = (b - r_val[hi_e]) / b * 100
    if reduction >= response_pct:
        return 2
    if reduction >= partial_pct:
        return 1
    return 0


@_compiled
def _sort_by_start(starts: Any, ends: Any, n: int) -> None:
    """Insertion sort of the first n (start, end) pairs by start (per-person lists are short)."""
    for i in range(1, n):
        s = starts[i]
        e = ends[i]
        j = i - 1
        while j >= 0 and starts[j] > s:
            starts[j + 1] = starts[j]
            ends[j + 1] = ends[j]
            j -= 1
        starts[j + 1] = s
        ends[j + 1] = e


@_compiled
def _sort_small(values: Any, n: int) -> None:
    for i in range(1, n):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


@_compiled
def _run_end(ids: Any, i: int, n: int, person: int) -> int:
    """The end of the run of `person` starting at i (ids sorted)."""
    while i < n and ids[i] == person:
        i += 1
    return i


@_compiled
def _span(ids: Any, i: int, person: int) -> tuple[int, int]:
    """The run of `person` in the sorted ids, searched from i: (first, past the last)."""
    n = len(ids)
    i = _skip_to(ids, i, n, person)
    return i, _run_end(ids, i, n, person)


@_compiled
def _skip_to(ids: Any, i: int, n: int, person: int) -> int:
    while i < n and ids[i] < person:
        i += 1
    return i


@_compiled
def _course(days: Any, k: int, end: int, gap: int) -> tuple[int, int, int]:
    """Step 5: the course starting at days[k] (days sorted), sessions no more than `gap` days
    apart: (the index after it, its last day, its sessions)."""
    c_end = days[k]
    sessions = 0
    while k < end and (sessions == 0 or days[k] - c_end <= gap):
        c_end = max(c_end, days[k])
        sessions += 1
        k += 1
    return k, c_end, sessions


@_compiled
def _person_rank(P: Any, people: Any) -> Any:
    """Each row's place in `people` (sorted, distinct), -1 when the person is not there: a
    lookup table when the ids are dense enough, a binary search otherwise."""
    n = len(P)
    m = len(people)
    rank = np.full(n, -1, np.int32)
    if m == 0:
        return rank
    lo = people[0]
    hi = people[m - 1]
    if float(hi) - float(lo) <= 4.0 * m + 1024.0:
        table = np.full(hi - lo + 1, -1, np.int32)
        for k in range(m):
            table[people[k] - lo] = k
        for i in range(n):
            if lo <= P[i] <= hi:
                rank[i] = table[P[i] - lo]
    else:
        at = np.searchsorted(people, P)
        for i in range(n):
            if at[i] < m and people[at[i]] == P[i]:
                rank[i] = at[i]
    return rank


@_compiled
def _row_less(a: int, b: int, G: Any, S: Any, ID: Any) -> bool:
    if G[a] != G[b]:
        return bool(G[a] < G[b])
    if S[a] != S[b]:
        return bool(S[a] < S[b])
    return bool(ID[a] < ID[b])


@_compiled
def _insertion_sort_rows(order: Any, lo: int, hi: int, G: Any, S: Any, ID: Any) -> None:
    for i in range(lo + 1, hi):
        v = order[i]
        j = i - 1
        while j >= lo and _row_less(v, order[j], G, S, ID):
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = v


@_compiled
def _sort_rows(order: Any, lo: int, hi: int, G: Any, S: Any, ID: Any, tmp: Any) -> None:
    """order[lo:hi] by (agent, start, drug_exposure_id), stable: insertion sort on runs of 16
    (a person's rows often arrive in order already), then merges."""
    run = 16
    for a in range(lo, hi, run):
        _insertion_sort_rows(order, a, min(a + run, hi), G, S, ID)
    width = run
    while width < hi - lo:
        for a in range(lo, hi, 2 * width):
            mid = min(a + width, hi)
            end = min(a + 2 * width, hi)
            if mid >= end:
                continue
            i = a
            j = mid
            k = 0
            while i < mid and j < end:
                if _row_less(order[j], order[i], G, S, ID):
                    tmp[k] = order[j]
                    j += 1
                else:
                    tmp[k] = order[i]
                    i += 1
                k += 1
            while i < mid:
                tmp[k] = order[i]
                i += 1
                k += 1
            while j < end:
                tmp[k] = order[j]
                j += 1
                k += 1
            order[a:end] = tmp[:k]
        width *= 2


@_compiled
def _counting_sort(bucket: Any, n_buckets: int) -> tuple[Any, Any]:
    """Row numbers grouped by bucket (0 .. n_buckets - 1; rows in bucket -1 left out), each
    bucket's rows in their given order, and the offsets: bucket b is order[offsets[b]:
    offsets[b + 1]]."""
    offsets = np.zeros(n_buckets + 1, np.int64)
    for b in bucket:
        if b >= 0:
            offsets[b + 1] += 1
    for b in range(n_buckets):
        offsets[b + 1] += offsets[b]
    fill = offsets[:-1].copy()
    order = np.empty(offsets[n_buckets], np.int64)
    for i in range(len(bucket)):
        b = bucket[i]
        if b >= 0:
            order[fill[b]] = i
            fill[b] += 1
    return order, offsets


@_compiled
def group_drug_rows(P: Any, G: Any, S: Any, ID: Any, is_ad: Any, skip: Any,
                    people: Any) -> tuple[Any, Any]:
    """The drug rows in the order `stage_persons` reads them, without moving them: per person
    (in `people` order) its antidepressant rows, then per person its augmenter rows, each by
    agent, start and drug_exposure_id. Rows marked `skip` (excluded, counted by the caller) and
    rows of persons not in `people` are left out, as the pass would pass over them. A counting
    sort on the person, then a sort within each person: linear in the rows, where a database
    sort on five keys costs twice the read.
    Returns (row numbers in that order, offsets: person k's antidepressant rows are
    order[offsets[k]:offsets[k + 1]], its augmenter rows order[offsets[m + k]:offsets[m + k + 1]]
    with m persons)."""
    m = len(people)
    bucket = _person_rank(P, people)
    for i in range(len(P)):
        if bucket[i] < 0 or skip[i]:
            bucket[i] = -1
        elif not is_ad[i]:
            bucket[i] += m
    order, offsets = _counting_sort(bucket, 2 * m)
    longest = 0
    for b in range(2 * m):
        longest = max(longest, offsets[b + 1] - offsets[b])
    tmp = np.empty(longest, np.int64)
    for b in range(2 * m):
        lo = offsets[b]
        hi = offsets[b + 1]
        if hi - lo > 16:
            _sort_rows(order, lo, hi, G, S, ID, tmp)
        elif hi - lo > 1:
            _insertion_sort_rows(order, lo, hi, G, S, ID)
    return order, offsets


@_compiled
def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400  # (floor division: the algorithm's adjustment for negative years)
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@_compiled
def _shift_day(day: int, months: int) -> int:
    z = day + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y += m <= 2
    total = y * 12 + (m - 1) + months
    y = total // 12
    m = total % 12 + 1
    last = _days_from_civil(y + (m == 12), 1 if m == 12 else m + 1, 1) \
        - _days_from_civil(y, m, 1)
    return _days_from_civil(y, m, min(d, last))


@_compiled
def add_months(days: Any, months: int) -> Any:
    """`date + INTERVAL months MONTH` on day numbers since 1970: the same day of the month,
    clamped to the month's last day (as SQL and dateutil do). Many persons share a day: over a
    span of days shorter than the array, each day is computed once and looked up."""
    n = len(days)
    out = np.empty(n, np.int64)
    if n == 0:
        return out
    lo = days.min()
    hi = days.max()
    if hi - lo < n // 4:
        table = np.empty(hi - lo + 1, np.int64)
        for k in range(hi - lo + 1):
            table[k] = _shift_day(lo + k, months)
        for i in range(n):
            out[i] = table[days[i] - lo]
    else:
        for i in range(n):
            out[i] = _shift_day(days[i], months)
    return out


@_compiled
def stage_persons(
    P: Any, G: Any, S: Any, E: Any, D: Any, order: Any, ad_off: Any, aug_off: Any,
    mP: Any, mD: Any,
    rP: Any, rD: Any, rV: Any,
    eP: Any, eD: Any,
    qP: Any, qD: Any,
    people: Any,
    min_mg: Any, mech_idx: Any, cls_idx: Any, failure_code: Any,
    settings_int: Any, settings_float: Any,
    out_p: Any, out_i: Any, out_f: Any, at: int,
) -> int:
    """Every candidate person (an antidepressant row or an MDD diagnosis) in person_id order:
    the staged ones (the current episode kept) are written to columns at, at + 1, ... of out_p
    (person ids), out_i [N_INT, .] and out_f [N_FLOAT, .]; returns how many."""
    same_gap = settings_int[SAME_GAP]
    washout = settings_int[WASHOUT]
    mdd_opens = settings_int[MDD_OPENS] != 0
    require_mdd = settings_int[REQUIRE_MDD] != 0
    as_of = settings_int[AS_OF]
    aug_gap = settings_int[AUG_GAP]
    duration_only = settings_int[DURATION_ONLY] != 0
    min_days = settings_int[MIN_DAYS]
    switch_days = settings_int[SWITCH_DAYS]
    cmd = settings_int[CONCURRENT_DAYS]
    baseline_window = settings_int[BASELINE_WINDOW]
    current_episode = settings_int[CURRENT_EPISODE] != 0
    ect_gap = settings_int[ECT_GAP]
    ect_min = settings_int[ECT_MIN_SESSIONS]
    rtms_gap = settings_int[RTMS_GAP]
    sev_window = settings_int[SEVERITY_WINDOW]
    mgh_long = settings_int[MGH_LONG_DAYS]
    tca_m = settings_int[TCA_MECH]
    maoi_m = settings_int[MAOI_MECH]
    cls_tca = settings_int[TCA_CLASS]
    cls_maoi = settings_int[MAOI_CLASS]
    needed = settings_int[REG_NEEDED]
    unknown_fails = settings_int[UNKNOWN_FAILS] != 0
    response_pct = settings_float[RESPONSE_PCT]
    partial_pct = settings_float[PARTIAL_PCT]

    n_m = len(mP)
    n_people = len(people)

    # scratch sized to the longest per-person run
    longest_t = 1
    longest_a = 1
    for r in range(n_people):
        longest_t = max(longest_t, ad_off[r + 1] - ad_off[r])
        longest_a = max(longest_a, aug_off[r + 1] - aug_off[r])
    longest_m = 1
    i = 0
    while i < n_m:
        j = _run_end(mP, i, n_m, mP[i])
        longest_m = max(longest_m, j - i)
        i = j
    tr_agent = np.empty(longest_t, np.int64)
    tr_start = np.empty(longest_t, np.int64)
    tr_end = np.empty(longest_t, np.int64)
    tr_adays = np.empty(longest_t, np.int64)
    tr_raised = np.empty(longest_t, np.bool_)
    tr_dmiss = np.empty(longest_t, np.bool_)
    tr_adequate = np.empty(longest_t, np.bool_)
    tr_failed = np.empty(longest_t, np.bool_)
    tr_concurrent = np.empty(longest_t, np.bool_)
    ag_agent = np.empty(longest_a, np.int64)
    ag_start = np.empty(longest_a, np.int64)
    ag_end = np.empty(longest_a, np.int64)
    ev_start = np.empty(longest_t + longest_m, np.int64)
    ev_end = np.empty(longest_t + longest_m, np.int64)
    picked = np.empty(longest_t, np.int64)
    reg_end = np.empty(longest_t, np.int64)

    n_out = 0
    im = 0
    ir = 0
    ie = 0
    iq = 0
    for rank in range(n_people):
        # a candidate: an antidepressant row or an MDD diagnosis
        person = people[rank]
        t0 = ad_off[rank]
        t1 = ad_off[rank + 1]
        m0, im = _span(mP, im, person)
        m1 = im
        if (t1 == t0 and m1 == m0) or (require_mdd and m1 == m0):
            continue
        a0 = aug_off[rank]
        a1 = aug_off[rank + 1]
        r0, ir = _span(rP, ir, person)
        e0, ie = _span(eP, ie, person)
        q0, iq = _span(qP, iq, person)
        r1, e1, q1 = ir, ie, iq

        # ---- step 3: trials (islands per agent), days at an adequate dose, dose raised
        nt = 0
        run_max = 0
        q_open = False
        q_min = 0
        q_max = 0
        prev_dose = np.nan
        prev_g = -1
        for i in range(t0, t1):
            row = order[i]
            g = G[row]
            s = S[row]
            e = E[row]
            if g != prev_g or s - run_max > same_gap:
                prev_g = g
                if nt > 0 and q_open:
                    tr_adays[nt - 1] += q_max - q_min
                nt += 1
                tr_agent[nt - 1] = g
                tr_start[nt - 1] = s
                tr_end[nt - 1] = e
                tr_adays[nt - 1] = 0
                tr_raised[nt - 1] = False
                tr_dmiss[nt - 1] = False
                run_max = e
                q_open = False
                prev_dose = np.nan
            else:
                run_max = max(run_max, e)
                tr_end[nt - 1] = run_max
            dose = D[row]
            low = min_mg[g]
            missing = np.isnan(dose)
            if missing:
                tr_dmiss[nt - 1] = True
            if duration_only:
                qualifies = np.isnan(low) or missing or dose >= low
            else:
                qualifies = (not np.isnan(low)) and (not missing) and dose >= low
            if qualifies:
                if not q_open or s > q_max:
                    if q_open:
                        tr_adays[nt - 1] += q_max - q_min
                    q_open = True
                    q_min = s
                    q_max = e
                else:
                    q_min = min(q_min, s)
                    q_max = max(q_max, e)
            if not missing and not np.isnan(low):
                if dose > prev_dose and dose > low:
                    tr_raised[nt - 1] = True
                prev_dose = dose
        if nt > 0 and q_open:
            tr_adays[nt - 1] += q_max - q_min

        # ---- augmenter regimens (islands per agent)
        na = 0
        run_max = 0
        prev_g = -1
        for i in range(a0, a1):
            row = order[i]
            if G[row] != prev_g or S[row] - run_max > aug_gap:
                prev_g = G[row]
                na += 1
                ag_agent[na - 1] = G[row]
                ag_start[na - 1] = S[row]
                ag_end[na - 1] = E[row]
                run_max = E[row]
            else:
                run_max = max(run_max, E[row])
                ag_end[na - 1] = run_max

        # ---- step 2: episodes over spans of one agent's rows (and MDD diagnoses)
        ne = 0
        if same_gap <= washout:
            for k in range(nt):
                ev_start[ne] = tr_start[k]
                ev_end[ne] = tr_end[k]
                ne += 1
        else:
            run_max = 0
            prev_g = -1
            for i in range(t0, t1):
                row = order[i]
                if G[row] != prev_g or S[row] - run_max > washout:
                    prev_g = G[row]
                    ev_start[ne] = S[row]
                    ev_end[ne] = E[row]
                    run_max = E[row]
                    ne += 1
                else:
                    run_max = max(run_max, E[row])
                    ev_end[ne - 1] = run_max
        if mdd_opens:
            for i in range(m0, m1):
                ev_start[ne] = mD[i]
                ev_end[ne] = mD[i]
                ne += 1
        if ne == 0:
            continue
        _sort_by_start(ev_start, ev_end, ne)
        n_episodes = 0
        onset = 0
        last = 0
        for k in range(ne):
            if k == 0 or ev_start[k] - last > washout:
                n_episodes += 1
                onset = ev_start[k]
                last = ev_end[k]
            else:
                last = max(last, ev_end[k])
        cur_end = last if as_of - last > washout else as_of

        # ---- step 4: outcomes (PHQ-9, else the switch convention), concurrency, failure
        for k in range(nt):
            start = tr_start[k]
            end = tr_end[k]
            adequate = tr_adays[k] >= min_days
            if not duration_only:
                adequate = adequate and not np.isnan(min_mg[tr_agent[k]])
            tr_adequate[k] = adequate
            code = _rated(rD, rV, r0, r1, start, end, baseline_window, response_pct,
                          partial_pct)
            if code < 0 and adequate and switch_days >= 0:
                limit = end + switch_days
                switched = False
                for u in range(nt):
                    if tr_agent[u] != tr_agent[k] and start < tr_start[u] <= limit:
                        switched = True
                        break
                if not switched:
                    for u in range(na):
                        if start < ag_start[u] <= limit:
                            switched = True
                            break
                if switched:
                    code = 0
            fails = failure_code[code] != 0 if code >= 0 else unknown_fails
            tr_failed[k] = adequate and fails
            concurrent = False
            for u in range(nt):
                if tr_agent[u] != tr_agent[k] and \
                        min(end, tr_end[u]) - max(start, tr_start[u]) >= cmd:
                    concurrent = True
                    break
            if not concurrent:
                for u in range(na):
                    if min(end, ag_end[u]) - max(start, ag_start[u]) >= cmd:
                        concurrent = True
                        break
            tr_concurrent[k] = concurrent

        # ---- step 6: per person, over the trials in scope
        failed_trials = 0
        n_tca = 0
        n_maoi = 0
        n_cls_tca = 0
        n_cls_maoi = 0
        mgh = 0.0
        first_start = 0
        last_end = 0
        n_trials = 0
        adequate_trials = 0
        duration_only_trials = 0
        aug_used = 0
        n_reg = 0
        for k in range(nt):
            in_episode = tr_start[k] >= onset
            if current_episode and not in_episode:
                continue
            g = tr_agent[k]
            n_trials += 1
            if tr_adequate[k]:
                adequate_trials += 1
            if duration_only and (np.isnan(min_mg[g]) or tr_dmiss[k]):
                duration_only_trials += 1
            if tr_concurrent[k]:
                aug_used = 1
            if not tr_failed[k]:
                continue
            if in_episode:  # regulatory: each agent's earliest failed end in the episode
                seen = False
                for u in range(n_reg):
                    if picked[u] == g:
                        seen = True
                        reg_end[u] = min(reg_end[u], tr_end[k])
                if not seen:
                    picked[n_reg] = g
                    reg_end[n_reg] = tr_end[k]
                    n_reg += 1
            if failed_trials == 0:
                first_start = tr_start[k]
                last_end = tr_end[k]
            else:
                first_start = min(first_start, tr_start[k])
                last_end = max(last_end, tr_end[k])
            failed_trials += 1
            if mech_idx[g] == tca_m:
                n_tca += 1
            if mech_idx[g] == maoi_m:
                n_maoi += 1
            if cls_idx[g] == cls_tca:
                n_cls_tca += 1
            if cls_idx[g] == cls_maoi:
                n_cls_maoi += 1
            points = settings_float[PTS_FAILED]
            if tr_raised[k]:
                points += settings_float[PTS_DOSE]
            if tr_adays[k] >= mgh_long:
                points += settings_float[PTS_DURATION]
            if tr_concurrent[k]:
                points += settings_float[PTS_AUGMENT]
            mgh += points
        # distinct classes and agents among the failed trials in scope
        classes = 0
        agents = 0
        for k in range(nt):
            if not tr_failed[k] or (current_episode and tr_start[k] < onset):
                continue
            new_class = True
            new_agent = True
            for u in range(k):
                if not tr_failed[u] or (current_episode and tr_start[u] < onset):
                    continue
                if cls_idx[tr_agent[u]] == cls_idx[tr_agent[k]]:
                    new_class = False
                if tr_agent[u] == tr_agent[k]:
                    new_agent = False
            classes += new_class
            agents += new_agent
        reg_first = 0
        if n_reg >= needed:
            _sort_small(reg_end, n_reg)
            reg_first = reg_end[needed - 1]

        # ---- step 5: ECT and rTMS courses
        ect_courses = 0
        failed_ect = 0
        k = e0
        while k < e1:
            c_start = eD[k]
            k, c_end, sessions = _course(eD, k, e1, ect_gap)
            if current_episode and c_start < onset:
                continue
            ect_courses += 1
            code = _rated(rD, rV, r0, r1, c_start, c_end, baseline_window, response_pct,
                          partial_pct)
            if code >= 0 and failure_code[code] != 0 and sessions >= ect_min:
                failed_ect += 1
        rtms_courses = 0
        k = q0
        while k < q1:
            c_start = qD[k]
            k, c_end, _ = _course(qD, k, q1, rtms_gap)
            if current_episode and c_start < onset:
                continue
            rtms_courses += 1

        # ---- severity: the first PHQ-9 reading from the window before the onset
        severity = np.nan
        if sev_window >= 0:
            for j in range(r0, r1):
                if rD[j] >= onset - sev_window:
                    severity = rV[j]
                    break

        o = at + n_out
        out_p[o] = person
        out_i[N_EPISODES, o] = n_episodes
        out_i[ONSET, o] = onset
        out_i[CUR_END, o] = cur_end
        out_i[FAILED_TRIALS, o] = failed_trials
        out_i[CLASSES, o] = classes
        out_i[FAILED_AGENTS, o] = agents
        out_i[N_TCA, o] = n_tca
        out_i[N_MAOI, o] = n_maoi
        out_i[N_CLS_TCA, o] = n_cls_tca
        out_i[N_CLS_MAOI, o] = n_cls_maoi
        out_i[FIRST_START, o] = first_start
        out_i[LAST_END, o] = last_end
        out_i[N_TRIALS, o] = n_trials
        out_i[ADEQUATE_TRIALS, o] = adequate_trials
        out_i[DURATION_ONLY_TRIALS, o] = duration_only_trials
        out_i[AUG_USED, o] = aug_used
        out_i[REG_AGENTS, o] = n_reg
        out_i[REG_FIRST, o] = reg_first
        out_i[ECT_COURSES, o] = ect_courses
        out_i[FAILED_ECT, o] = failed_ect
        out_i[RTMS_COURSES, o] = rtms_courses
        out_f[MGH_TRIALS, o] = mgh
        out_f[SEVERITY_VALUE, o] = severity
        n_out += 1
    return n_out


# the dtype of each argument of `stage_persons`, in order: person ids int64, agent indexes and
# day numbers int32, doses and readings float64, row numbers and offsets int64
_ARG_TYPES = (np.int64, np.int32, np.int32, np.int32, np.float64, np.int64, np.int64, np.int64,
              np.int64, np.int32, np.int64, np.int32, np.float64,
              np.int64, np.int32, np.int64, np.int32, np.int64,
              np.float64, np.int64, np.int64, np.int64, np.int64, np.float64)
# ... and of `group_drug_rows`: person ids, agent, start, drug_exposure_id, marks, person table
_GROUP_ARG_TYPES = (np.int64, np.int32, np.int32, np.int64, np.bool_, np.bool_, np.int64)
# the sorted streams among `stage_persons`' arguments (their person-id column first), the person
# ids, and the two offset arrays
_STREAMS = ((8, 10), (10, 13), (13, 15), (15, 17))
_PEOPLE = 17
_AD_OFF = 6
_AUG_OFF = 7
# below this many persons a second thread costs more than it saves
MIN_PERSONS_PER_THREAD = 50_000


def _ready(arrays: tuple[Any, ...], types: tuple[Any, ...]) -> list[Any]:
    """C-contiguous, read-only views of the stated dtypes (copies only where a dtype differs):
    one compiled signature serves every call, whether a buffer comes from Arrow (read-only) or
    from NumPy."""
    ready = []
    for array, dtype in zip(arrays, types, strict=True):
        view = np.require(array, dtype, ("C", "A")).view()
        view.flags.writeable = False
        ready.append(view)
    return ready


def shift_months(days: Any, months: int) -> Any:
    """`add_months` on any integer day numbers."""
    if not months:
        return np.asarray(days, np.int64)
    return add_months(_ready((days,), (np.int64,))[0], int(months))


def group_drugs(*arrays: Any) -> tuple[Any, Any]:
    """`group_drug_rows` on the arrays, in the dtypes it is compiled for."""
    return group_drug_rows(*_ready(arrays, _GROUP_ARG_TYPES))


def run(*arrays: Any, threads: int = 1) -> tuple[Any, Any, Any]:
    """`stage_persons` on the arrays, in the dtypes it is compiled for, with the offsets of
    `group_drug_rows` (one array of 2m + 1) in place of its two offset arguments: (person ids,
    int results [N_INT, n], float results [N_FLOAT, n]) of the n staged persons (`run_into`)."""
    out = new_results(len(arrays[_PEOPLE - 1]))
    n = run_into(out, 0, *arrays, threads=threads)
    return out[0][:n], out[1][:, :n], out[2][:, :n]


def run_into(out: tuple[Any, Any, Any], at: int, *arrays: Any, threads: int = 1) -> int:
    """`run`, writing the n staged persons of the m in the arrays' person table to columns
    at .. at + n - 1 of `out` (`new_results`, room for m from `at`); returns n. The sorted
    streams may hold rows of other persons (each range reads only its persons' rows). With
    threads > 1 the persons are cut into that many ranges, each staged on its own thread (the
    compiled pass releases the GIL; persons are independent) into its own columns, then moved
    together."""
    out_p, out_i, out_f = out
    offsets = arrays[_AD_OFF]
    m = len(arrays[_PEOPLE - 1])  # (one offsets array: people one place earlier)
    arrays = (*arrays[:_AD_OFF], offsets[:m + 1], offsets[m:], *arrays[_AD_OFF + 1:])
    ready = _ready(arrays, _ARG_TYPES)
    parts = max(1, min(threads, m // MIN_PERSONS_PER_THREAD))
    bounds = [m * k // parts for k in range(parts + 1)]
    calls = []
    for k in range(parts):
        lo, hi = bounds[k], bounds[k + 1]
        part = list(ready)
        part[_PEOPLE] = ready[_PEOPLE][lo:hi]
        part[_AD_OFF] = ready[_AD_OFF][lo:hi + 1]
        part[_AUG_OFF] = ready[_AUG_OFF][lo:hi + 1]
        for first, past in _STREAMS:  # each stream's rows of this range's persons
            ids = ready[first]
            a = b = 0
            if hi > lo:
                a = int(np.searchsorted(ids, ready[_PEOPLE][lo], "left"))
                b = int(np.searchsorted(ids, ready[_PEOPLE][hi - 1], "right"))
            for column in range(first, past):
                part[column] = ready[column][a:b]
        calls.append((*part, out_p, out_i, out_f, at + lo))
    if parts == 1:
        counts = [stage_persons(*calls[0])]
    else:
        with ThreadPoolExecutor(max_workers=parts) as pool:
            counts = list(pool.map(lambda call: stage_persons(*call), calls))
    n = counts[0]
    for k in range(1, parts):  # each range's staged persons, moved up behind the previous
        move_results(out, at + bounds[k], at + n, counts[k])
        n += counts[k]
    return int(n)


def warm_up() -> None:
    """Load (or, the first time, compile) the kernels: a call on empty rows."""
    settings = np.zeros(N_SETTINGS_INT, np.int64)
    settings[REG_NEEDED] = 1
    arrays = [np.zeros(0, dtype) for dtype in _ARG_TYPES]
    arrays[-2] = settings
    arrays[-1] = np.zeros(N_SETTINGS_FLOAT)
    arrays[_AD_OFF] = arrays[_AUG_OFF] = np.zeros(1, np.int64)
    outputs = [np.zeros(0, np.int64), np.zeros((N_INT, 0), np.int32), np.zeros((N_FLOAT, 0)), 0]
    stage_persons(*_ready(tuple(arrays), _ARG_TYPES), *outputs)
    group_drugs(*[np.zeros(0, dtype) for dtype in _GROUP_ARG_TYPES])
    shift_months(np.zeros(0, np.int64), 1)
