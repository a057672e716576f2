"""The cohort research report: an HTML page and its figures (PNG and SVG).

Every count shown (tables, bar labels, curve) is suppressed below `min_count` (default 5,
omop.yaml `report.min_count`): it reads "[s]", a bar is not drawn. Suppression is
complementary (`cohort/disclosure.py`): where a suppressed count could be recovered from the
totals, margins and other cells shown (by subtraction, or by bounds), further counts are hidden
too, and read the same "[s]" (a reader cannot tell which hidden cells are small).
Percentages of hidden cells are not shown either. The incidence curve rises only in steps of at
least `min_count` events and stops where fewer persons remain at risk.
"""

from __future__ import annotations

import html
import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from trdstage.adapters.errors import InputError
from trdstage.cohort.disclosure import Cells, protect
from trdstage.domain.results import DISCLAIMER
from trdstage.knowledge.omop_schema import ReportSpec, load_omop_spec

NEEDED = ("person_id", "sex", "age", "episode_onset", "thase_rush_stage", "mgh_score",
          "maudsley_score", "maudsley_band", "european_category", "regulatory_met",
          "regulatory_first_met", "failed_trials")
EUROPEAN_ORDER = ["none", "NR", "TRD1", "TRD2", "TRD3", "TRD4", "TRD5", "CRD"]
MODELS = ("thase_rush", "mgh", "maudsley", "european", "regulatory")
MODEL_LABELS = {"thase_rush": "Thase & Rush", "mgh": "MGH-S", "maudsley": "Maudsley",
                "european": "European", "regulatory": "Regulatory"}


def _read(results: Path) -> Any:
    if not results.is_file():
        raise InputError(str(results), "no such results file")
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        table = pq.read_table(results)
        df = table.to_pandas()
        meta = table.schema.metadata or {}
        df.attrs["as_of"] = meta.get(b"trdstage_as_of", b"").decode() or None
        df.attrs["policy"] = meta.get(b"trdstage_policy", b"").decode() or None
    except Exception as exc:
        raise InputError(str(results), f"not a Parquet results file: {exc}") from exc
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise InputError(str(results), f"not a `trdstage cohort stage` result (missing columns "
                         f"{', '.join(missing)})")
    return df


def suppress(n: int, k: int) -> str:
    return f"<{k}" if 0 < n < k else f"{n:,}"


HIDDEN_MARK = "[s]"


class _Shown:
    """The report's counts, protected together (`disclosure.protect`), and how each reads."""

    def __init__(self, cells: Cells, k: int) -> None:
        self.cells, self.k = cells, k
        self.hidden = protect(cells, k)

    def text(self, name: str) -> str:
        if name in self.hidden:
            return HIDDEN_MARK
        return f"{self.cells.values[name]:,}"

    def visible(self, name: str) -> bool:
        return name not in self.hidden

    def value(self, name: str) -> int:
        return self.cells.values[name]


def levels(df: Any, spec: ReportSpec) -> dict[str, Any]:
    """Each model's result on the common 0-3 scale (NaN where undefined)."""
    import pandas as pd  # type: ignore[import-untyped]

    tr = df.thase_rush_stage.astype(str).map(spec.thase_rush)
    eu = df.european_category.map(spec.european)
    ms = df.maudsley_band.map(spec.maudsley)
    ms = ms.where(df.maudsley_band.notna() | (df.failed_trials > 0), 0)
    mgh = pd.Series(np.searchsorted(np.array(spec.mgh_upper_bounds), df.mgh_score.to_numpy(),
                                    side="left"), index=df.index)
    reg = df.regulatory_met.map(lambda v: spec.regulatory[str(bool(v)).lower()])
    return {"thase_rush": tr, "mgh": mgh, "maudsley": ms, "european": eu, "regulatory": reg}


def weighted_kappa(a: Sequence[float], b: Sequence[float], n_levels: int) -> float | None:
    """Cohen's kappa with quadratic weights on levels 0..n_levels-1 (None if undefined)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep].astype(int), y[keep].astype(int)
    if len(x) == 0:
        return None
    observed = np.zeros((n_levels, n_levels))
    np.add.at(observed, (x, y), 1)
    observed /= observed.sum()
    expected = np.outer(observed.sum(1), observed.sum(0))
    i, j = np.indices((n_levels, n_levels))
    w = (i - j) ** 2 / (n_levels - 1) ** 2
    denom = (w * expected).sum()
    if denom == 0:
        return None
    return float(1 - (w * observed).sum() / denom)


def cumulative_incidence(df: Any, as_of: Any, k: int) -> tuple[list[float], list[float]]:
    """Kaplan-Meier 1 - S(t) of regulatory TRD by days since episode onset (censored at the
    as-of date); the curve stops where fewer than k persons remain at risk, and it rises only
    once at least k events have accumulated since its last step (the events in between are
    drawn at that step), so no step reveals a count below k."""
    onset = df.episode_onset.to_numpy(dtype="datetime64[D]")
    met = df.regulatory_first_met.to_numpy(dtype="datetime64[D]")
    end = np.where(np.isnat(met), np.datetime64(as_of, "D"), met)
    t = (end - onset).astype(int)
    event = ~np.isnat(met)
    order = np.argsort(t, kind="stable")
    t, event = t[order], event[order]
    times, inc = [0.0], [0.0]
    surv = 1.0
    at_risk = len(t)
    i = 0
    last = 0
    pending = 0  # events since the last step drawn
    while i < len(t):
        ti = t[i]
        j = i
        while j < len(t) and t[j] == ti:
            j += 1
        d = int(event[i:j].sum())
        if at_risk < k:
            break
        if d:
            surv *= 1 - d / at_risk
            pending += d
            if pending >= k:
                times.append(ti / 365.25)
                inc.append(1 - surv)
                pending = 0
        at_risk -= j - i
        last = ti
        i = j
    if pending:  # fewer than k events since the last step: not drawn
        surv = 1 - inc[-1]
    if i and times[-1] < last / 365.25:
        times.append(last / 365.25)
        inc.append(1 - surv)
    return times, inc


def _save(fig: Any, folder: Path, name: str) -> list[str]:
    fig.savefig(folder / f"{name}.png", dpi=120, bbox_inches="tight")
    fig.savefig(folder / f"{name}.svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return [f"{name}.png", f"{name}.svg"]


def _bars(ax: Any, labels: list[str], names: list[str], shown: _Shown, title: str) -> None:
    heights = [shown.value(n) if shown.visible(n) else 0 for n in names]
    bars = ax.bar(range(len(labels)), heights, color="#4C72B0")
    for b, n in zip(bars, names, strict=True):
        ax.annotate(shown.text(n), (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("persons")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


MS_LABELS = ["n/a", "mild", "moderate", "severe"]


def _protected_counts(df: Any, spec: ReportSpec, k: int) -> tuple[_Shown, dict[str, Any]]:
    """Every count the report shows, with the equations a reader knows between them (each
    distribution adds up to the persons staged, each crosstab's rows and columns to the
    distributions, the age and sex cells to the totals, stage 0 = no failed trial = European
    `none`, one failed trial = `NR`), protected together."""
    import pandas as pd

    n = len(df)
    cells = Cells()
    layout: dict[str, Any] = {}

    def dist(key: str, series: Any, values: list[Any]) -> list[str]:
        counts = series.value_counts()
        names = [cells.add(f"{key}:{v}", int(counts.get(v, 0))) for v in values]
        cells.total(n, names)
        return names

    layout["tr"] = dist("tr", df.thase_rush_stage, list(range(6)))
    layout["eu"] = dist("eu", df.european_category, EUROPEAN_ORDER)
    layout["ms"] = dist("ms", df.maudsley_band.fillna("n/a"), MS_LABELS)
    layout["reg"] = dist("reg", df.regulatory_met, [False, True])
    layout["ft"] = dist("ft", df.failed_trials.clip(upper=6), list(range(7)))
    bins = np.arange(0, max(6.0, float(df.mgh_score.max()) + 0.5) + 0.5, 0.5)
    counts, _ = np.histogram(df.mgh_score, bins=bins)
    layout["mgh"] = [cells.add(f"mgh:{b:g}", int(c)) for b, c in zip(bins, counts, strict=False)]
    layout["mgh_labels"] = [f"{b:g}" for b in bins[:-1]]
    cells.total(n, layout["mgh"])
    for a, b in (("tr:0", "ft:0"), ("eu:none", "ft:0"), ("eu:NR", "ft:1")):
        cells.total(a, [b])
    ct = pd.crosstab(df.thase_rush_stage, df.european_category).reindex(
        columns=[c for c in EUROPEAN_ORDER if c in set(df.european_category)], fill_value=0)
    ct2 = pd.crosstab(df.thase_rush_stage, df.maudsley_band.fillna("n/a"))
    for key, table, margin in (("ct", ct, "eu"), ("ct2", ct2, "ms")):
        for idx in table.index:
            cells.total(f"tr:{idx}", [cells.add(f"{key}:{idx}:{c}", int(table.loc[idx, c]))
                                      for c in table.columns])
        for c in table.columns:
            cells.total(f"{margin}:{c}", [f"{key}:{idx}:{c}" for idx in table.index])
    layout["ct"], layout["ct2"] = ct, ct2
    bounds = spec.age_bands
    labels = [f"<{bounds[0]}"] + [
        f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(bounds)] + [f"{bounds[-1]}+"]
    band = pd.cut(df.age, bins=[-1, *[b - 0.5 for b in bounds], 200], labels=labels)
    groups = list(df.assign(age_band=band).groupby(["age_band", "sex"], observed=True))
    parts: dict[str, list[str]] = {"n": [], "met": [], "ii": []}
    for (ab, sex), sub in groups:
        name = f"as:{ab}:{sex}"
        parts["n"].append(cells.add(f"{name}:n", len(sub)))
        parts["met"].append(cells.add(f"{name}:met", int(sub.regulatory_met.sum())))
        parts["ii"].append(cells.add(f"{name}:ii", int((sub.thase_rush_stage >= 2).sum())))
    cells.total(n, parts["n"])
    cells.total("reg:True", parts["met"])
    stage_ii = [f"tr:{s}" for s in range(2, 6)]
    cells.equations.append(({**{p: 1 for p in parts["ii"]}, **{t: -1 for t in stage_ii}}, 0))
    layout["age_labels"], layout["age_groups"] = labels, groups
    return _Shown(cells, k), layout


def write_report(results: str | Path, out: str | Path, min_count: int | None = None,
                 as_of: Any = None) -> Path:
    """Write `out/index.html` and the figures; the folder is replaced atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    spec = load_omop_spec().report
    k = min_count or spec.min_count
    df = _read(Path(results))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        n = len(df)
        as_of = as_of or (pd.Timestamp(df.attrs.get("as_of")) if df.attrs.get("as_of") else
                          max(pd.to_datetime(df.episode_onset).max(),
                              pd.to_datetime(df.regulatory_first_met).max()
                              if df.regulatory_first_met.notna().any()
                              else pd.Timestamp.min))
        sections: list[str] = []
        figures: list[str] = []
        shown, layout = _protected_counts(df, spec, k)

        # 1. distribution per model
        fig, axes = plt.subplots(2, 3, figsize=(13, 7))
        _bars(axes[0, 0], [str(s) for s in range(6)], layout["tr"], shown, "Thase & Rush stage")
        _bars(axes[0, 1], EUROPEAN_ORDER, layout["eu"], shown, "European category")
        _bars(axes[0, 2], MS_LABELS, layout["ms"], shown,
              "Maudsley band (n/a: no failed trial or severity unknown)")
        _bars(axes[1, 0], layout["mgh_labels"], layout["mgh"], shown, "MGH score (bins of 0.5)")
        axes[1, 0].tick_params(axis="x", labelrotation=90)
        _bars(axes[1, 1], ["not met", "met"], layout["reg"], shown, "Regulatory TRD definition")
        _bars(axes[1, 2], [*map(str, range(6)), "6+"], layout["ft"], shown,
              "Failed adequate trials (current episode)")
        fig.suptitle(f"Stages under each model ({n:,} persons)")
        figures += _save(fig, tmp, "stages")
        dist_rows = [["Thase & Rush", f"stage {s}", shown.text(c)]
                     for s, c in enumerate(layout["tr"])]
        dist_rows += [["European", lab, shown.text(c)]
                      for lab, c in zip(EUROPEAN_ORDER, layout["eu"], strict=True)]
        dist_rows += [["Maudsley", lab, shown.text(c)]
                      for lab, c in zip(MS_LABELS, layout["ms"], strict=True)]
        dist_rows += [["Regulatory", lab, shown.text(c)]
                      for lab, c in zip(("not met", "met"), layout["reg"], strict=True)][::-1]
        sections.append("<h2>Stages under each model</h2><img src='stages.png' alt='stages'>"
                        + _table(["model", "result", "persons"], dist_rows))

        # 2. concordance
        lv = levels(df, spec)
        kappa_rows = []
        for i, a in enumerate(MODELS):
            for b in MODELS[i + 1:]:
                kap = weighted_kappa(lv[a], lv[b], len(spec.levels))
                kappa_rows.append([MODEL_LABELS[a], MODEL_LABELS[b],
                                   "n/a" if kap is None else f"{kap:.2f}"])
        ct = layout["ct"]
        ct_rows = [[f"stage {idx}", *[shown.text(f"ct:{idx}:{c}") for c in ct.columns]]
                   for idx in ct.index]
        ct2 = layout["ct2"]
        ct2_rows = [[f"stage {idx}", *[shown.text(f"ct2:{idx}:{c}") for c in ct2.columns]]
                    for idx in ct2.index]
        fig, ax = plt.subplots(figsize=(7, 4))
        masked = np.array([[float(ct.loc[r, c]) if shown.visible(f"ct:{r}:{c}") else np.nan
                            for c in ct.columns] for r in ct.index]).reshape(ct.shape)
        ax.imshow(masked, cmap="Blues", aspect="auto")
        for r, idx in enumerate(ct.index):
            for c, col in enumerate(ct.columns):
                ax.text(c, r, shown.text(f"ct:{idx}:{col}"), ha="center", va="center",
                        fontsize=7)
        ax.set_xticks(range(len(ct.columns)), list(ct.columns))
        ax.set_yticks(range(len(ct.index)), [f"stage {s}" for s in ct.index])
        ax.set_title("Thase & Rush stage x European category")
        figures += _save(fig, tmp, "concordance")
        scale = ", ".join(f"{i} {name}" for i, name in enumerate(spec.levels))
        sections.append(
            "<h2>Concordance between models</h2>"
            f"<p>Quadratic weighted kappa on a common resistance scale ({html.escape(scale)}); "
            "the mapping of each model onto it is a project assumption (docs/cohort.md).</p>"
            + _table(["model", "model", "weighted kappa"], kappa_rows)
            + "<img src='concordance.png' alt='concordance'>"
            + "<h3>Thase &amp; Rush x European</h3>"
            + _table(["", *map(str, ct.columns)], ct_rows)
            + "<h3>Thase &amp; Rush x Maudsley band</h3>"
            + _table(["", *map(str, ct2.columns)], ct2_rows))

        # 3. cumulative incidence of regulatory TRD
        times, inc = cumulative_incidence(df, as_of, k)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.step(times, [100 * v for v in inc], where="post")
        ax.set_xlabel("years since episode onset")
        ax.set_ylabel("% meeting the regulatory TRD definition")
        ax.set_title("Cumulative incidence of regulatory TRD (Kaplan-Meier)")
        ax.grid(alpha=0.3)
        figures += _save(fig, tmp, "incidence")
        at = [(y, next((v for t, v in zip(times, inc, strict=True) if t > y), None))
              for y in (0.5, 1, 2, 3, 5)]
        inc_rows = []
        for y, _ in at:
            past = [v for t, v in zip(times, inc, strict=True) if t <= y]
            inc_rows.append([f"{y:g}", f"{100 * past[-1]:.1f} %" if past else "n/a"])
        sections.append(
            "<h2>Cumulative incidence of regulatory TRD since episode onset</h2>"
            "<p>Time from the current episode's onset to the date the definition was first met; "
            "others censored at the data cut-off. The curve stops where fewer than "
            f"{k} persons remain at risk.</p><img src='incidence.png' alt='incidence'>"
            + _table(["years", "cumulative incidence"], inc_rows))

        # 4. by age band and sex
        labels = layout["age_labels"]
        rows = []
        pct: dict[str, dict[str, float]] = {}
        for (ab, sex), sub in layout["age_groups"]:
            name = f"as:{ab}:{sex}"
            cnt, met = len(sub), shown.value(f"{name}:met")
            see_n, see_met = shown.visible(f"{name}:n"), shown.visible(f"{name}:met")
            see_ii = shown.visible(f"{name}:ii")
            rows.append([str(ab), str(sex), shown.text(f"{name}:n"), shown.text(f"{name}:met"),
                         f"{100 * met / cnt:.1f} %" if see_n and see_met else "suppressed",
                         f"{sub.mgh_score.mean():.2f}" if see_n else "suppressed",
                         f"{100 * shown.value(f'{name}:ii') / cnt:.1f} %"
                         if see_n and see_ii else "suppressed"])
            if see_n and see_met:
                pct.setdefault(str(sex), {})[str(ab)] = 100 * met / cnt
        fig, ax = plt.subplots(figsize=(7, 4))
        sexes = sorted(pct)
        width = 0.8 / max(1, len(sexes))
        for i, sx in enumerate(sexes):
            ax.bar([x + i * width for x in range(len(labels))],
                   [pct[sx].get(lab, 0.0) for lab in labels], width, label=sx)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], labels)
        ax.set_ylabel("% meeting the regulatory definition")
        ax.set_title("Regulatory TRD by age band and sex (suppressed cells not drawn)")
        if sexes:
            ax.legend()
        figures += _save(fig, tmp, "age_sex")
        sections.append(
            "<h2>Results by age band and sex</h2><img src='age_sex.png' alt='age and sex'>"
            + _table(["age band", "sex", "persons", "regulatory TRD", "% regulatory",
                      "mean MGH", "% Thase & Rush stage II+"], rows))

        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trdstage cohort report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:right}}img{{max-width:100%}}.note{{color:#666;font-size:90%}}</style></head><body>
<h1>TRD staging of an OMOP cohort</h1>
<p>{n:,} persons staged (current episode) as of {html.escape(str(as_of)[:10])}, policy
{html.escape(str(df.attrs.get("policy") or "?"))}; counts below {k} are hidden (shown as
{HIDDEN_MARK}), and so are further counts wherever a hidden one could otherwise be recovered
from the totals and margins shown.
Generated {datetime.now().strftime('%Y-%m-%d %H:%M')} by trdstage.</p>
{''.join(sections)}
<p class="note">Stages computed from recorded prescriptions, procedures and PHQ-9 scores under
the rules in docs/cohort.md; they are research estimates, not clinical assessments.
{html.escape(DISCLAIMER)}</p>
<p class="note">Figures: {', '.join(figures)}</p>
</body></html>
"""
        (tmp / "index.html").write_text(page, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        plt.close("all")
        raise
    return out / "index.html"


__all__ = ["cumulative_incidence", "suppress", "weighted_kappa", "write_report"]
