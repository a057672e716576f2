"""Where the scan's compiled pass reads its settings and writes its results: the rows of the
two setting arrays and of the two result arrays, the result arrays themselves, and the arguments
of the compiled entry points.

Plain Python and NumPy, apart from the kernel (`scan_kernel.py`, which imports these names): the
scan fills the settings and lays out the results without Numba, and `scan_native.py` checks every
argument against the tables below before calling the compiled code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# rows of the integer result (one column per staged person; their ids come apart, as int64)
N_EPISODES = 0
ONSET = 1
CUR_END = 2
FAILED_TRIALS = 3
CLASSES = 4
FAILED_AGENTS = 5
N_TCA = 6
N_MAOI = 7
N_CLS_TCA = 8
N_CLS_MAOI = 9
FIRST_START = 10
LAST_END = 11
N_TRIALS = 12
ADEQUATE_TRIALS = 13
DURATION_ONLY_TRIALS = 14
AUG_USED = 15
REG_AGENTS = 16
REG_FIRST = 17
ECT_COURSES = 18
FAILED_ECT = 19
RTMS_COURSES = 20
N_INT = 21
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


# The arguments of the compiled entry points (`scan_kernel.ENTRY_POINTS`), in order: an array's
# dtype, or None for a scalar. Person ids int64, agent indexes and day numbers int32, doses and
# readings float64, row numbers and offsets int64.
GROUP_ARGS = (np.int64, np.int32, np.int32, np.int64, np.bool_, np.bool_, np.int64,  # rows
              np.int32, np.int32, np.int64, np.int64, np.int64, np.int64)  # scratch, results
NEEDS_ARGS = (np.int64, np.int64, np.int64, np.int64)
MONTHS_ARGS = (np.int64, None, np.int64, np.int64)
STAGE_ARGS = (np.int64, np.int32, np.int32, np.int32, np.float64,  # drug rows P G S E D
              np.int64, np.int64, np.int64,  # order, offsets
              np.int64, np.int32,  # MDD diagnoses
              np.int64, np.int32, np.float64,  # PHQ-9 readings
              np.int64, np.int32, np.int64, np.int32,  # ECT, rTMS sessions
              np.int64,  # persons
              np.float64, np.int64, np.int64, np.int64, np.int64, np.float64,  # settings
              np.int64, np.int32, np.float64, None,  # results (ids, int, float tables), at
              np.int64, np.bool_)  # scratch


def new_results(m: int) -> tuple[Any, Any, Any]:
    """Room for the results of m persons: (person ids, int results, float results). Zeros,
    written only where persons are staged: pages of the rest are never touched."""
    return np.zeros(m, np.int64), np.zeros((N_INT, m), np.int32), np.zeros((N_FLOAT, m))


def move_results(out: tuple[Any, Any, Any], source: int, target: int, count: int) -> None:
    """Columns source .. source + count - 1 of `out` (`new_results`) moved to target onwards
    (target <= source)."""
    if count and source != target:
        for array in out:
            array[..., target:target + count] = array[..., source:source + count]
