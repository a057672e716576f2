"""Order cards over native histories (pharmacogenomic results are read from the native file;
the FHIR reader does not read genotypes), and the 2.0.1 invariants on every card that random
orders against every sandbox patient produce."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_support import AS_OF, check_card
from trdstage.adapters.fhir.read import read_fhir_data
from trdstage.adapters.native import read_patient_file
from trdstage.advice.context import build_context
from trdstage.engine import assess
from trdstage.knowledge import load_policy
from trdstage.knowledge.advice_schema import load_advice_knowledge
from trdstage.service.cds import models as m
from trdstage.service.cds.cards import DraftDrug, Links, order_card, short, staging_card
from trdstage.service.cds.hooks import order_cards, run_assessment
from trdstage.service.sandbox.app import ORDERS
from trdstage.service.sandbox.client import draft_order
from trdstage.service.sandbox.fhir import load_patients

EXAMPLES = Path(__file__).parents[1] / "src" / "trdstage" / "examples"
LINKS = Links(docs_url="https://docs.example/cds", app_launch_url="https://app.example/launch",
              report_url="https://app.example/r/1")
PATIENTS = load_patients()


def _ctx(name: str, as_of: date = date(2026, 1, 1)):  # type: ignore[no-untyped-def]
    p = read_patient_file(EXAMPLES / name)
    return build_context(p, assess(p, as_of=as_of), load_advice_knowledge())


def _card(name: str, agent: str, dose: float | None) -> dict[str, object]:
    card = order_card(_ctx(name), DraftDrug("MedicationRequest/x", agent, dose), LINKS)
    assert card is not None
    out = m.dump(card)
    check_card(out)
    return out


def test_cpic_and_cyp2c19_ceiling_for_a_poor_metaboliser() -> None:
    """demo-safety-pgx: CYP2C19 PM, age 70. Escitalopram 10 mg is above the 5 mg DPWG maximum
    for a PM aged 65 or over; CPIC steers away from escitalopram for a PM."""
    card = _card("demo-safety-pgx.yaml", "escitalopram", 10)
    assert card["indicator"] == "warning"
    assert "10 mg/day is above the maximum of 5 mg/day" in str(card["detail"])
    assert "CPIC (Strong)" in str(card["detail"])
    assert "Consider a clinically appropriate antidepressant not predominantly metabolized by " \
        "CYP2C19" in str(card["detail"])


def test_unknown_dose_names_the_ceiling() -> None:
    card = _card("demo-safety-pgx.yaml", "citalopram", None)
    assert "maximum 20 mg/day" in str(card["detail"])


def test_order_rules_are_the_advice_layers() -> None:
    """The card lists exactly what agent_alerts says for the drug (no rule of its own)."""
    from trdstage.advice.safety import agent_alerts

    ctx = _ctx("demo-safety-pgx.yaml")
    current = [u for u in ctx.current if u.name != "sertraline"]
    alerts = agent_alerts(ctx, "sertraline", current, [*current, *ctx.stopped], dose_mg=100)
    card = order_card(ctx, DraftDrug("MedicationRequest/x", "sertraline", 100), LINKS)
    assert card is not None and card.detail is not None
    for a in alerts:
        assert a.message.replace("|", "\\|") in card.detail


def test_summary_is_cut_at_a_word() -> None:
    text = "word " * 60
    assert len(short(text)) <= m.SUMMARY_MAX and short(text).endswith("…")
    assert short("brief") == "brief"


def test_models_refuse_what_the_spec_forbids() -> None:
    src = m.Source(label="x")
    with pytest.raises(ValueError, match="cds-resp-2"):
        m.Action(type="delete", description="d")
    with pytest.raises(ValueError, match="cds-resp-6"):
        m.Card(summary="s", indicator="info", source=src, suggestions=[m.Suggestion(label="l")])
    with pytest.raises(ValueError, match="cds-resp-1"):
        m.Card(summary="s", indicator="info", source=src, selectionBehavior="at-most-one",
               suggestions=[m.Suggestion(label="a", isRecommended=True),
                            m.Suggestion(label="b", isRecommended=True)])
    with pytest.raises(ValueError, match="cds-resp-3"):
        m.Link(label="l", url="https://x", type="absolute", appContext="c")
    with pytest.raises(ValueError):
        m.Card(summary="s" * 140, indicator="info", source=src)
    with pytest.raises(ValueError, match="cds-r-1"):
        m.Request(hook="patient-view", hookInstance="1", context={}, fhirAuthorization={
            "access_token": "t", "token_type": "Bearer", "expires_in": 1, "scope": "s",
            "subject": "c"})
    assert m.dump(m.Card(summary="s", indicator="info", source=src)) == {
        "summary": "s", "indicator": "info", "source": {"label": "x"}}
    assert m.dump(m.Response()) == {"cards": []}


@pytest.mark.parametrize("pid", sorted(PATIENTS))
def test_staging_card_of_every_sandbox_patient(pid: str) -> None:
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": r} for r in PATIENTS[pid]]}
    try:
        read = read_fhir_data(doc, pid)
    except ValueError:
        assert pid == "no-depression"
        return
    check_card(m.dump(staging_card(run_assessment(read, AS_OF, load_policy()), LINKS)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pid=st.sampled_from(sorted(PATIENTS)), drug=st.sampled_from(sorted(ORDERS)),
       per_day=st.integers(min_value=1, max_value=6))
def test_every_order_card_meets_the_spec(pid: str, drug: str, per_day: int) -> None:
    resources = [(r, None) for r in PATIENTS[pid]]
    doc = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": r} for r in PATIENTS[pid]]}
    try:
        read = read_fhir_data(doc, pid)
    except ValueError:
        read = None
    text, _ = ORDERS[drug]
    draft = draft_order(pid, text, per_day)
    cards = order_cards(read, resources, {"resourceType": "Bundle", "type": "collection",
                                          "entry": [{"resource": draft}]}, None, pid, AS_OF,
                        load_policy(), LINKS)
    for card in cards:
        out = m.dump(card)
        check_card(out)
        if card.indicator == "critical":
            assert card.suggestions and card.suggestions[0].actions[0].resourceId == [
                f"MedicationRequest/{draft['id']}"]
        else:
            assert not card.suggestions
