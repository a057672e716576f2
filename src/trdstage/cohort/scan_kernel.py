"""The scan engine's per-person pass, compiled (Numba): every sequential rule in one walk.

The drug rows arrive in any order: `group_drug_rows` finds each person's antidepressant and
augmenter rows, each ordered by agent, start and drug_exposure_id, without moving them (a counting
sort; row numbers and offsets). MDD diagnosis days arrive grouped by person (`scan.py`); PHQ-9
readings and procedure days arrive sorted by person and date. `stage_persons` visits the persons
in person_id order, holding one cursor per sorted stream, and applies the rules of
`engine.build_plan` step for step (each block names its step), writing the per-person counts
from which `scan.py` computes every model's result.

This code allocates nothing and raises nothing: every buffer, scratch included, comes from the
caller, so that the four C entry points at the end (`ENTRY_POINTS`) run without Numba's runtime.
`scan_native.py` compiles them once, keeps their machine code, and calls it in later runs
without starting Numba; it also cuts the persons into ranges staged on parallel threads.

Clinical numbers do not live here: every threshold arrives as an argument read from the policy,
omop.yaml and the knowledge files by `scan.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba.extending import intrinsic

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
)

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(function: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True, boundscheck=False,
                               error_model="numpy")(function))




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
def _lower_bound(values: Any, x: int) -> int:
    """The first place in `values` (sorted) whose value is not below x."""
    lo = 0
    hi = len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_compiled
def _person_rank(P: Any, people: Any, rank: Any, table: Any) -> None:
    """Each row's place in `people` (sorted, distinct) written to `rank`, -1 when the person is
    not there: through `table` (room for people[0] .. people[-1], when the caller gives one:
    the ids dense enough) or else a binary search."""
    n = len(P)
    m = len(people)
    for i in range(n):
        rank[i] = -1
    if m == 0:
        return
    lo = people[0]
    hi = people[m - 1]
    if len(table) > 0:
        for k in range(len(table)):
            table[k] = -1
        for k in range(m):
            table[people[k] - lo] = k
        for i in range(n):
            if lo <= P[i] <= hi:
                rank[i] = table[P[i] - lo]
    else:
        for i in range(n):
            at = _lower_bound(people, P[i])
            if at < m and people[at] == P[i]:
                rank[i] = at


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
            for u in range(k):
                order[a + u] = tmp[u]
        width *= 2


@_compiled
def _counting_sort(bucket: Any, n_buckets: int, order: Any, offsets: Any, fill: Any) -> int:
    """Row numbers grouped by bucket (0 .. n_buckets - 1; rows in bucket -1 left out) written to
    `order`, each bucket's rows in their given order, and the offsets: bucket b is
    order[offsets[b]:offsets[b + 1]] (`fill`: room for n_buckets). Returns the rows kept."""
    for b in range(n_buckets + 1):
        offsets[b] = 0
    for b in bucket:
        if b >= 0:
            offsets[b + 1] += 1
    for b in range(n_buckets):
        offsets[b + 1] += offsets[b]
    for b in range(n_buckets):
        fill[b] = offsets[b]
    for i in range(len(bucket)):
        b = bucket[i]
        if b >= 0:
            order[fill[b]] = i
            fill[b] += 1
    return int(offsets[n_buckets])


@_compiled
def group_drug_rows(P: Any, G: Any, S: Any, ID: Any, is_ad: Any, skip: Any, people: Any,
                    rank: Any, table: Any, order: Any, offsets: Any, fill: Any,
                    tmp: Any) -> int:
    """The drug rows in the order `stage_persons` reads them, without moving them: per person
    (in `people` order) its antidepressant rows, then per person its augmenter rows, each by
    agent, start and drug_exposure_id. Rows marked `skip` (excluded, counted by the caller) and
    rows of persons not in `people` are left out, as the pass would pass over them. A counting
    sort on the person, then a sort within each person: linear in the rows, where a database
    sort on five keys costs twice the read.
    Writes the row numbers in that order to `order` and the offsets to `offsets`: person k's
    antidepressant rows are order[offsets[k]:offsets[k + 1]], its augmenter rows
    order[offsets[m + k]:offsets[m + k + 1]] with m persons. Returns how many rows are kept.
    Scratch from the caller (this code allocates nothing): `rank` (a row each), `table`
    (`_person_rank`), `fill` (2m), `tmp` (a row each)."""
    m = len(people)
    _person_rank(P, people, rank, table)
    for i in range(len(P)):
        if rank[i] < 0 or skip[i]:
            rank[i] = -1
        elif not is_ad[i]:
            rank[i] += m
    kept = _counting_sort(rank, 2 * m, order, offsets, fill)
    for b in range(2 * m):
        lo = offsets[b]
        hi = offsets[b + 1]
        if hi - lo > 16:
            _sort_rows(order, lo, hi, G, S, ID, tmp)
        elif hi - lo > 1:
            _insertion_sort_rows(order, lo, hi, G, S, ID)
    return kept


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
def add_months(days: Any, months: int, out: Any, table: Any) -> None:
    """`date + INTERVAL months MONTH` on day numbers since 1970, written to `out`: the same day
    of the month, clamped to the month's last day (as SQL and dateutil do). Many persons share
    a day: given a `table` with room for every day from the smallest to the largest, each day
    is computed once and looked up."""
    n = len(days)
    if n == 0:
        return
    if len(table) > 0:
        lo = days[0]
        for i in range(1, n):
            lo = min(lo, days[i])
        for k in range(len(table)):
            table[k] = _shift_day(lo + k, months)
        for i in range(n):
            out[i] = table[days[i] - lo]
    else:
        for i in range(n):
            out[i] = _shift_day(days[i], months)


@_compiled
def _longest_runs(ad_off: Any, aug_off: Any, mP: Any) -> tuple[int, int, int]:
    """The most antidepressant rows, augmenter rows and MDD diagnoses of any one person (at
    least 1 each)."""
    longest_t = 1
    longest_a = 1
    for r in range(len(ad_off) - 1):
        longest_t = max(longest_t, ad_off[r + 1] - ad_off[r])
    for r in range(len(aug_off) - 1):
        longest_a = max(longest_a, aug_off[r + 1] - aug_off[r])
    longest_m = 1
    n_m = len(mP)
    i = 0
    while i < n_m:
        j = _run_end(mP, i, n_m, mP[i])
        longest_m = max(longest_m, j - i)
        i = j
    return longest_t, longest_a, longest_m


@_compiled
def scratch_needs(ad_off: Any, aug_off: Any, mP: Any, needs: Any) -> None:
    """The scratch `stage_persons` needs on these rows, written to needs[0] (int64 values) and
    needs[1] (booleans)."""
    lt, la, lm = _longest_runs(ad_off, aug_off, mP)
    needs[0] = 8 * lt + 3 * la + 2 * lm
    needs[1] = 5 * lt


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
    scratch_i: Any, scratch_b: Any,
) -> int:
    """Every candidate person (an antidepressant row or an MDD diagnosis) in person_id order:
    the staged ones (the current episode kept) are written to columns at, at + 1, ... of out_p
    (person ids), out_i [N_INT, .] and out_f [N_FLOAT, .]; returns how many, or -1 when the
    scratch from the caller (this code allocates nothing) is smaller than `scratch_needs`."""
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

    n_people = len(people)

    # scratch sized to the longest per-person run
    lt, la, lm = _longest_runs(ad_off, aug_off, mP)
    if len(scratch_i) < 6 * lt + 3 * la + 2 * (lt + lm) or len(scratch_b) < 5 * lt:
        return -1
    tr_agent = scratch_i[0:lt]
    tr_start = scratch_i[lt:2 * lt]
    tr_end = scratch_i[2 * lt:3 * lt]
    tr_adays = scratch_i[3 * lt:4 * lt]
    picked = scratch_i[4 * lt:5 * lt]
    reg_end = scratch_i[5 * lt:6 * lt]
    ag_agent = scratch_i[6 * lt:6 * lt + la]
    ag_start = scratch_i[6 * lt + la:6 * lt + 2 * la]
    ag_end = scratch_i[6 * lt + 2 * la:6 * lt + 3 * la]
    ev_start = scratch_i[6 * lt + 3 * la:7 * lt + 3 * la + lm]
    ev_end = scratch_i[7 * lt + 3 * la + lm:8 * lt + 3 * la + 2 * lm]
    tr_raised = scratch_b[0:lt]
    tr_dmiss = scratch_b[lt:2 * lt]
    tr_adequate = scratch_b[2 * lt:3 * lt]
    tr_failed = scratch_b[3 * lt:4 * lt]
    tr_concurrent = scratch_b[4 * lt:5 * lt]

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


# --------------------------------------------------------------------------- entry points
# C functions over the kernels above, compiled once and cached as object code by `scan_native`,
# which loads and calls them without Numba. Each takes two int64 arrays, one entry per argument:
# the address of an array's data and its length (for the two results tables: their columns), or
# 0 and a scalar's value. The dtypes and order are `scan_layout`'s *_ARGS tables; `scan_native`
# checks every array against them before a call.

_nb: Any = numba  # (its stubs do not type these: cfunc's options, carray, types)
_ABI = _nb.types.int64(_nb.types.CPointer(_nb.types.int64), _nb.types.CPointer(_nb.types.int64))


def _entry(function: Callable[[Any, Any], int]) -> Any:
    return _nb.cfunc(_ABI, nogil=True, error_model="numpy", boundscheck=False)(function)


def _typed_pointer(typingctx: Any, address: Any, dtype: Any) -> Any:
    """An address as a typed pointer (for numba.carray)."""
    signature = _nb.types.CPointer(dtype.instance_type)(address, dtype)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


_pointer: Any = intrinsic(_typed_pointer)


@numba.njit(inline="always")
def _v(address: Any, size: Any, k: int, dtype: Any) -> Any:
    return _nb.carray(_pointer(address[k], dtype), (size[k],))


@numba.njit(inline="always")
def _table(address: Any, size: Any, k: int, rows: int, dtype: Any) -> Any:
    return _nb.carray(_pointer(address[k], dtype), (rows, size[k]))


@_entry
def group_entry(a: Any, n: Any) -> int:
    """`group_drug_rows` (GROUP_ARGS)."""
    return group_drug_rows(
        _v(a, n, 0, np.int64), _v(a, n, 1, np.int32), _v(a, n, 2, np.int32),
        _v(a, n, 3, np.int64), _v(a, n, 4, np.bool_), _v(a, n, 5, np.bool_),
        _v(a, n, 6, np.int64), _v(a, n, 7, np.int32), _v(a, n, 8, np.int32),
        _v(a, n, 9, np.int64), _v(a, n, 10, np.int64), _v(a, n, 11, np.int64),
        _v(a, n, 12, np.int64))


@_entry
def needs_entry(a: Any, n: Any) -> int:
    """`scratch_needs` (NEEDS_ARGS)."""
    scratch_needs(_v(a, n, 0, np.int64), _v(a, n, 1, np.int64), _v(a, n, 2, np.int64),
                  _v(a, n, 3, np.int64))
    return 0


@_entry
def months_entry(a: Any, n: Any) -> int:
    """`add_months` (MONTHS_ARGS; the months: a scalar)."""
    add_months(_v(a, n, 0, np.int64), n[1], _v(a, n, 2, np.int64), _v(a, n, 3, np.int64))
    return 0


@_entry
def stage_entry(a: Any, n: Any) -> int:
    """`stage_persons` (STAGE_ARGS; `at`: a scalar)."""
    return stage_persons(
        _v(a, n, 0, np.int64), _v(a, n, 1, np.int32), _v(a, n, 2, np.int32),
        _v(a, n, 3, np.int32), _v(a, n, 4, np.float64), _v(a, n, 5, np.int64),
        _v(a, n, 6, np.int64), _v(a, n, 7, np.int64),
        _v(a, n, 8, np.int64), _v(a, n, 9, np.int32),
        _v(a, n, 10, np.int64), _v(a, n, 11, np.int32), _v(a, n, 12, np.float64),
        _v(a, n, 13, np.int64), _v(a, n, 14, np.int32),
        _v(a, n, 15, np.int64), _v(a, n, 16, np.int32),
        _v(a, n, 17, np.int64),
        _v(a, n, 18, np.float64), _v(a, n, 19, np.int64), _v(a, n, 20, np.int64),
        _v(a, n, 21, np.int64), _v(a, n, 22, np.int64), _v(a, n, 23, np.float64),
        _v(a, n, 24, np.int64), _table(a, n, 25, N_INT, np.int32),
        _table(a, n, 26, N_FLOAT, np.float64), n[27],
        _v(a, n, 28, np.int64), _v(a, n, 29, np.bool_))


# name -> compiled entry point (scan_native.ENTRIES)
ENTRY_POINTS: dict[str, Any] = {"group": group_entry, "needs": needs_entry, "months": months_entry,
                "stage": stage_entry}
