"""MGH-S, Maudsley, European and regulatory results under the issue's defaults."""

from builders import History


def test_mgh_points_per_failed_trial_dose_duration_augmentation_and_ect() -> None:
    h = History()
    h.trial("venlafaxine", None, steps=[(150, 4), (225, 10)],        # raised above 150: +0.5,
            added=[("lithium", 600, 4, 6)])                          # 14 wk: +0.5, augmented +0.5
    h.trial("sertraline", 100, weeks=13)                             # > 12 weeks: +0.5
    h.trial("mirtazapine", 15, weeks=8, outcome="response")          # not failed: 0
    h.ect(sessions=8, laterality="unilateral")                       # failed ECT: +3
    mgh = h.assess().staging.mgh
    assert mgh.score == (1 + 0.5 + 0.5 + 0.5) + (1 + 0.5) + 3
    assert [i.id for i in mgh.items] == ["T1", "T2", "ect1"]


def test_mgh_titration_up_to_the_minimum_is_not_optimisation() -> None:
    h = History()
    h.trial("venlafaxine", None, steps=[(75, 2), (150, 8)])
    assert h.assess().staging.mgh.score == 1


def test_maudsley_not_applicable_without_a_failed_antidepressant() -> None:
    h = History()
    h.trial("sertraline", 100, outcome="response")
    msm = h.assess().staging.maudsley
    assert msm.score is None and msm.band is None
    assert "not applicable" in msm.reasons[0]


def test_maudsley_not_computable_without_severity() -> None:
    h = History(severity=None)
    h.trial("sertraline", 100)
    msm = h.assess().staging.maudsley
    assert msm.score is None and "severity" in msm.reasons[0]


def test_maudsley_components_and_bands() -> None:
    h = History(onset="2023-06-01", severity="severe", psychotic=True)  # 31 months to 2026-01
    for agent, dose in [("sertraline", 100), ("venlafaxine", 225), ("mirtazapine", 30),
                        ("bupropion", 300), ("nortriptyline", 100)]:
        h.trial(agent, dose)
    h.trial("citalopram", 40, added=[("lithium", 600, 0, 8)])
    h.ect(sessions=3, outcome="response")  # ECT used counts even when not failed
    msm = h.assess().staging.maudsley
    assert msm.components == {"duration": 3, "severity": 5, "failed_antidepressants": 3,
                              "augmentation": 1, "ect": 1}
    assert msm.score == 13 and msm.band == "severe"


def test_maudsley_duration_boundaries() -> None:
    # 2024-01-01 + 366 days = 2025-01-01: exactly 12 calendar months
    for months_days, points in [(365, 1), (366, 1), (367, 2), (731, 2), (732, 3)]:
        h = History(onset="2024-01-01")
        h.trial("sertraline", 100)
        from datetime import date, timedelta
        as_of = date(2024, 1, 1) + timedelta(days=months_days)
        msm = h.assess(as_of=as_of).staging.maudsley
        assert msm.components is not None
        assert msm.components["duration"] == points, months_days


def test_maudsley_counts_distinct_failed_agents() -> None:
    h = History()
    first = h.trial("sertraline", 100)
    h.trial("venlafaxine", 225)
    h.trial("sertraline", 150, start=first.steps[0].end.replace(year=2025))  # type: ignore[union-attr]
    msm = h.assess().staging.maudsley
    assert msm.components is not None and msm.components["failed_antidepressants"] == 1
    assert "2 failed antidepressant" in msm.reasons[2]


def test_european_by_number_of_failed_trials() -> None:
    expected = ["none", "NR", "TRD1", "TRD2", "TRD3", "TRD4", "TRD5", "TRD5"]
    agents = [("sertraline", 100), ("venlafaxine", 225), ("mirtazapine", 30),
              ("bupropion", 300), ("nortriptyline", 100), ("citalopram", 40),
              ("duloxetine", 60)]
    for n, category in enumerate(expected):
        h = History(onset="2025-01-01", gap_days=0)
        for agent, dose in agents[:n]:
            h.trial(agent, dose, weeks=6)
        assert h.assess(as_of="2026-01-01").staging.european.category == category, n


def test_european_crd_when_failures_span_twelve_months() -> None:
    h = History(onset="2023-01-01")
    h.trial("sertraline", 100, weeks=8)
    h.trial("venlafaxine", 225, weeks=8, start="2023-12-15")
    eu = h.assess().staging.european
    assert eu.category == "CRD" and eu.resistant_span_months is not None
    assert eu.resistant_span_months >= 12


def test_regulatory_needs_two_different_agents_in_the_current_episode() -> None:
    h = History()
    h.trial("sertraline", 100)
    h.trial("sertraline", 150, start="2025-01-01")
    assert not h.assess().staging.regulatory.met  # same agent twice
    h.trial("fluoxetine", 40)
    reg = h.assess().staging.regulatory
    assert reg.met and reg.failed_agents == ["fluoxetine", "sertraline"]
    assert reg.first_met is not None


def test_regulatory_ignores_lifetime_scope_and_flags_mild_episodes() -> None:
    h = History(onset="2025-01-01", severity="mild")
    h.trial("fluoxetine", 40, start="2023-01-01")
    h.trial("venlafaxine", 225)
    reg = h.assess(policy="lifetime").staging.regulatory
    assert not reg.met
    assert any("current episode only" in c for c in reg.caveats)
    assert any("moderate to severe" in c for c in reg.caveats)
