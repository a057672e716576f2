"""The charts draw what the record holds: one bar per trial coloured by class, thresholds from
the knowledge data."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from builders import History
from test_report_support import AS_OF, demo
from trdstage.knowledge import load_knowledge
from trdstage.report import charts
from trdstage.report.html import render_html


def _bars(fig, prefix: str) -> dict[str, Rectangle]:
    ax = fig.axes[0]
    return {p.get_gid(): p for p in ax.patches
            if isinstance(p, Rectangle) and (p.get_gid() or "").startswith(prefix)}


def test_timeline_has_one_bar_per_trial_coloured_by_class() -> None:
    _, a = demo()
    fig = charts.timeline_figure(a)
    bars = _bars(fig, "trial:")
    assert sorted(bars) == sorted(f"trial:{t.id}" for t in a.trials)
    for t in a.trials:
        bar = bars[f"trial:{t.id}"]
        colour = to_hex(bar.get_facecolor() if t.adequate else bar.get_edgecolor())
        assert colour == charts.class_colour(t.mechanism).lower()
    # different classes, different colours
    assert len({charts.class_colour(t.mechanism) for t in a.trials}) == len(
        {t.mechanism for t in a.trials})


def test_timeline_shows_ect_courses_and_added_agents() -> None:
    _, a = demo()
    fig = charts.timeline_figure(a)
    assert set(_bars(fig, "ect:")) == {f"ect:{e.id}" for e in a.ect}
    assert set(_bars(fig, "course:")) == {f"course:{c.id}" for c in a.courses}
    assert any(g.startswith("added:liothyronine") for g in _bars(fig, "added:"))


def test_inadequate_trial_is_hatched_and_outcome_written() -> None:
    h = History()
    h.trial("sertraline", 25, weeks=8)  # below the minimum adequate dose
    h.trial("venlafaxine", 225, weeks=8, outcome="response")
    a = h.assess()
    fig = charts.timeline_figure(a)
    bars = _bars(fig, "trial:")
    first, second = (bars[f"trial:{t.id}"] for t in a.trials)
    assert first.get_hatch() and not second.get_hatch()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("not adequate" in t for t in texts)
    assert any(t.startswith("response") for t in texts)


def test_symptom_chart_thresholds_come_from_scales_yaml() -> None:
    h = History()
    h.trial("sertraline", 100, weeks=8)
    h.rating("MADRS", "2024-01-10", 30)
    h.rating("MADRS", "2024-03-10", 20)
    h.rating("PHQ-9", "2024-01-10", 20)
    patient = h.patient()
    a = h.assess()
    fig = charts.symptom_figure(patient, a)
    assert fig is not None and len(fig.axes) == 2
    scales = load_knowledge().scales
    for ax, sid, baseline in zip(fig.axes, ["MADRS", "PHQ-9"], [30, 20], strict=True):
        spec = scales[sid]
        labels = ax.get_legend_handles_labels()[1]
        assert any(f"remission: {spec.remission.op} {spec.remission.value:g}" in x
                   for x in labels)
        expected = baseline * (1 - spec.response_min_reduction_pct / 100)
        assert any(f"= {expected:g}" in x for x in labels)


def test_no_ratings_no_symptom_chart_and_svg_is_inline() -> None:
    h = History()
    h.trial("sertraline", 100)
    a = h.assess(AS_OF)
    assert charts.symptom_figure(h.patient(), a) is None
    svg = charts.to_svg(charts.timeline_figure(a))
    assert svg.startswith("<svg")
    assert 'href="http' not in svg and "url(http" not in svg  # nothing fetched


AGENTS = ["sertraline", "venlafaxine", "nortriptyline", "phenelzine", "bupropion", "mirtazapine",
          "escitalopram", "vortioxetine"]
OUTCOMES = ["response", "partial_response", "non_response", "intolerance", None]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trials=st.lists(st.tuples(st.sampled_from(AGENTS), st.sampled_from([None, 10.0, 150.0]),
                                 st.integers(1, 16), st.sampled_from(OUTCOMES)),
                       min_size=0, max_size=8),
       ect=st.booleans(), ratings=st.lists(st.integers(0, 27), max_size=6))
def test_any_history_renders_one_bar_per_trial(
        trials: list[tuple[str, float | None, int, str | None]], ect: bool,
        ratings: list[int]) -> None:
    h = History(onset="2023-01-01")
    for agent, dose, weeks, outcome in trials:
        h.trial(agent, dose, weeks=weeks, outcome=outcome)
    if ect:
        h.ect()
    for i, total in enumerate(ratings):
        h.rating("PHQ-9", date(2023, 1, 10) + timedelta(days=30 * i), total)
    patient, a = h.patient(), h.assess()
    rows = charts.timeline_rows(a)
    assert [g for g, _, _ in rows if g.startswith("trial:")] == [
        f"trial:{t.id}" for t in sorted(a.trials, key=lambda t: (t.start, t.id))]
    html = render_html(patient, a)
    assert html.count("<svg") == (2 if ratings else 1)
