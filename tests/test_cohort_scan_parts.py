"""The scan engine's parts, one by one, on synthetic data.

- `arrow_arrays`: `numpy_of` reads Arrow columns (several chunks, sliced chunks, empty ones;
  int64, int32, float64, bool, date32 and cast types) as pyarrow's own `to_pylist` sees them,
  nulls filled or refused; `arrow_of` and `strings_of` build the arrays `pa.array` builds; the
  two directions round-trip; and none of it imports pandas.
- `scan_native.shift_months`: the same day of the month, clamped to the month's last day, as
  `datetime` and `calendar` compute it.
- `scan_native.group_drugs`: per person, its antidepressant rows and then its other rows, each
  sorted by (agent, start, drug_exposure_id), as a plain Python sort gives them (dense and sparse
  person ids, persons with many rows).
- `scan.stage_scan`: the same person table with one thread as with two or three.
- `scan._member_sorted`: membership of sorted values in a sorted pool, as `in` says.
- batches: the ranges of person ids cover every id, each holding persons of the person table;
  staging the drug rows in 1, 3 or 7 batches gives the same table and the same exclusions as
  the in-database expression engine, on a database with rows of no person, of persons missing
  from the person table (below, inside and above its ids) and rows left out.
- the run: each range's part of the table is written to Parquet as soon as it is computed, the
  file equals the table returned, a failed write leaves the previous file and no temporary one;
  NumPy's huge-page setting stays as the caller set it.
"""

from __future__ import annotations

import calendar
import itertools
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from trdstage.adapters.errors import InputError
from trdstage.cohort import scan_native
from trdstage.cohort.arrow_arrays import arrow_of, numpy_of, strings_of
from trdstage.cohort.duckdb_native import (
    open_duckdb,
    read_scan_inputs_duckdb,
    resolve_concepts_duckdb,
)
from trdstage.cohort.omop_io import write_duckdb
from trdstage.cohort.rules import BAD_END, BAD_SUPPLY
from trdstage.cohort.run import stage_cohort
from trdstage.cohort.scan import ScanResult, _member_sorted, _person_ranges, stage_scan
from trdstage.cohort.synth import DEMO_AS_OF, synth_tables
from trdstage.knowledge import load_policy
from trdstage.knowledge.omop_schema import load_omop_spec

ROOT = Path(__file__).parents[1]
EPOCH = date(1970, 1, 1)
INT64 = np.iinfo(np.int64)

modest = settings(max_examples=60, deadline=None)


def day(d: date) -> int:
    return (d - EPOCH).days


# --------------------------------------------------------------------------- Arrow -> NumPy


def _chunked(values: list[Any], cuts: list[int], arrow_type: Any) -> Any:
    """`values` as a ChunkedArray cut at `cuts`, each chunk a slice (non-zero offset) of a
    longer array."""
    bounds = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    chunks = []
    for lo, hi in itertools.pairwise(bounds):
        padded = pa.array([None, *values[lo:hi], None], arrow_type)
        chunks.append(padded.slice(1, hi - lo))
    return pa.chunked_array(chunks, arrow_type)


def _filled(column: Any, fill: Any) -> list[Any]:
    return [fill if v is None else v for v in column.to_pylist()]


@pytest.mark.parametrize(("arrow_type", "dtype", "values", "fill"), [
    (pa.int64(), np.int64, [5, None, -(2**62), 0, 2**62], -1),
    (pa.int32(), np.int32, [7, None, -(2**31), 2**31 - 1], 0),
    (pa.float64(), np.float64, [1.5, None, -0.0, 1e300], -9.0),
    (pa.bool_(), np.bool_, [True, None, False, True, True, False, None, True, False, True], False),
    (pa.int16(), np.int64, [3, None, -300], -1),
    (pa.int16(), np.float64, [3, None, -300], 0.5),
    (pa.int64(), np.float64, [3, None, -300], 0.5),
    (pa.decimal128(10, 0), np.int64, [12, None, -34], -1),
])
def test_numpy_of_types_chunks_and_slices(arrow_type: Any, dtype: type[np.generic],
                                          values: list[Any], fill: Any) -> None:
    for cuts in ([], [1], [0, 2, 2], [len(values)]):
        column = _chunked(values, cuts, arrow_type)
        got = numpy_of(column, dtype, fill)
        assert got.dtype == np.dtype(dtype)
        assert got.tolist() == _filled(column, fill)
        # one chunk on its own, as an Array
        chunk = column.chunk(0) if column.num_chunks else pa.array([], arrow_type)
        assert numpy_of(chunk, dtype, fill).tolist() == _filled(chunk, fill)


def test_numpy_of_bool_slices_at_every_bit_offset() -> None:
    bits = [i % 3 == 0 or i % 7 == 1 for i in range(40)]
    column = pa.array([None if i % 5 == 4 else b for i, b in enumerate(bits)], pa.bool_())
    for offset in range(17):
        for length in (0, 1, 9, 40 - offset):
            part = column.slice(offset, length)
            assert numpy_of(part, np.bool_, True).tolist() == _filled(part, True)


def test_numpy_of_dates_as_day_numbers() -> None:
    days = [date(1970, 1, 1), None, date(1969, 12, 31), date(2026, 1, 1), date(1, 1, 1),
            date(9999, 12, 31)]
    column = _chunked(days, [2, 3], pa.date32())
    want = [-7 if d is None else day(d) for d in days]
    for dtype in (np.int32, np.int64):
        got = numpy_of(column, dtype, -7)
        assert got.dtype == np.dtype(dtype)
        assert got.tolist() == want
    assert numpy_of(column.chunk(2), np.int32).tolist() == want[3:]


@pytest.mark.parametrize("column", [
    pa.array([], pa.int64()), pa.chunked_array([], pa.int64()),
    pa.chunked_array([pa.array([], pa.int64()), pa.array([], pa.int64())]),
    pa.array([1, 2, 3], pa.int64()).slice(3),
])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float64, np.bool_])
def test_numpy_of_empty(column: Any, dtype: type[np.generic]) -> None:
    got = numpy_of(column, dtype)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == (0,)


def test_numpy_of_refuses_nulls_without_fill() -> None:
    column = _chunked([1, 2, None, 4], [1], pa.int64())
    with pytest.raises(ValueError, match=r"drug_exposure\.start"):
        numpy_of(column, np.int64, what="drug_exposure.start")
    with pytest.raises(ValueError, match="person_id"):
        numpy_of(pa.array([None], pa.date32()), np.int32, what="person_id")
    # a null outside the slice is no null of the column
    assert numpy_of(pa.array([None, 1, 2], pa.int64()).slice(1), np.int64).tolist() == [1, 2]


@given(values=st.lists(st.one_of(st.none(), st.integers(INT64.min, INT64.max)), max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=5))
@modest
def test_int64_round_trip(values: list[int | None], cuts: list[int]) -> None:
    column = _chunked(values, cuts, pa.int64())
    got = numpy_of(column, np.int64, 0)
    assert got.tolist() == _filled(column, 0)
    valid = np.array([v is not None for v in values], bool)
    back = arrow_of(got, pa.int64(), valid)
    back.validate(full=True)
    assert back.equals(pa.array(values, pa.int64()))
    assert back.to_pylist() == values


@given(values=st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=5),
       arrow_type=st.sampled_from([pa.int32(), pa.date32()]))
@modest
def test_int32_and_date_round_trip(values: list[int | None], cuts: list[int],
                                   arrow_type: Any) -> None:
    ints = pa.array(values, pa.int32())
    column = _chunked(values, cuts, pa.int32())
    if pa.types.is_date32(arrow_type):  # day numbers as dates, through Arrow's own cast
        column = pa.chunked_array([c.cast(arrow_type) for c in column.chunks], arrow_type)
    got = numpy_of(column, np.int32, 0)
    assert got.tolist() == [0 if v is None else v for v in values]
    back = arrow_of(got, arrow_type, np.array([v is not None for v in values], bool))
    back.validate(full=True)
    assert back.equals(ints.cast(arrow_type))


@given(values=st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=4))
@modest
def test_float64_round_trip(values: list[float | None], cuts: list[int]) -> None:
    column = _chunked(values, cuts, pa.float64())
    got = numpy_of(column, np.float64, np.nan)
    assert np.array_equal(got, np.array([np.nan if v is None else v for v in values], float),
                          equal_nan=True)
    back = arrow_of(got, pa.float64(), ~np.isnan(got))
    assert back.equals(pa.array(values, pa.float64()))


@given(values=st.lists(st.one_of(st.none(), st.booleans()), max_size=70),
       cuts=st.lists(st.integers(0, 70), max_size=5))
@modest
def test_bool_round_trip(values: list[bool | None], cuts: list[int]) -> None:
    column = _chunked(values, cuts, pa.bool_())
    got = numpy_of(column, np.bool_, False)
    assert got.tolist() == [bool(v) for v in values]
    back = arrow_of(got, pa.bool_(), np.array([v is not None for v in values], bool))
    back.validate(full=True)
    assert back.equals(pa.array(values, pa.bool_()))


@pytest.mark.parametrize(("arrow_type", "values"), [
    (pa.int32(), [1, -2, 2**31 - 1]), (pa.int64(), [1, -2, 2**63 - 1]),
    (pa.float64(), [0.25, -1.0, 3e10]), (pa.bool_(), [True, False, True]),
    (pa.date32(), [0, -1, 20454]),
])
def test_arrow_of_types(arrow_type: Any, values: list[Any]) -> None:
    array = np.array(values)
    plain = arrow_of(array, arrow_type)
    assert plain.type == arrow_type
    assert plain.null_count == 0
    assert plain.equals(pa.array(values, arrow_type))
    holes = arrow_of(array, arrow_type, np.array([True, False, True]))
    assert holes.equals(pa.array([values[0], None, values[2]], arrow_type))
    all_valid = arrow_of(array, arrow_type, np.ones(3, bool))
    assert all_valid.null_count == 0 and all_valid.equals(plain)
    assert arrow_of(array[:0], arrow_type).equals(pa.array([], arrow_type))


def test_arrow_of_dates_are_days_since_1970() -> None:
    got = arrow_of(np.array([0, day(date(2026, 1, 1)), -1]), pa.date32())
    assert got.to_pylist() == [EPOCH, date(2026, 1, 1), date(1969, 12, 31)]


@given(labels=st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=6),
       data=st.data())
@modest
def test_strings_of(labels: list[str | None], data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 30))
    index = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, len(labels) - 1)))
    valid = data.draw(st.one_of(st.none(), hnp.arrays(np.bool_, n)))
    got = strings_of(labels, index, valid)
    got.validate(full=True)
    want = [labels[i] if valid is None or valid[k] else None for k, i in enumerate(index)]
    assert got.type == pa.string()
    assert got.equals(pa.array(want, pa.string()))
    assert got.to_pylist() == want


def test_strings_of_edges() -> None:
    assert strings_of(["", "é"], np.array([1, 0, 1])).to_pylist() == ["é", "", "é"]
    assert strings_of([], np.zeros(0, np.int64)).to_pylist() == []
    assert strings_of([None], np.zeros(2, np.int64)).to_pylist() == [None, None]


def test_no_pandas_import() -> None:
    """Reading and building columns never imports pandas (the point of the module)."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import pyarrow as pa
        from trdstage.cohort.arrow_arrays import arrow_of, numpy_of, strings_of
        valid = np.array([True, False, True, True])
        ints = arrow_of(np.array([4, 0, -2, 9]), pa.int64(), valid)
        days = arrow_of(np.array([0, 1, 2, 3]), pa.date32(), valid)
        column = pa.chunked_array([ints, ints.slice(1)])
        assert numpy_of(column, np.int64, -1).tolist() == [4, -1, -2, 9, -1, -2, 9]
        assert numpy_of(days.slice(2), np.int32).tolist() == [2, 3]
        assert numpy_of(arrow_of(valid, pa.bool_()), np.bool_).tolist() == valid.tolist()
        assert numpy_of(ints, np.float64, 0.5).tolist() == [4, 0.5, -2, 9]
        assert strings_of(["a", None], np.array([0, 1, 0]), valid[:3]).null_count == 1
        print("pandas" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", proc.stdout


# --------------------------------------------------------------------------- months


def _shifted(d: date, months: int) -> date | None:
    """The same day of the month `months` on, clamped to that month's last day (None when
    out of datetime's range)."""
    year, month = divmod(d.year * 12 + d.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        return None
    return date(year, month + 1, min(d.day, calendar.monthrange(year, month + 1)[1]))


@pytest.mark.parametrize(("start", "months", "want"), [
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2023, 1, 31), 1, date(2023, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 3, 31), -1, date(2024, 2, 29)),
    (date(2000, 2, 29), -1200, date(1900, 2, 28)),
    (date(1970, 1, 1), -1, date(1969, 12, 1)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)),
    (date(1, 1, 31), 1, date(1, 2, 28)),
])
def test_shift_months_examples(start: date, months: int, want: date) -> None:
    got = scan_native.shift_months(np.array([day(start)]), months)
    assert got.dtype == np.int64
    assert got.tolist() == [day(want)]


@given(dates=st.lists(st.dates(), max_size=20), months=st.integers(-300, 300),
       dtype=st.sampled_from([np.int32, np.int64]))
@settings(max_examples=100, deadline=None)
def test_shift_months_is_calendar_arithmetic(dates: list[date], months: int,
                                             dtype: type[np.generic]) -> None:
    kept = [(d, w) for d in dates if (w := _shifted(d, months)) is not None]
    days = np.array([day(d) for d, _ in kept], dtype)
    got = scan_native.shift_months(days, months)
    assert got.dtype == np.int64
    assert got.tolist() == [day(w) for _, w in kept]
    assert scan_native.shift_months(days, 0).tolist() == days.tolist()


# --------------------------------------------------------------------------- drug rows by person


@dataclass
class DrugRows:
    P: npt.NDArray[np.int64]
    G: npt.NDArray[np.int32]
    S: npt.NDArray[np.int32]
    ID: npt.NDArray[np.int64]
    is_ad: npt.NDArray[np.bool_]
    skip: npt.NDArray[np.bool_]
    people: npt.NDArray[np.int64]


@st.composite
def drug_rows(draw: st.DrawFn) -> DrugRows:
    """Rows of a few persons (some with dozens or hundreds of rows), shuffled, with few distinct
    agents, starts and ids (ties); `people` holds some of them and some without rows. Person ids
    dense (a lookup table) or sparse (a binary search), negative ones included. Hypothesis picks
    the shape, a seeded generator the many row values."""
    scale = draw(st.sampled_from([1, 10**9]))
    pool = draw(st.lists(st.integers(-30, 30), min_size=1, max_size=8, unique=True))
    counts = [draw(st.one_of(st.integers(0, 6), st.integers(17, 40), st.integers(100, 140)))
              for _ in pool]
    keep = draw(st.lists(st.booleans(), min_size=len(pool), max_size=len(pool)))
    extra = draw(st.lists(st.integers(-40, 40), max_size=4))
    people = sorted({p * scale for p, k in zip(pool, keep, strict=True) if k} |
                    {e * scale for e in extra if e not in pool})
    id_range = draw(st.sampled_from([6, 2**62]))
    skip_share = draw(st.sampled_from([0.0, 0.3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = sum(counts)
    return DrugRows(
        P=rng.permutation(np.repeat(np.array(pool, np.int64) * scale, counts)),
        G=rng.integers(0, 4, n, dtype=np.int32),
        S=rng.integers(-3, 13, n, dtype=np.int32),
        ID=rng.integers(-id_range, id_range, n, dtype=np.int64),
        is_ad=rng.random(n) < 0.6,
        skip=rng.random(n) < skip_share,
        people=np.array(people, np.int64))


@given(rows=drug_rows())
@settings(max_examples=80, deadline=None)
def test_group_drugs_is_a_sort_per_person(rows: DrugRows) -> None:
    order, offsets = scan_native.group_drugs(rows.P, rows.G, rows.S, rows.ID, rows.is_ad,
                                             rows.skip, rows.people)
    m = len(rows.people)
    rank = {int(p): k for k, p in enumerate(rows.people)}
    groups: list[list[int]] = [[] for _ in range(2 * m)]
    for i in range(len(rows.P)):
        k = rank.get(int(rows.P[i]))
        if k is not None and not rows.skip[i]:
            groups[k if rows.is_ad[i] else m + k].append(i)
    for group in groups:  # by agent, start, id; equal keys stay in row order
        group.sort(key=lambda i: (rows.G[i], rows.S[i], rows.ID[i], i))
    assert offsets.tolist() == np.cumsum([0, *map(len, groups)]).tolist()
    assert order.tolist() == [i for group in groups for i in group]
    for k in range(m):
        ads = order[offsets[k]:offsets[k + 1]]
        others = order[offsets[m + k]:offsets[m + k + 1]]
        assert (rows.P[ads] == rows.people[k]).all() and rows.is_ad[ads].all()
        assert (rows.P[others] == rows.people[k]).all() and not rows.is_ad[others].any()


def test_group_drugs_empty() -> None:
    none_i64 = np.zeros(0, np.int64)
    none_i32 = np.zeros(0, np.int32)
    none_b = np.zeros(0, bool)
    order, offsets = scan_native.group_drugs(none_i64, none_i32, none_i32, none_i64, none_b,
                                             none_b, np.array([3, 7], np.int64))
    assert order.tolist() == [] and offsets.tolist() == [0, 0, 0, 0, 0]
    order, offsets = scan_native.group_drugs(np.array([5], np.int64), np.array([0], np.int32),
                                             np.array([0], np.int32), np.array([1], np.int64),
                                             np.array([True]), np.array([False]), none_i64)
    assert order.tolist() == [] and offsets.tolist() == [0]


# --------------------------------------------------------------------------- threads


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_duckdb(tmp_path_factory.mktemp("threads") / "cdm.duckdb",
                        synth_tables(1500, seed=23))


@pytest.mark.parametrize(("as_of", "policy_name"), [
    (DEMO_AS_OF, "claims"), (DEMO_AS_OF - timedelta(days=700), "default"),
])
def test_threads_give_the_same_table(synthetic: Path, as_of: date, policy_name: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    policy, spec = load_policy(policy_name), load_omop_spec()
    with open_duckdb(synthetic, spec) as source:
        concepts = resolve_concepts_duckdb(source, spec)
        inputs = read_scan_inputs_duckdb(source, concepts, as_of, policy, spec.rules)

    def staged(threads: int) -> ScanResult:
        return stage_scan(inputs, concepts, as_of, policy, spec, threads=threads)

    one = staged(1)
    assert one.persons.num_rows > 100
    person_ids = one.persons["person_id"].to_pylist()
    assert person_ids == sorted(set(person_ids))

    # split even this small cohort, and count the ranges staged
    monkeypatch.setattr(scan_native, "MIN_PERSONS_PER_THREAD", 1)
    calls: list[int] = []
    call = scan_native.Kernel.call

    def counted(self: scan_native.Kernel, name: str, args: tuple[Any, ...],
                table: tuple[Any, ...]) -> int:
        if name == "stage" and len(args[scan_native._PEOPLE]):  # ranges that hold persons
            calls.append(1)
        return call(self, name, args, table)

    monkeypatch.setattr(scan_native.Kernel, "call", counted)
    for threads in (2, 3):
        calls.clear()
        many = staged(threads)
        assert len(calls) == threads
        assert many.persons.schema.equals(one.persons.schema)
        assert many.persons.equals(one.persons), f"{threads} threads"
        assert many.excluded_rows == one.excluded_rows
        assert (many.n_person, many.with_mdd) == (one.n_person, one.with_mdd)


@modest
@given(values=st.lists(st.integers(-50, 50), unique=True, max_size=30),
       pool=st.lists(st.integers(-60, 60), unique=True, max_size=30))
def test_member_sorted_is_membership(values: list[int], pool: list[int]) -> None:
    """The persons' bipolar and psychosis flags: each staged person (sorted) in the sorted pool
    of diagnosed persons, whichever is longer, wherever their ranges overlap."""
    v, p = np.array(sorted(values), np.int64), np.array(sorted(pool), np.int64)
    assert _member_sorted(v, p).tolist() == [x in pool for x in sorted(values)]


# --------------------------------------------------------------------------- batches


@modest
@given(people=st.lists(st.integers(INT64.min, INT64.max), unique=True, max_size=40),
       batches=st.integers(1, 12))
def test_person_ranges_cover_every_id(people: list[int], batches: int) -> None:
    ids = np.array(sorted(people), np.int64)
    ranges = _person_ranges(ids, batches)
    assert len(ranges) == (min(batches, len(ids)) if len(ids) else 1)
    assert ranges[0][0] == INT64.min and ranges[-1][1] == INT64.max
    assert ranges[0][2] == 0 and ranges[-1][3] == len(ids)
    for (_, last, _, past), (first, _, start, _) in itertools.pairwise(ranges):
        assert first == last + 1 and start == past
    for first, last, start, past in ranges:
        assert first <= last
        inside = [int(p) for p in ids if first <= p <= last]
        assert inside == ids[start:past].tolist()
        assert len(ids) == 0 or inside  # no empty range


@pytest.fixture(scope="module")
def untidy(tmp_path_factory: pytest.TempPathFactory, synthetic: Path) -> Path:
    """The synthetic database with rows of no person, of persons missing from the person table
    (below, inside and above its ids), negative supplies and ends before starts."""
    path = tmp_path_factory.mktemp("batches") / "cdm.duckdb"
    shutil.copy(synthetic, path)
    con = duckdb.connect(str(path))
    try:
        for statement in (
            "INSERT INTO drug_exposure BY NAME SELECT * REPLACE ("
            " CASE drug_exposure_id % 4 WHEN 0 THEN NULL WHEN 1 THEN -7"
            " WHEN 2 THEN person_id + 100000000 ELSE person_id END AS person_id,"
            " drug_exposure_id + 100000000 AS drug_exposure_id,"
            " CASE WHEN drug_exposure_id % 3 = 0 THEN -1 ELSE days_supply END AS days_supply)"
            " FROM drug_exposure WHERE drug_exposure_id % 31 = 0",
            "DELETE FROM person WHERE person_id % 11 = 0",
            "UPDATE drug_exposure SET days_supply = -2 WHERE drug_exposure_id % 53 = 0",
            "UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date - 3"
            " WHERE drug_exposure_id % 59 = 0",
        ):
            con.execute(statement)
    finally:
        con.close()
    return path


def test_batches_give_the_same_table(untidy: Path) -> None:
    policy = load_policy("claims")
    expression, expected = stage_cohort(str(untidy), DEMO_AS_OF, policy, engine="expression")
    assert expected.excluded_rows[BAD_SUPPLY] > 0 and expected.excluded_rows[BAD_END] > 0
    for batches in (1, 3, 7):
        table, summary = stage_cohort(str(untidy), DEMO_AS_OF, policy, batches=batches)
        assert summary.engine == "scan"
        assert table.schema.equals(expression.schema)
        assert table.equals(expression), f"{batches} batches"
        assert summary.excluded_rows == expected.excluded_rows
        assert summary.excluded_persons == expected.excluded_persons
        assert summary.persons == expected.persons


def test_batches_are_read_one_range_at_a_time(synthetic: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default batch size lowered, the drug rows are read in that many ranges (and once
    more for the rows of no person), each range's rows only."""
    from trdstage.cohort import duckdb_native, scan

    seen: list[tuple[int, int, int]] = []
    between = duckdb_native._DuckDrugRows.between

    def counted(self: Any, first: int, last: int) -> pa.Table:
        rows = between(self, first, last)
        ids = rows["person_id"].to_pylist()
        assert all(first <= p <= last for p in ids)
        seen.append((first, last, len(ids)))
        return rows

    monkeypatch.setattr(duckdb_native._DuckDrugRows, "between", counted)
    monkeypatch.setattr(scan, "PERSONS_PER_BATCH", 400)
    steps: list[str] = []
    table, _ = stage_cohort(str(synthetic), DEMO_AS_OF, load_policy("claims"), step=steps.append)
    assert len(seen) == 4  # 1500 persons, 400 a batch
    assert sum(n for _, _, n in seen) > 1000
    assert sum("batch 4 of 4" in s for s in steps) == 1
    assert table.num_rows > 100


def test_parquet_is_written_a_range_at_a_time(synthetic: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Each range's part of the table goes to the Parquet file as soon as it is computed (one
    row group each, with the minimum and maximum person_id; person_id without a dictionary);
    the file holds exactly the table returned, with its metadata."""
    from trdstage.cohort import scan

    monkeypatch.setattr(scan, "PERSONS_PER_BATCH", 400)
    out = tmp_path / "results.parquet"
    table, summary = stage_cohort(str(synthetic), DEMO_AS_OF, load_policy("claims"), out=out)
    written = pq.ParquetFile(out)
    assert written.num_row_groups == 4
    assert written.read().equals(table)
    assert written.schema_arrow.metadata[b"trdstage_policy"] == b"claims"
    assert summary.output == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["results.parquet"]  # no temporary file
    # each row group's persons, for readers that skip row groups (statistics: person_id only)
    ids = table["person_id"].to_pylist()
    seen = 0
    for g in range(written.num_row_groups):
        group = written.metadata.row_group(g)
        stats = group.column(0).statistics
        assert (stats.min, stats.max) == (ids[seen], ids[seen + group.num_rows - 1])
        assert group.column(1).statistics is None
        # one person per row: no dictionary (it would only grow); the labels have one
        assert "RLE_DICTIONARY" not in group.column(0).encodings
        category = written.schema_arrow.get_field_index("european_category")
        assert "RLE_DICTIONARY" in group.column(category).encodings
        seen += group.num_rows


def test_a_failed_write_leaves_the_old_file(synthetic: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails after some ranges were written (a full disk, say) names the file,
    leaves the previous results as they were and no temporary file behind."""
    from trdstage.cohort import run, scan

    monkeypatch.setattr(scan, "PERSONS_PER_BATCH", 400)
    out = tmp_path / "results.parquet"
    out.write_bytes(b"the previous results")

    class FullDisk(pq.ParquetWriter):  # type: ignore[misc]
        parts = 0

        def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
            FullDisk.parts += 1
            if FullDisk.parts == 2:
                raise OSError(28, "No space left on device")
            super().write_table(table, row_group_size)

    monkeypatch.setattr(run.pq, "ParquetWriter", FullDisk)
    with pytest.raises(InputError) as failed:
        stage_cohort(str(synthetic), DEMO_AS_OF, load_policy("claims"), out=out)
    assert str(out) in str(failed.value) and "No space left" in str(failed.value)
    assert out.read_bytes() == b"the previous results"
    assert [p.name for p in tmp_path.iterdir()] == ["results.parquet"]
    FullDisk.parts = 0  # into folders that do not exist yet: none is left behind
    with pytest.raises(InputError):
        stage_cohort(str(synthetic), DEMO_AS_OF, load_policy("claims"),
                     out=tmp_path / "new" / "deeper" / "results.parquet")
    assert not (tmp_path / "new").exists()


def test_the_run_leaves_numpy_settings_alone(synthetic: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A process-wide setting of another library is the caller's: during the run NumPy's
    huge-page setting is whatever the caller chose, and it is the same afterwards."""
    from numpy._core import multiarray

    from trdstage.cohort import run

    switch = multiarray._set_madvise_hugepage
    seen: list[bool] = []
    stage = run._stage_cohort

    def looking(*args: Any) -> Any:
        seen.append(bool(switch(True)))  # (returns the setting it replaces)
        switch(seen[-1])
        return stage(*args)

    monkeypatch.setattr(run, "_stage_cohort", looking)
    before = switch(True)
    try:
        for chosen in (True, False):
            switch(chosen)
            stage_cohort(str(synthetic), DEMO_AS_OF, load_policy("claims"))
            assert seen[-1] is chosen and switch(chosen) is chosen
    finally:
        switch(before)


def test_the_database_is_let_go_after_the_last_read(synthetic: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The drug rows' reader hears `done()` once, after its last read (the run then closes the
    file while the last persons are staged), and the file is closed when the run returns."""
    from trdstage.cohort import duckdb_native, scan

    calls: list[str] = []
    reader = duckdb_native._DuckDrugRows

    def recording(name: str) -> Any:
        method = getattr(reader, name)

        def recorded(self: Any, *args: Any) -> Any:
            calls.append(name)
            return method(self, *args)

        return recorded

    for name in ("between", "without_person", "done"):
        monkeypatch.setattr(reader, name, recording(name))
    monkeypatch.setattr(scan, "PERSONS_PER_BATCH", 400)
    stage_cohort(str(synthetic), DEMO_AS_OF, load_policy("claims"))
    assert calls == ["between"] * 4 + ["without_person", "done"]
    duckdb.connect(str(synthetic)).close()  # writable again: nothing holds the file
