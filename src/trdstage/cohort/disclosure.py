"""Small-count protection for the cohort report: primary and complementary cell suppression.

Every count below `k` (and above 0) is suppressed (primary). The report also shows totals and
margins, so a suppressed cell could be recovered by subtraction (a total minus the other cells of
its row) or narrowed to one value by bounds (two "<5" cells that must add to 2). `protect` adds
complementary suppressions until no suppressed cell is determined by what is shown:

- the shown facts are linear equations between cells (a total equals the sum of its parts; a
  constant, such as the number of persons, is known);
- a suppressed cell is determined when its value follows from them, by linear algebra (its unit
  vector lies in the row space of the equations restricted to the suppressed cells) or by bounds
  (interval propagation: a hidden cell lies between 0 and the largest number shown). Every
  hidden cell reads the same, so a reader cannot tell a small count (1..k-1) from a
  complementary one: four hidden cells of a row whose total is itself below k would otherwise
  each be 1;
- while one is, the smallest shown count (non-zero first) of an equation holding it is
  suppressed too (complementary), and the check runs again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

PRIMARY = "primary"
COMPLEMENTARY = "complementary"


@dataclass
class Cells:
    """Counts by name and the equations between them that a reader of the report knows."""

    values: dict[str, int] = field(default_factory=dict)
    # (coefficient per cell, constant): sum(coefficient x value) == constant
    equations: list[tuple[dict[str, int], int]] = field(default_factory=list)

    def add(self, name: str, value: int) -> str:
        self.values[name] = int(value)
        return name

    def total(self, total: str | int, parts: Iterable[str]) -> None:
        """`total` (a cell, or a number shown as such) is the sum of `parts`."""
        coef = {p: 1 for p in parts}
        if isinstance(total, str):
            coef[total] = coef.get(total, 0) - 1
            self.equations.append((coef, 0))
        else:
            self.equations.append((coef, int(total)))


def determined(cells: Cells, hidden: dict[str, str], k: int) -> set[str]:
    """The hidden cells whose value follows from the shown cells and the equations."""
    names = sorted(hidden)
    if not names:
        return set()
    index = {name: i for i, name in enumerate(names)}
    rows, rhs = [], []
    for coef, constant in cells.equations:
        row = np.zeros(len(names))
        b = constant
        for name, a in coef.items():
            if name in index:
                row[index[name]] += a
            else:
                b -= a * cells.values[name]
        if row.any():
            rows.append(row)
            rhs.append(b)
    out: set[str] = set()
    if rows:
        a_mat = np.array(rows)
        rank = np.linalg.matrix_rank(a_mat)
        for name, i in index.items():
            unit = np.zeros(len(names))
            unit[i] = 1.0
            if np.linalg.matrix_rank(np.vstack([a_mat, unit])) == rank:
                out.add(name)
    # a hidden cell is at most the largest number shown (a total a reader sees)
    big = max([v for n, v in cells.values.items() if n not in hidden]
              + [abs(c) for _, c in cells.equations] + [0]) + 1
    lo = dict.fromkeys(names, 0)
    hi = dict.fromkeys(names, big)
    for _ in range(100):  # interval propagation over the equations, to a fixed point
        changed = False
        for row, b in zip(rows, rhs, strict=True):
            terms = [(names[i], row[i]) for i in np.flatnonzero(row)]
            for name, a in terms:
                rest_lo = sum(c * (lo[m] if c > 0 else hi[m]) for m, c in terms if m != name)
                rest_hi = sum(c * (hi[m] if c > 0 else lo[m]) for m, c in terms if m != name)
                bounds = sorted(((b - rest_hi) / a, (b - rest_lo) / a))
                new_lo, new_hi = max(lo[name], int(np.ceil(bounds[0] - 1e-9))), \
                    min(hi[name], int(np.floor(bounds[1] + 1e-9)))
                if (new_lo, new_hi) != (lo[name], hi[name]):
                    lo[name], hi[name] = new_lo, new_hi
                    changed = True
        if not changed:
            break
    out.update(n for n in names if lo[n] >= hi[n])
    return out


def protect(cells: Cells, k: int) -> dict[str, str]:
    """The cells to hide: name -> PRIMARY (0 < count < k) or COMPLEMENTARY."""
    hidden = {n: PRIMARY for n, v in cells.values.items() if 0 < v < k}
    for _ in range(len(cells.values) + 1):
        found = determined(cells, hidden, k)
        if not found:
            break
        target = min(found)
        candidates = {n for coef, _ in cells.equations if target in coef
                      for n in coef if n not in hidden}
        if not candidates:  # bounded only by hidden cells: widen through any equation
            candidates = {n for coef, _ in cells.equations
                          if any(m in hidden for m in coef) for n in coef if n not in hidden}
        if not candidates:
            break
        pick = min(candidates, key=lambda n: (cells.values[n] == 0, cells.values[n], n))
        hidden[pick] = COMPLEMENTARY
    return hidden


__all__ = ["COMPLEMENTARY", "PRIMARY", "Cells", "determined", "protect"]
