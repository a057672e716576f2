"""Charts of a report: the treatment timeline and the symptom course, drawn with matplotlib.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot, so no global backend state
and nothing to leak between reports); `to_svg` and `to_png` render them with the Agg-family
backends. Colours are presentation only (an Okabe-Ito based, colour-blind-safe palette); every
clinical number drawn (response reduction, remission threshold, severity bands) comes from the
knowledge data (scales.yaml), never from this module.

Each bar carries a gid ("trial:T1", "ect:ect1", "course:cbt", "added:liothyronine:T2") so a test
or the SVG reader can find it; the SVG keeps it as the element id.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import matplotlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from trdstage.domain.enums import Outcome
from trdstage.domain.patient import Patient, RatingReading
from trdstage.domain.results import Assessment, TrialVerdict
from trdstage.knowledge import load_knowledge
from trdstage.knowledge.schema import ScaleSpec

# Presentation palette by mechanism class id (formulary.yaml mechanism_classes). Unknown ids fall
# back to OTHER_COLOUR so a new class in the data never breaks a report.
CLASS_COLOURS: dict[str, str] = {
    "ssri": "#0072B2",
    "snri": "#56B4E9",
    "tca": "#E69F00",
    "maoi_irreversible": "#D55E00",
    "rima": "#CC79A7",
    "ndri": "#009E73",
    "alpha2_antagonist": "#B8A100",
    "serotonin_modulator": "#8E6BB5",
    "multimodal": "#5D3A9B",
    "melatonergic": "#2CA58D",
    "nri": "#1F4E8C",
    "other": "#8C8C8C",
}
OTHER_COLOUR = "#8C8C8C"
ADDED_COLOUR = "#B0B0B0"
ECT_COLOUR = "#3B3B3B"
COURSE_COLOUR = "#7A6A58"
INK = "#222222"
MUTED = "#6B6B6B"

Audience = Literal["clinician", "patient"]

OUTCOME_WORDS: dict[Outcome, str] = {
    Outcome.response: "response",
    Outcome.partial_response: "partial response",
    Outcome.non_response: "non-response",
    Outcome.intolerance: "intolerance",
    Outcome.unknown: "outcome unknown",
}


def class_colour(mechanism: str | None) -> str:
    return CLASS_COLOURS.get(mechanism or "", OTHER_COLOUR)


@dataclass(frozen=True)
class _Row:
    gid: str
    label: str
    start: date
    end: date
    colour: str
    solid: bool  # False: hatched (not adequate, or a row that has no adequacy)
    note: str
    faded: bool
    thin: bool = False


def _end(start: date, end: date | None, as_of: date) -> date:
    stop = end if end is not None else as_of
    return max(stop, start + timedelta(days=3))  # a visible sliver for very short records


def _trial_rows(trial: TrialVerdict, as_of: date) -> list[_Row]:
    dose = f" {trial.max_daily_dose_mg:g} mg" if trial.max_daily_dose_mg is not None else ""
    note = OUTCOME_WORDS[trial.outcome]
    if not trial.adequate:
        note += ", not adequate"
    if trial.failed:
        note += ": failed"
    if trial.ongoing:
        note += " (ongoing)"
    if not trial.in_scope:
        note += " [out of scope]"
    rows = [_Row(f"trial:{trial.id}", f"{trial.id} {' + '.join(trial.agents)}{dose}",
                 trial.start, _end(trial.start, trial.end, as_of),
                 class_colour(trial.mechanism), trial.adequate, note, not trial.in_scope)]
    for c in trial.concurrent:
        if c.role.value == "augmentation":
            rows.append(_Row(f"added:{c.agent}:{trial.id}", f"   + {c.agent}", c.start,
                             _end(c.start, c.end, as_of), ADDED_COLOUR, True,
                             f"added to {trial.id}", not trial.in_scope, thin=True))
    return rows


def timeline_rows(assessment: Assessment) -> list[tuple[str, str, str]]:
    """(gid, label, colour) of every bar, top to bottom: what the chart draws, for tests."""
    return [(r.gid, r.label, r.colour) for r in _rows(assessment)]


def _rows(a: Assessment) -> list[_Row]:
    rows: list[_Row] = []
    seen_added: set[tuple[str, date]] = set()
    for t in sorted(a.trials, key=lambda t: (t.start, t.id)):
        for r in _trial_rows(t, a.as_of):
            if r.gid.startswith("added:"):
                key = (r.label, r.start)
                if key in seen_added:
                    continue
                seen_added.add(key)
            rows.append(r)
    for e in a.ect:
        sessions = f", {e.sessions} sessions" if e.sessions is not None else ""
        note = OUTCOME_WORDS[e.outcome] + (": failed" if e.failed else "")
        rows.append(_Row(f"ect:{e.id}", f"ECT {e.laterality.value}{sessions}", e.start,
                         _end(e.start, e.end, a.as_of), ECT_COLOUR, True, note,
                         not e.in_scope))
    for c in a.courses:
        label = c.kind.value if c.kind.value not in ("rtms", "itbs", "vns", "dbs") \
            else c.kind.value.upper() if c.kind.value != "itbs" else "iTBS"
        if c.modality:
            label += f" ({c.modality})"
        rows.append(_Row(f"course:{c.id}", label, c.start, _end(c.start, c.end, a.as_of),
                         COURSE_COLOUR, False, OUTCOME_WORDS[c.outcome], not c.in_scope))
    rows.sort(key=lambda r: (r.start, 0 if not r.thin else 1))
    # keep an augmenter directly under its trial
    ordered: list[_Row] = []
    for r in rows:
        if r.thin:
            continue
        ordered.append(r)
        if r.gid.startswith("trial:"):
            tid = r.gid.split(":", 1)[1]
            ordered += [x for x in rows if x.thin and x.gid.endswith(f":{tid}")]
    return ordered


def _date_span(a: Assessment, patient: Patient | None) -> tuple[date, date]:
    """From the first record to the assessment date, with room right of the last bar for its
    outcome text."""
    starts: list[date] = [t.start for t in a.trials] + [e.start for e in a.ect] + [
        c.start for c in a.courses] + [a.episode.onset]
    if patient is not None:
        starts += [r.date for r in _readings(patient, a)]
    lo = min(starts)
    last_bar = max((r.end for r in _rows(a)), default=lo)
    room = timedelta(days=math.ceil(max((last_bar - lo).days, 30) * 0.24))
    pad = timedelta(days=max(7, (a.as_of - lo).days // 40))
    return lo - pad, max(a.as_of + pad, last_bar + room)


def _style_axes(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#999999")
    ax.spines["bottom"].set_color("#999999")
    ax.tick_params(colors=INK, labelsize=8)


def _num(day: date) -> float:
    """matplotlib's date number of a day (matplotlib.dates is untyped)."""
    return float(date2num(day))  # type: ignore[no-untyped-call]


def _date_axis(ax: Axes, lo: date, hi: date) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlim(_num(lo), _num(hi))


def timeline_figure(a: Assessment, audience: Audience = "clinician",
                    span: tuple[date, date] | None = None) -> Figure:
    """One bar per trial (coloured by mechanism class; solid when adequate, hatched when not;
    outcome written at its end), augmenters as thin grey bars under their trial, then ECT and
    the other courses. Out-of-scope records are faded."""
    rows = _rows(a)
    lo, hi = span or _date_span(a, None)
    height = 1.3 + 0.34 * max(len(rows), 1)
    fig = Figure(figsize=(7.6, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    _style_axes(ax)
    if not rows:
        ax.text(0.5, 0.5, "No treatments recorded", ha="center", va="center",
                transform=ax.transAxes, color=MUTED)
        ax.set_yticks([])
        _date_axis(ax, lo, hi)
        return fig
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        x0 = _num(r.start)
        width = _num(r.end) - x0
        h = 0.3 if r.thin else 0.62
        alpha = 0.35 if r.faded else 1.0
        if r.solid:
            bars = ax.barh(y, width, left=x0, height=h, color=r.colour, edgecolor=r.colour,
                           alpha=alpha, linewidth=0.8)
        else:
            bars = ax.barh(y, width, left=x0, height=h, color="white", edgecolor=r.colour,
                           hatch="////", alpha=alpha, linewidth=1.2)
        bars.patches[0].set_gid(r.gid)
        if not r.thin:
            ax.text(x0 + width + (hi - lo).days * 0.008, y, r.note, va="center", ha="left",
                    fontsize=7.5, color=MUTED if r.faded else INK)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r.label for r in reversed(rows)], fontsize=8)
    for tick, r in zip(ax.get_yticklabels(), reversed(rows), strict=True):
        if r.faded or r.thin:
            tick.set_color(MUTED)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.axvline(_num(a.as_of), color="#C0392B", linewidth=0.8, linestyle=":")
    ax.axvline(_num(a.episode.onset), color="#999999", linewidth=0.8, linestyle="--")
    _date_axis(ax, lo, hi)
    ax.grid(axis="x", color="#E5E5E5", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(handles=_legend(a), loc="outside lower center", ncol=4, fontsize=7.5,
               frameon=False)
    return fig


def _legend(a: Assessment) -> list[Artist]:
    knowledge = load_knowledge()
    handles: list[Artist] = []
    seen: list[str] = []
    for t in sorted(a.trials, key=lambda t: t.start):
        key = t.mechanism or "other"
        if key not in seen:
            seen.append(key)
            label = knowledge.classes[key].label if key in knowledge.classes else key
            handles.append(Patch(facecolor=class_colour(key), label=label))
    if any(c.role.value == "augmentation" for t in a.trials for c in t.concurrent):
        handles.append(Patch(facecolor=ADDED_COLOUR, label="added agent"))
    if a.ect:
        handles.append(Patch(facecolor=ECT_COLOUR, label="ECT"))
    if a.courses:
        handles.append(Patch(facecolor="white", edgecolor=COURSE_COLOUR, hatch="////",
                             label="other course"))
    if any(not t.adequate for t in a.trials):
        handles.append(Patch(facecolor="white", edgecolor=MUTED, hatch="////",
                             label="not adequate (hatched)"))
    handles.append(Line2D([], [], color="#999999", linestyle="--", linewidth=0.8,
                          label=f"episode onset {a.episode.onset.isoformat()}"))
    handles.append(Line2D([], [], color="#C0392B", linestyle=":", linewidth=0.8,
                          label=f"as of {a.as_of.isoformat()}"))
    return handles


def _readings(patient: Patient, a: Assessment) -> list[RatingReading]:
    episode = patient.current_episode(a.as_of)
    return sorted((r for r in episode.ratings if r.date <= a.as_of), key=lambda r: r.date)


def symptom_scales(patient: Patient, a: Assessment) -> list[str]:
    return list(dict.fromkeys(r.scale.value for r in _readings(patient, a)))


def _threshold_text(spec: ScaleSpec) -> str:
    return f"{spec.remission.op} {spec.remission.value:g}"


def symptom_figure(patient: Patient, a: Assessment, audience: Audience = "clinician",
                   span: tuple[date, date] | None = None) -> Figure | None:
    """One panel per scale with readings in the current episode: the totals over time, the
    response threshold (the scale's response reduction from the first reading, the baseline)
    and the remission threshold, over the scale's severity bands. None when there are none."""
    readings = _readings(patient, a)
    scales = symptom_scales(patient, a)
    if not scales:
        return None
    knowledge = load_knowledge()
    lo, hi = span or _date_span(a, patient)
    # The patient summary draws a narrower figure: scaled to the page, its text reads larger.
    width, per_scale = (7.6, 2.5) if audience == "clinician" else (6.0, 2.6)
    fig = Figure(figsize=(width, 0.6 + per_scale * len(scales)), dpi=100, layout="constrained")
    axes = fig.subplots(len(scales), 1, squeeze=False, sharex=True)
    for ax, scale_id in zip(axes[:, 0], scales, strict=True):
        spec = knowledge.scales[scale_id]
        points = [r for r in readings if r.scale.value == scale_id]
        _symptom_panel(ax, spec, points, audience, lo, hi)
    return fig


def _symptom_panel(ax: Axes, spec: ScaleSpec, points: list[RatingReading], audience: Audience,
                   lo: date, hi: date) -> None:
    _style_axes(ax)
    xs = [_num(r.date) for r in points]
    ys = [r.total for r in points]
    top = min(spec.max, max(max(ys), spec.bands[-1].low if len(spec.bands) > 1 else 0) * 1.15 + 1)
    band_shades = ["#FFFFFF", "#F4F4F4"]
    for i, band in enumerate(spec.bands):
        if band.low > top:
            break
        ax.axhspan(band.low - 0.5 if i else spec.min, min(band.high + 0.5, top),
                   color=band_shades[i % 2], zorder=0, linewidth=0)
        if audience == "clinician":
            mid = (band.low + min(band.high, top)) / 2
            ax.text(1.005, mid, band.label.replace("_", " "), transform=ax.get_yaxis_transform(),
                    fontsize=6.5, color="#8A8A8A", va="center", ha="left")
    baseline = points[0]
    response_at = baseline.total * (1 - spec.response_min_reduction_pct / 100)
    b0 = _num(baseline.date)
    if audience == "clinician":
        resp_label = (f"response: {spec.response_min_reduction_pct:g} % below baseline "
                      f"({baseline.total:g} on {baseline.date.isoformat()}) = {response_at:g}")
        rem_label = f"remission: {_threshold_text(spec)}"
    else:
        resp_label = f"half of your first score ({response_at:g})"
        rem_label = f"very few symptoms (below {spec.remission.value:g})" \
            if spec.remission.op == "<" else f"very few symptoms ({spec.remission.value:g} or less)"
    ax.hlines(response_at, b0, _num(hi), colors="#E69F00", linestyles="--",
              linewidth=1.2, label=resp_label, zorder=2)
    ax.axhline(spec.remission.value, color="#009E73", linestyle="-.", linewidth=1.2,
               label=rem_label, zorder=2)
    ax.plot(xs, ys, color="#0072B2", marker="o", markersize=4, linewidth=1.6, zorder=3,
            label=f"{spec.id} total" if audience == "clinician" else "your score",
            gid=f"readings:{spec.id}")
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(f"{y:g}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontsize=6.5, color=INK)
    ax.set_ylim(spec.min, top)
    ax.set_ylabel(spec.id if audience == "clinician" else f"{spec.id} score", fontsize=8)
    _date_axis(ax, lo, hi)
    ax.grid(axis="x", color="#E5E5E5", linewidth=0.6)
    ax.legend(loc="best", fontsize=7, frameon=True, framealpha=0.9, edgecolor="#DDDDDD")


def shared_span(patient: Patient, a: Assessment) -> tuple[date, date]:
    """One date range for both charts, so they read one above the other."""
    return _date_span(a, patient)


_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)


def to_svg(fig: Figure) -> str:
    """Inline SVG (no XML prolog, no external references), text kept as text."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "trdstage"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "trdstage"})
    svg = _SVG_HEAD.sub("", buf.getvalue(), count=1)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def to_png(fig: Figure, dpi: int = 200) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()
