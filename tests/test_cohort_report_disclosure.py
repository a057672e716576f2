"""No small count in the cohort report can be recovered from what the report shows: every table
is read back from the HTML page, the equations a reader knows between its cells are written down
(distributions add up to the persons staged, crosstab rows and columns to the distributions, age
and sex cells to the totals, stage 0 = no failed trial = European `none`, one failed trial =
`NR`), and each hidden cell is recomputed: by subtraction from any one equation, by linear algebra
over all of them, and by bounds (a hidden count is between 0 and the largest number shown)."""

from __future__ import annotations

import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trdstage.cohort.disclosure import COMPLEMENTARY, PRIMARY, Cells, determined, protect
from trdstage.cohort.report import EUROPEAN_ORDER, write_report

K = 5


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[-1].append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _value(text: str) -> int | str:
    if text == "[s]":  # a hidden count: small, or hidden to protect a small one
        return COMPLEMENTARY
    return int(text.replace(",", ""))


def _read_back(page: str) -> tuple[Cells, dict[str, str]]:
    """What the page shows, as cells (hidden ones without a value) and equations."""
    parser = _Tables()
    parser.feed(page)
    dist, _kappa, ct, ct2, _incidence, age = parser.tables
    n = int(re.search(r"<p>([\d,]+) persons staged", page).group(1).replace(",", ""))
    cells, hidden = Cells(), {}

    def put(name: str, text: str) -> str:
        v = _value(text)
        if isinstance(v, str):
            hidden[name] = v
            v = 0
        cells.add(name, v)
        return name

    groups: dict[str, list[str]] = {}
    for model, result, persons in dist[1:]:
        groups.setdefault(model, []).append(put(f"{model}:{result}", persons))
    for names in groups.values():
        cells.total(n, names)
    for key, table, model in (("ct", ct, "European"), ("ct2", ct2, "Maudsley")):
        columns = table[0][1:]
        for row in table[1:]:
            cells.total(f"Thase & Rush:{row[0]}",
                        [put(f"{key}:{row[0]}:{c}", v) for c, v in zip(columns, row[1:],
                                                                         strict=True)])
        for c in columns:
            cells.total(f"{model}:{c}", [f"{key}:{row[0]}:{c}" for row in table[1:]])
    counts, met = [], []
    for ab, sex, persons, regulatory, *_ in age[1:]:
        counts.append(put(f"{ab}:{sex}:n", persons))
        met.append(put(f"{ab}:{sex}:met", regulatory))
    cells.total(n, counts)
    cells.total("Regulatory:met", met)
    # stage 0 = no failed trial = European `none`; Maudsley n/a includes them (not an equation)
    cells.total("Thase & Rush:stage 0", ["European:none"])
    return cells, hidden


def _recovered(cells: Cells, hidden: dict[str, str]) -> set[str]:
    by_subtraction = {next(iter(set(coef) & set(hidden)))
                      for coef, _ in cells.equations if len(set(coef) & set(hidden)) == 1}
    return by_subtraction | determined(cells, hidden, K)


def _results(tmp: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp / "results.parquet"
    table = pa.Table.from_pylist(rows)
    pq.write_table(table.replace_schema_metadata({"trdstage_as_of": "2026-01-01",
                                                  "trdstage_policy": "claims"}), path)
    return path


def _person(rnd: np.random.Generator, pid: int) -> dict[str, object]:
    import datetime as dt

    failed = int(rnd.choice([0, 0, 0, 1, 1, 2, 3, 4, 6], p=None))
    stage = 0 if failed == 0 else int(rnd.choice([1, 2, 3, 4, 5][:failed + 1]))
    onset = dt.date(2018, 1, 1) + dt.timedelta(days=int(rnd.integers(0, 2500)))
    met = failed >= 2 and rnd.random() < 0.8
    eu = "none" if failed == 0 else "NR" if failed == 1 else (
        "CRD" if rnd.random() < 0.2 else EUROPEAN_ORDER[min(failed + 1, 7)])
    band = None if failed == 0 or rnd.random() < 0.3 else str(
        rnd.choice(["mild", "moderate", "severe"], p=[0.3, 0.6, 0.1]))
    return {"person_id": pid, "sex": str(rnd.choice(["female", "male"], p=[0.9, 0.1])),
            "age": int(rnd.integers(16, 95)), "episode_onset": onset,
            "thase_rush_stage": stage, "mgh_score": float(failed + 0.5 * rnd.integers(0, 3)),
            "maudsley_score": None, "maudsley_band": band, "european_category": eu,
            "regulatory_met": met,
            "regulatory_first_met": onset + dt.timedelta(days=200) if met else None,
            "failed_trials": failed}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([12, 60, 400]))
def test_no_suppressed_count_is_recoverable_from_the_report(tmp_path: Path, seed: int,
                                                            n: int) -> None:
    rnd = np.random.default_rng(seed)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    page = write_report(_results(folder, [_person(rnd, i) for i in range(1, n + 1)]),
                        folder / "report", min_count=K).read_text()
    cells, hidden = _read_back(page)
    assert not _recovered(cells, hidden)


def test_the_maudsley_subtraction_of_the_issue_is_closed() -> None:
    """3,950 - 3,173 - 264 - 511 = 2: with only 'severe' hidden, it is recovered."""
    cells = Cells()
    names = [cells.add(b, v) for b, v in (("n/a", 3173), ("mild", 264), ("moderate", 511),
                                          ("severe", 2))]
    cells.total(3950, names)
    assert _recovered(cells, {"severe": PRIMARY}) == {"severe"}
    hidden = protect(cells, K)
    assert hidden["severe"] == PRIMARY and len(hidden) == 2
    assert not _recovered(cells, hidden)


@pytest.mark.parametrize("n", [3, 5])
def test_a_tiny_cohort_shows_no_small_count(tmp_path: Path, n: int) -> None:
    rnd = np.random.default_rng(n)
    page = write_report(_results(tmp_path, [_person(rnd, i) for i in range(1, n + 1)]),
                        tmp_path / "report", min_count=K).read_text()
    cells, hidden = _read_back(page)
    assert not _recovered(cells, hidden)
