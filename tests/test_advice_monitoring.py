"""Symptom monitoring: bands, response and remission per scale and per trial; worsening
(PHQ-9 rise >= 5, Löwe 2004); PHQ-9 item 9 > 0 -> urgent; no early improvement (CANMAT)."""

from __future__ import annotations

from datetime import date

from builders import AS_OF, History
from trdstage.advice import advise
from trdstage.domain import RatingReading
from trdstage.domain.results import Assessment
from trdstage.engine import assess


def advised(h: History, readings: list[RatingReading]) -> Assessment:
    patient = h.patient()
    episode = patient.episodes[-1].model_copy(update={"ratings": readings})
    patient = patient.model_copy(update={"episodes": [*patient.episodes[:-1], episode]})
    return advise(patient, assess(patient, as_of=AS_OF))


def phq(day: str, total: float, item9: int | None = None) -> RatingReading:
    items = None if item9 is None else [1, 1, 1, 1, 1, 1, 1, 1, item9]
    return RatingReading(scale="PHQ-9", date=date.fromisoformat(day), total=total, items=items)


def test_positive_item_9_on_the_latest_reading_is_urgent_and_first() -> None:
    h = History(onset="2025-06-01")
    a = advised(h, [phq("2025-11-01", 14, 0), phq("2025-12-15", 15, 1)])
    assert a.alerts[0].severity.value == "urgent"
    assert a.alerts[0].code == "phq9_item9_positive"
    assert "2025-12-15" in a.alerts[0].message


def test_positive_item_9_on_an_earlier_reading_is_a_warning() -> None:
    h = History(onset="2025-06-01")
    a = advised(h, [phq("2025-11-01", 14, 2), phq("2025-12-15", 12, 0)])
    alert = next(al for al in a.alerts if al.code == "phq9_item9_positive")
    assert alert.severity.value == "warning"


def test_worsening_of_five_points_raises_an_alert() -> None:
    h = History(onset="2025-06-01")
    a = advised(h, [phq("2025-11-01", 9), phq("2025-12-01", 14)])
    alert = next(al for al in a.alerts if al.code == "phq9_worsening")
    assert alert.severity.value == "warning" and "5 points" in alert.message
    assert any("Löwe" in s for s in alert.sources)


def test_four_points_or_readings_under_two_weeks_apart_do_not() -> None:
    h = History(onset="2025-06-01")
    assert not any(al.code == "phq9_worsening" for al in
                   advised(h, [phq("2025-11-01", 9), phq("2025-12-01", 13)]).alerts)
    assert not any(al.code == "phq9_worsening" for al in
                   advised(h, [phq("2025-12-01", 9), phq("2025-12-08", 15)]).alerts)


def test_bands_response_and_remission_per_scale_and_per_trial() -> None:
    h = History(onset="2025-01-01")
    h.trial("sertraline", 100, weeks=10, start="2025-02-01", outcome=None)
    a = advised(h, [phq("2025-01-25", 20), phq("2025-04-01", 4)])
    series = a.monitoring.scales[0]
    assert (series.scale, series.latest_band, series.response, series.remission) == (
        "PHQ-9", "minimal", True, True)
    assert [p.band for p in series.readings] == ["severe", "minimal"]
    trial = a.monitoring.trials[0]
    assert (trial.trial_id, trial.reduction_pct, trial.response, trial.remission) == (
        "T1", 80.0, True, True)


def test_no_early_improvement_on_the_current_trial_puts_dose_or_switch_first() -> None:
    h = History(onset="2025-10-01")
    h.trial("sertraline", 50, weeks=4, start="2025-11-20", outcome=None, ongoing=True)
    a = advised(h, [phq("2025-11-18", 20), phq("2025-12-15", 18)])
    assert a.monitoring.trials[0].early_improvement is False
    assert any(al.code == "no_early_improvement" for al in a.alerts)
    assert a.recommendations[0].intervention == "optimize_dose"
    assert a.recommendations[1].category.value == "switch"


def test_no_readings_says_so() -> None:
    a = advised(History(onset="2025-06-01"), [])
    assert a.monitoring.scales == [] and a.monitoring.notes
