"""Hypothesis invariants over random histories (issue 2 §8)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from trdstage.domain import DoseStep, Episode, MedicationRegimen, Patient
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge import load_knowledge

AS_OF = date(2026, 1, 1)
ONSET = date(2022, 1, 1)
KNOWLEDGE = load_knowledge()
DOSED = sorted(n for n, a in KNOWLEDGE.antidepressants.items() if a.min_adequate_mg)
EU_ORDER = ["none", "NR", "TRD1", "TRD2", "TRD3", "TRD4", "TRD5", "CRD"]

trial_spec = st.tuples(
    st.sampled_from(DOSED),
    st.sampled_from([0.5, 1.0, 1.5, 2.0]),          # dose as a multiple of the minimum
    st.integers(min_value=2, max_value=16),          # weeks
    st.sampled_from(["non_response", "partial_response", "response", "intolerance", None]),
    st.sampled_from(["good", "partial", "poor", "unknown"]),
)
histories = st.lists(trial_spec, min_size=0, max_size=8)


def _patient(specs: list[tuple[str, float, int, str | None, str]],
             severity: str = "moderate") -> Patient:
    start = ONSET + timedelta(days=14)
    meds = []
    for i, (agent, factor, weeks, outcome, adherence) in enumerate(specs):
        minimum = KNOWLEDGE.antidepressants[agent].min_adequate_mg or 1
        end = start + timedelta(weeks=weeks)
        meds.append(MedicationRegimen(
            id=f"rx{i}", agent=agent, adherence=adherence, outcome=outcome,
            steps=[DoseStep(start=start, end=end, daily_dose_mg=minimum * factor)]))
        start = end + timedelta(days=40)  # > 30-day merge gap, no overlaps
    return Patient(id="h", episodes=[Episode(onset=ONSET, severity=severity, medications=meds)])


def _values(a: Assessment) -> tuple[int, float, int, int, int]:
    s = a.staging
    return (s.thase_rush.stage, s.mgh.score, s.maudsley.score or 0,
            EU_ORDER.index(s.european.category), int(s.regulatory.met))


def _not_lower(after: Assessment, before: Assessment) -> bool:
    return all(x >= y for x, y in zip(_values(after), _values(before), strict=True))


@settings(max_examples=150, deadline=None)
@given(histories, st.sampled_from(DOSED), st.sampled_from(["non_response", "partial_response"]))
def test_adding_a_failed_adequate_trial_never_lowers_any_result(
        specs: list[tuple[str, float, int, str | None, str]], agent: str, outcome: str) -> None:
    before = assess(_patient(specs), as_of=AS_OF)
    after = assess(_patient([*specs, (agent, 1.0, 8, outcome, "good")]), as_of=AS_OF)
    assert sum(t.failed for t in after.trials) == sum(t.failed for t in before.trials) + 1
    assert _not_lower(after, before)


@settings(max_examples=150, deadline=None)
@given(histories, st.randoms(use_true_random=False))
def test_trial_order_never_changes_the_default_thase_rush_stage(
        specs: list[tuple[str, float, int, str | None, str]], rnd: object) -> None:
    shuffled = list(specs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = assess(_patient(specs), as_of=AS_OF).staging.thase_rush.stage
    b = assess(_patient(shuffled), as_of=AS_OF).staging.thase_rush.stage
    assert a == b


@settings(max_examples=150, deadline=None)
@given(histories.filter(bool), st.data())
def test_a_trial_made_inadequate_never_raises_a_result(
        specs: list[tuple[str, float, int, str | None, str]], data: st.DataObject) -> None:
    i = data.draw(st.integers(min_value=0, max_value=len(specs) - 1))
    how = data.draw(st.sampled_from(["dose", "duration", "adherence"]))
    agent, factor, weeks, outcome, adherence = specs[i]
    if how == "dose":
        changed = (agent, 0.5, weeks, outcome, adherence)
    elif how == "duration":
        changed = (agent, factor, 3, outcome, adherence)
    else:
        changed = (agent, factor, weeks, outcome, "poor")
    worse = [*specs[:i], changed, *specs[i + 1:]]
    before = assess(_patient(specs), as_of=AS_OF)
    after = assess(_patient(worse), as_of=AS_OF)
    assert not after.trials[i].adequate
    assert _not_lower(before, after)
