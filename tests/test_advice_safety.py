"""Safety alerts: each rule from its source (knowledge/data/safety.yaml), over current drugs and
over proposed options; a contraindicated option stays listed, blocked, with its reason."""

from __future__ import annotations

from datetime import date
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


def codes(a: Assessment) -> dict[str, str]:
    return {al.code: al.severity.value for al in a.alerts}


def two_failures(h: History) -> None:
    h.trial("sertraline", 150, weeks=8)
    h.trial("venlafaxine", 225, weeks=8)


def test_maoi_with_a_current_ssri_is_contraindicated() -> None:
    h = History(onset="2025-01-01")
    h.trial("phenelzine", 60, weeks=8, start="2025-06-01", ongoing=True)
    h.trial("sertraline", 100, weeks=8, start="2025-10-01", ongoing=True)
    a = advised(h)
    assert codes(a)["maoi_serotonergic_combination"] == "contraindicated"
    alert = next(al for al in a.alerts if al.code == "maoi_serotonergic_combination")
    assert any("NG222" in s for s in alert.sources)


def test_adding_mirtazapine_to_a_current_maoi_is_listed_blocked_with_its_reason() -> None:
    h = History(onset="2024-06-01")
    two_failures(h)
    h.trial("phenelzine", 60, weeks=8, outcome="partial_response", ongoing=True,
            start="2025-10-01")
    a = advised(h)
    combo = rec(a, "combine_mirtazapine")
    assert combo.blocked
    assert combo.blocked_reason and "serotonin syndrome" in combo.blocked_reason
    # blocked options come after every unblocked one
    ranks = [r.blocked for r in a.recommendations]
    assert ranks == sorted(ranks)


def test_fluoxetine_to_maoi_needs_five_weeks() -> None:
    h = History(onset="2024-06-01")
    h.trial("sertraline", 150, weeks=8, start="2024-07-01")
    h.trial("duloxetine", 120, weeks=8, start="2024-09-01")
    h.trial("nortriptyline", 100, weeks=8, start="2024-11-01")
    # fluoxetine stopped 20 days before the as-of date
    h.trial("fluoxetine", 40, weeks=10, start="2025-10-02")
    a = advised(h)
    maoi = rec(a, "switch_maoi")
    washouts = [al for al in maoi.alerts if al.code == "washout_fluoxetine_to_maoi"]
    assert washouts and all(al.severity.value == "contraindicated" for al in washouts)
    assert "5 weeks" in washouts[0].message
    assert maoi.blocked and "contraindicated" in (maoi.blocked_reason or "")


def test_current_ssri_to_maoi_switch_warns_of_the_14_day_washout() -> None:
    h = History(onset="2024-06-01")
    h.trial("sertraline", 150, weeks=8, start="2024-07-01")
    h.trial("duloxetine", 120, weeks=8, start="2024-09-01")
    h.trial("nortriptyline", 100, weeks=8, start="2024-11-01")
    h.trial("escitalopram", 20, weeks=8, start="2025-09-01", ongoing=True)
    maoi = rec(advised(h), "switch_maoi")
    alert = next(al for al in maoi.alerts if al.code == "washout_serotonergic_to_maoi")
    assert alert.severity.value == "warning" and "14 days" in alert.message
    assert not maoi.blocked


def test_history_with_a_washout_not_respected_is_flagged() -> None:
    h = History(onset="2025-01-01")
    h.trial("phenelzine", 60, weeks=8, start="2025-03-17")
    h.trial("escitalopram", 20, weeks=20, start="2025-05-19", ongoing=True)
    a = advised(h)
    assert codes(a)["washout_maoi_to_serotonergic_not_respected"] == "warning"


def test_serotonin_syndrome_pair_with_a_co_medication() -> None:
    h = History(onset="2025-06-01")
    h.trial("sertraline", 100, weeks=8, start="2025-10-01", ongoing=True)
    a = advised(h, other_medications=["Tramadol"])
    assert codes(a)["serotonergic_other_serotonergic"] == "warning"


def test_citalopram_ceiling_over_60_and_in_cyp2c19_poor_metabolisers() -> None:
    h = History(onset="2025-06-01")
    h.trial("citalopram", 40, weeks=8, start="2025-10-01", ongoing=True)
    older = advised(h, birth_date=date(1960, 1, 1))
    alert = next(al for al in older.alerts if al.code == "citalopram_max_dose")
    assert "maximum of 20 mg/day" in alert.message and "over 60" in alert.message
    young = advised(h, birth_date=date(1990, 1, 1))
    assert "citalopram_max_dose" not in codes(young)
    pm = advised(h, birth_date=date(1990, 1, 1),
                 pharmacogenomics=[PgxResult(gene="CYP2C19", phenotype="Poor Metabolizer")])
    assert "poor metaboliser" in next(
        al for al in pm.alerts if al.code == "citalopram_max_dose").message


def test_escitalopram_switch_shows_the_lower_maximum_at_65() -> None:
    h = History(onset="2024-06-01")
    h.trial("sertraline", 150, weeks=8, start="2024-07-01")
    a = advised(h, birth_date=date(1955, 1, 1))
    ssri = rec(a, "switch_ssri")
    alert = next(al for al in ssri.alerts if al.code == "escitalopram_max_dose")
    assert "10 mg/day" in alert.message


def test_lithium_interactions_and_monitoring() -> None:
    h = History(onset="2024-06-01")
    two_failures(h)
    h.trial("escitalopram", 20, weeks=20, start="2025-08-01", ongoing=True,
            added=[("lithium", 800, 4, 16)])
    # keep the lithium ongoing: rebuild the last regimen's added agent without an end
    patient = h.patient()
    episode = patient.episodes[-1]
    regimen = episode.medications[-1]
    added = regimen.added[0]
    open_step = added.steps[0].model_copy(update={"end": None})
    open_added = added.model_copy(update={"steps": [open_step]})
    regimen = regimen.model_copy(update={"added": [open_added]})
    episode = episode.model_copy(update={"medications": [*episode.medications[:-1], regimen]})
    patient = patient.model_copy(update={"episodes": [episode],
                                         "other_medications": ["hydrochlorothiazide", "ibuprofen"]})
    a = advise(patient, assess(patient, as_of=AS_OF))
    c = codes(a)
    assert c["lithium_thiazide"] == "warning"
    assert c["lithium_nsaid"] == "warning"
    assert c["lithium_serotonergic"] == "warning"
    assert c["lithium_monitoring"] == "info"
    assert any(al.code == "ect_lithium" for al in rec(a, "ect").alerts)


def test_bupropion_blocked_with_a_seizure_disorder_or_eating_disorder() -> None:
    for flag in ("seizure_disorder", "eating_disorder"):
        h = History(onset="2024-06-01", flags=[flag])
        h.trial("sertraline", 150, weeks=8)
        a = advised(h)
        switch = rec(a, "switch_bupropion")
        assert switch.blocked and "contraindicated" in (switch.blocked_reason or "")
        assert any(al.code.startswith("bupropion_") and al.severity.value == "contraindicated"
                   for al in switch.alerts)


def test_tca_switch_warns_of_overdose_lethality_when_suicidality_is_flagged() -> None:
    h = History(onset="2024-06-01", flags=["suicidality"])
    two_failures(h)
    tca = rec(advised(h), "switch_tca")
    alert = next(al for al in tca.alerts if al.code == "tca_overdose_suicidality")
    assert alert.severity.value == "warning" and "lofepramine" in alert.message


def test_esketamine_contraindications_block_and_monitoring_is_listed() -> None:
    h = History(onset="2024-06-01", flags=["aneurysmal_vascular_disease"])
    two_failures(h)
    esk = rec(advised(h), "esketamine_intranasal")
    assert esk.blocked and "aneurysmal" in (esk.blocked_reason or "")
    h2 = History(onset="2024-06-01")
    two_failures(h2)
    esk2 = rec(advised(h2), "esketamine_intranasal")
    assert not esk2.blocked
    assert any(al.code == "esketamine_monitoring" and "2 hours" in al.message
               for al in esk2.alerts)
    nice = next(g for g in esk2.grades if g.guideline == "NICE TA854")
    assert nice.grade == "not recommended"


def test_ect_cautions_and_pregnancy() -> None:
    h = History(onset="2024-06-01", flags=["pregnancy", "recent_mi"])
    two_failures(h)
    a = advised(h)
    ect = rec(a, "ect")
    got = {al.code: al.severity.value for al in ect.alerts}
    assert got["ect_high_risk_condition"] == "warning"
    assert got["ect_pregnancy"] == "info"
    assert not ect.blocked  # ECT has no absolute contraindications (APA 2000)
    lithium = rec(a, "augment_lithium")
    assert any(al.code == "lithium_pregnancy" for al in lithium.alerts)


def test_unknown_flags_are_reported_not_silently_used() -> None:
    h = History(onset="2024-06-01", flags=["made_up_flag"])
    h.trial("sertraline", 150, weeks=8)
    assert codes(advised(h))["flag_not_recognised"] == "info"
