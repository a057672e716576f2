"""Safety rules taken from product labels and regulators: vortioxetine and fluoxetine washouts,
strong CYP2D6 inhibitors, citalopram/escitalopram QT rules (UK/EU labelling), the escitalopram
ceilings, paroxetine in pregnancy."""

from __future__ import annotations

from typing import Any

from builders import AS_OF, History
from trdstage.advice import advise
from trdstage.domain.advice import Recommendation
from trdstage.domain.patient import PgxResult
from trdstage.domain.results import Assessment
from trdstage.engine import assess


def advised(h: History, **update: Any) -> Assessment:
    patient = h.patient().model_copy(update=update)
    return advise(patient, assess(patient, as_of=AS_OF))


def rec(a: Assessment, option: str) -> Recommendation:
    return next(r for r in a.recommendations if r.intervention == option)


def three_failures(h: History) -> None:
    h.trial("sertraline", 150, weeks=8, start="2024-07-01")
    h.trial("duloxetine", 120, weeks=8, start="2024-09-01")
    h.trial("nortriptyline", 100, weeks=8, start="2024-11-01")


def test_vortioxetine_to_maoi_needs_21_days() -> None:
    h = History(onset="2024-06-01")
    three_failures(h)
    # vortioxetine stopped 16 days before the as-of date: past 14 days, inside 21
    h.trial("vortioxetine", 20, weeks=8, start="2025-10-18")
    maoi = rec(advised(h), "switch_maoi")
    washouts = [al for al in maoi.alerts if al.code == "washout_vortioxetine_to_maoi"]
    assert washouts and washouts[0].severity.value == "contraindicated"
    assert "21 days" in washouts[0].message
    assert maoi.blocked


def test_thioridazine_within_five_weeks_of_fluoxetine_is_flagged() -> None:
    h = History(onset="2024-06-01")
    h.trial("sertraline", 150, weeks=8, start="2024-07-01")
    h.trial("fluoxetine", 40, weeks=10, start="2025-10-02")  # stopped 20 days before as-of
    a = advised(h, other_medications=["thioridazine"])
    alert = next(al for al in a.alerts
                 if al.code == "washout_fluoxetine_to_thioridazine_not_respected")
    assert "5 weeks" in alert.message and alert.severity.value == "warning"


def test_bupropion_counts_as_a_strong_cyp2d6_inhibitor() -> None:
    h = History(onset="2025-01-01")
    h.trial("bupropion", 300, weeks=8, start="2025-09-01", ongoing=True)
    h.trial("vortioxetine", 10, weeks=8, start="2025-10-01", ongoing=True)
    codes = {al.code for al in advised(h).alerts}
    assert "vortioxetine_strong_2d6_inhibitor" in codes
    h2 = History(onset="2025-01-01")
    h2.trial("nortriptyline", 75, weeks=8, start="2025-09-01", ongoing=True)
    h2.trial("bupropion", 300, weeks=8, start="2025-10-01", ongoing=True)
    alert = next(al for al in advised(h2).alerts if al.code == "strong_2d6_inhibitor_tca")
    assert "Bupropion" in alert.message


def test_vortioxetine_with_bupropion_says_halve_the_dose() -> None:
    h = History(onset="2025-01-01")
    h.trial("vortioxetine", 10, weeks=8, start="2025-09-01", ongoing=True)
    h.trial("bupropion", 300, weeks=8, start="2025-10-01", ongoing=True)
    alert = next(al for al in advised(h).alerts if al.code == "vortioxetine_strong_2d6_inhibitor")
    assert "by half" in alert.message


def test_escitalopram_with_a_qt_prolonging_drug_is_contraindicated_uk_eu() -> None:
    h = History(onset="2025-01-01")
    h.trial("escitalopram", 10, weeks=8, start="2025-10-01", ongoing=True)
    a = advised(h, other_medications=["amiodarone"])
    alert = next(al for al in a.alerts if al.code == "citalopram_escitalopram_qt_prolonging")
    assert alert.severity.value == "contraindicated"
    assert "UK/EU" in alert.message and "mhra-dsu-2011" in alert.source_keys


def test_escitalopram_long_qt_is_a_contraindication_naming_its_jurisdiction() -> None:
    h = History(onset="2025-01-01", flags=["long_qt"])
    h.trial("escitalopram", 10, weeks=8, start="2025-10-01", ongoing=True)
    alert = next(al for al in advised(h).alerts if al.code == "escitalopram_long_qt")
    assert alert.severity.value == "contraindicated" and "UK/EU" in alert.message


def test_escitalopram_10_mg_cap_in_hepatic_impairment() -> None:
    h = History(onset="2025-01-01", flags=["hepatic_impairment"])
    h.trial("escitalopram", 20, weeks=8, start="2025-10-01", ongoing=True)
    alert = next(al for al in advised(h).alerts if al.code == "escitalopram_max_dose")
    assert "maximum of 10 mg/day" in alert.message and "hepatic impairment" in alert.message
    assert "mhra-dsu-2011" in alert.source_keys


def test_escitalopram_older_age_cap_is_sourced_to_mhra() -> None:
    h = History(onset="2025-01-01")
    h.trial("escitalopram", 20, weeks=8, start="2025-10-01", ongoing=True)
    patient = h.patient().model_copy(update={"birth_date": AS_OF.replace(year=AS_OF.year - 70)})
    a = advise(patient, assess(patient, as_of=AS_OF))
    alert = next(al for al in a.alerts if al.code == "escitalopram_max_dose")
    assert "mhra-dsu-2011" in alert.source_keys and "unverified" not in alert.message


def test_paroxetine_in_pregnancy_warns_with_the_label_figures_and_is_listed_last() -> None:
    h = History(onset="2024-06-01", flags=["pregnancy"])
    h.trial("venlafaxine", 225, weeks=8, start="2024-07-01")
    h.trial("mirtazapine", 45, weeks=8, start="2024-09-01")
    a = advised(h, pharmacogenomics=[PgxResult(gene="CYP2C19", phenotype="UM")])
    switch = rec(a, "switch_ssri")
    alert = next(al for al in switch.alerts if al.code == "paroxetine_pregnancy")
    assert alert.severity.value == "warning"
    assert "OR 1.8" in alert.message and "1.1-2.8" in alert.message
    candidates = next(r for r in switch.rationale if r.startswith("candidates:"))
    assert candidates.endswith("paroxetine")
    assert any("listed after the alternatives" in r for r in switch.rationale)


def test_paroxetine_without_pregnancy_has_no_pregnancy_warning() -> None:
    h = History(onset="2024-06-01")
    h.trial("venlafaxine", 225, weeks=8, start="2024-07-01")
    switch = rec(advised(h), "switch_ssri")
    assert not any(al.code == "paroxetine_pregnancy" for al in switch.alerts)
