"""The scan engine's per-person pass, compiled (Numba): every sequential rule in one walk.

The rows arrive sorted by person (antidepressant and augmenter rows each by person, agent, start,
drug_exposure_id; MDD diagnosis days, PHQ-9 readings and procedure days by person and date). One
loop visits the persons in person_id order, holding one cursor per stream, and applies the rules
of `engine.build_plan` step for step (each block names its step); `stage_persons` returns the
per-person counts from which `scan.py` computes every model's result. The compiled code is
cached next to this file (or in NUMBA_CACHE_DIR) after the first run.

Clinical numbers do not live here: every threshold arrives as an argument read from the policy,
omop.yaml and the knowledge files by `scan.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(function: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True, boundscheck=False)(function))


# rows of the integer result (one column per candidate person)
PERSON = 0
N_EPISODES = 1
ONSET = 2
CUR_END = 3
FAILED_TRIALS = 4
CLASSES = 5
FAILED_AGENTS = 6
N_TCA = 7
N_MAOI = 8
N_CLS_TCA = 9
N_CLS_MAOI = 10
FIRST_START = 11
LAST_END = 12
N_TRIALS = 13
ADEQUATE_TRIALS = 14
DURATION_ONLY_TRIALS = 15
AUG_USED = 16
REG_AGENTS = 17
REG_FIRST = 18
ECT_COURSES = 19
FAILED_ECT = 20
RTMS_COURSES = 21
N_INT = 22
# rows of the float result
MGH_TRIALS = 0
SEVERITY_VALUE = 1
N_FLOAT = 2

# integer settings (`settings_int`)
SAME_GAP = 0
WASHOUT = 1
MDD_OPENS = 2
REQUIRE_MDD = 3
AS_OF = 4
AUG_GAP = 5
DURATION_ONLY = 6
MIN_DAYS = 7
SWITCH_DAYS = 8  # -1: no switch convention
CONCURRENT_DAYS = 9
BASELINE_WINDOW = 10
CURRENT_EPISODE = 11
ECT_GAP = 12
ECT_MIN_SESSIONS = 13
RTMS_GAP = 14
SEVERITY_WINDOW = 15  # -1: no severity from PHQ-9
MGH_LONG_DAYS = 16
TCA_MECH = 17
MAOI_MECH = 18
TCA_CLASS = 19
MAOI_CLASS = 20
REG_NEEDED = 21
UNKNOWN_FAILS = 22
N_SETTINGS_INT = 23
# float settings (`settings_float`)
RESPONSE_PCT = 0
PARTIAL_PCT = 1
PTS_FAILED = 2
PTS_DOSE = 3
PTS_DURATION = 4
PTS_AUGMENT = 5
N_SETTINGS_FLOAT = 6


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
def stage_persons(
    tP: Any, tG: Any, tS: Any, tE: Any, tD: Any, tBad: Any,
    aP: Any, aG: Any, aS: Any, aE: Any, aBad: Any,
    mP: Any, mD: Any,
    rP: Any, rD: Any, rV: Any,
    eP: Any, eD: Any,
    qP: Any, qD: Any,
    people: Any,
    min_mg: Any, mech_idx: Any, cls_idx: Any, failure_code: Any,
    settings_int: Any, settings_float: Any,
) -> tuple[Any, Any]:
    """Every candidate person (an antidepressant row or an MDD diagnosis) in person_id order:
    (int results [N_INT, n], float results [N_FLOAT, n]) for the staged ones (the current
    episode kept), trimmed to n."""
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

    n_t, n_a, n_m = len(tP), len(aP), len(mP)
    n_people = len(people)

    # scratch sized to the longest per-person run
    longest_t = 1
    i = 0
    while i < n_t:
        j = _run_end(tP, i, n_t, tP[i])
        longest_t = max(longest_t, j - i)
        i = j
    longest_a = 1
    i = 0
    while i < n_a:
        j = _run_end(aP, i, n_a, aP[i])
        longest_a = max(longest_a, j - i)
        i = j
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

    n_cand = min(n_m + n_t, n_people)  # an upper bound on the staged persons
    out_i = np.zeros((N_INT, n_cand), np.int64)
    out_f = np.zeros((N_FLOAT, n_cand), np.float64)
    n_out = 0
    it = 0
    ia = 0
    im = 0
    ir = 0
    ie = 0
    iq = 0
    ip = 0
    while it < n_t or im < n_m:
        person = tP[it] if it < n_t and (im >= n_m or tP[it] <= mP[im]) else mP[im]
        t0, it = _span(tP, it, person)
        m0, im = _span(mP, im, person)
        a0, ia = _span(aP, ia, person)
        r0, ir = _span(rP, ir, person)
        e0, ie = _span(eP, ie, person)
        q0, iq = _span(qP, iq, person)
        t1, m1, a1, r1, e1, q1 = it, im, ia, ir, ie, iq
        ip = _skip_to(people, ip, n_people, person)
        in_people = ip < n_people and people[ip] == person
        if not in_people or (require_mdd and m1 == m0):
            continue

        # ---- step 3: trials (islands per agent), days at an adequate dose, dose raised
        nt = 0
        run_max = 0
        q_open = False
        q_min = 0
        q_max = 0
        prev_dose = np.nan
        prev_g = -1
        for i in range(t0, t1):
            if tBad[i]:  # excluded rows (counted by the caller)
                continue
            g = tG[i]
            if g != prev_g or tS[i] - run_max > same_gap:
                prev_g = g
                if nt > 0 and q_open:
                    tr_adays[nt - 1] += q_max - q_min
                nt += 1
                tr_agent[nt - 1] = g
                tr_start[nt - 1] = tS[i]
                tr_end[nt - 1] = tE[i]
                tr_adays[nt - 1] = 0
                tr_raised[nt - 1] = False
                tr_dmiss[nt - 1] = False
                run_max = tE[i]
                q_open = False
                prev_dose = np.nan
            else:
                run_max = max(run_max, tE[i])
                tr_end[nt - 1] = run_max
            dose = tD[i]
            low = min_mg[g]
            missing = np.isnan(dose)
            if missing:
                tr_dmiss[nt - 1] = True
            if duration_only:
                qualifies = np.isnan(low) or missing or dose >= low
            else:
                qualifies = (not np.isnan(low)) and (not missing) and dose >= low
            if qualifies:
                if not q_open or tS[i] > q_max:
                    if q_open:
                        tr_adays[nt - 1] += q_max - q_min
                    q_open = True
                    q_min = tS[i]
                    q_max = tE[i]
                else:
                    q_min = min(q_min, tS[i])
                    q_max = max(q_max, tE[i])
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
            if aBad[i]:
                continue
            if aG[i] != prev_g or aS[i] - run_max > aug_gap:
                prev_g = aG[i]
                na += 1
                ag_agent[na - 1] = aG[i]
                ag_start[na - 1] = aS[i]
                ag_end[na - 1] = aE[i]
                run_max = aE[i]
            else:
                run_max = max(run_max, aE[i])
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
                if tBad[i]:
                    continue
                if tG[i] != prev_g or tS[i] - run_max > washout:
                    prev_g = tG[i]
                    ev_start[ne] = tS[i]
                    ev_end[ne] = tE[i]
                    run_max = tE[i]
                    ne += 1
                else:
                    run_max = max(run_max, tE[i])
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
            c_end = eD[k]
            sessions = 0
            while k < e1 and (sessions == 0 or eD[k] - c_end <= ect_gap):
                c_end = max(c_end, eD[k])
                sessions += 1
                k += 1
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
            c_end = qD[k]
            sessions = 0
            while k < q1 and (sessions == 0 or qD[k] - c_end <= rtms_gap):
                c_end = max(c_end, qD[k])
                sessions += 1
                k += 1
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

        o = n_out
        out_i[PERSON, o] = person
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
    return out_i[:, :n_out], out_f[:, :n_out]


# the dtype of each argument of `stage_persons`, in order: person ids int64, agent indexes and
# day numbers int32, doses and readings float64, exclusion marks bool
_ARG_TYPES = (np.int64, np.int32, np.int32, np.int32, np.float64, np.bool_,
              np.int64, np.int32, np.int32, np.int32, np.bool_,
              np.int64, np.int32, np.int64, np.int32, np.float64,
              np.int64, np.int32, np.int64, np.int32, np.int64,
              np.float64, np.int64, np.int64, np.int64, np.int64, np.float64)


def run(*arrays: Any) -> tuple[Any, Any]:
    """`stage_persons` on C-contiguous, read-only views of the stated dtypes (copies only where a
    dtype differs): one compiled signature serves every call, whether a buffer comes from Arrow
    (read-only) or from NumPy."""
    ready = []
    for array, dtype in zip(arrays, _ARG_TYPES, strict=True):
        view = np.require(array, dtype, ("C", "A")).view()
        view.flags.writeable = False
        ready.append(view)
    return stage_persons(*ready)


def warm_up() -> None:
    """Load (or, the first time, compile) the kernel: a call on empty rows."""
    settings = np.zeros(N_SETTINGS_INT, np.int64)
    settings[REG_NEEDED] = 1
    arrays = [np.zeros(0, dtype) for dtype in _ARG_TYPES]
    arrays[-2] = settings
    arrays[-1] = np.zeros(N_SETTINGS_FLOAT)
    run(*arrays)
