"""What each hook computes, once the history is read: pure functions over the domain (no HTTP).

`patient_view` stages and advises the history exactly as `trdstage assess` does and returns the
staging card (or none when the record holds no depressive episode or antidepressant history).
`order_cards` reads each draft MedicationRequest with the FHIR reader (the drug and its daily
dose, as for any MedicationRequest) and checks it against the history with the advice layer's
safety rules.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

from trdstage.adapters.errors import InputError
from trdstage.adapters.fhir.read import FhirRead, read_fhir_resources
from trdstage.advice import advise
from trdstage.advice.context import AdviceContext, build_context
from trdstage.domain.policy import Policy
from trdstage.domain.results import Assessment
from trdstage.engine import assess
from trdstage.knowledge.advice_schema import load_advice_knowledge
from trdstage.service.cds.cards import DraftDrug, Links, order_card, staging_card
from trdstage.service.cds.models import Card

Resources = list[tuple[dict[str, Any], str | None]]


def run_assessment(read: FhirRead, as_of: date, policy: Policy) -> Assessment:
    """The same steps as `trdstage assess`: stage, advise, the reader's warnings first."""
    result = advise(read.patient, assess(read.patient, as_of=as_of, policy=policy))
    if read.notices:
        result = result.model_copy(update={"warnings": [*read.notices, *result.warnings]})
    return result


def patient_view(read: FhirRead | None, as_of: date, policy: Policy,
                 links: Links) -> tuple[Assessment | None, list[Card]]:
    if read is None:
        return None, []
    result = run_assessment(read, as_of, policy)
    return result, [staging_card(result, links)]


@dataclass
class Draft:
    resource_id: str
    resource: dict[str, Any]


def drafts_of(draft_orders: dict[str, Any], selections: list[str] | None) -> list[Draft]:
    """The MedicationRequests of `context.draftOrders` (only the selected ones when the client
    names selections, as order-select does)."""
    out = []
    for entry in draft_orders.get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "MedicationRequest":
            continue
        rid = f"MedicationRequest/{res.get('id')}"
        if selections and rid not in selections:
            continue
        out.append(Draft(rid, res))
    return out


def _as_order(res: dict[str, Any], patient_id: str, as_of: date) -> dict[str, Any]:
    """The draft as an order the reader counts (a draft itself is skipped as 'not taken')."""
    out = copy.deepcopy(res)
    out["status"] = "active"
    out["intent"] = "order"
    out.setdefault("authoredOn", as_of.isoformat())
    out["subject"] = {"reference": f"Patient/{patient_id}"}
    out.pop("dispenseRequest", None)  # a supply length would end the order early
    return out


def read_draft(draft: Draft, medications: Resources, patient_id: str,
               as_of: date) -> list[DraftDrug]:
    """The drug(s) a draft orders, with the daily dose when the dosage says it."""
    try:
        got = read_fhir_resources([(_as_order(draft.resource, patient_id, as_of), None),
                                   *medications], f"draftOrders {draft.resource_id}",
                                  patient_id=patient_id)
    except InputError:
        return []  # not an antidepressant, augmenter or esketamine: no rule of ours applies
    drugs = []
    for ep in got.patient.episodes:
        for reg in ep.medications:
            drugs.append(DraftDrug(draft.resource_id, reg.agent, reg.steps[0].daily_dose_mg))
        for course in ep.courses:
            drugs.append(DraftDrug(draft.resource_id, course.kind.value, None))
    return drugs


def order_context(read: FhirRead | None, resources: Resources, drafts: list[Draft],
                  patient_id: str, as_of: date, policy: Policy) -> AdviceContext:
    """The advice context of the history. A record with no depression history still carries
    age and conditions (flags): it is read with the drafts, which are then left out of the
    current drugs."""
    k = load_advice_knowledge()
    if read is not None:
        return build_context(read.patient, assess(read.patient, as_of=as_of, policy=policy), k)
    orders = [(_as_order(d.resource, patient_id, as_of), None) for d in drafts]
    got = read_fhir_resources([*resources, *orders], "history with draftOrders",
                              patient_id=patient_id)
    ctx = build_context(got.patient, assess(got.patient, as_of=as_of, policy=policy), k)
    ids = {d.resource_id for d in drafts}
    ctx.current = [u for u in ctx.current if u.where.split("#")[0] not in ids]
    return ctx


def order_cards(read: FhirRead | None, resources: Resources, draft_orders: dict[str, Any],
                selections: list[str] | None, patient_id: str, as_of: date, policy: Policy,
                links: Links) -> list[Card]:
    drafts = drafts_of(draft_orders, selections)
    meds = [(r, u) for r, u in resources if r.get("resourceType") == "Medication"]
    meds += [(e["resource"], None) for e in draft_orders.get("entry") or []
             if isinstance(e, dict) and isinstance(e.get("resource"), dict)
             and e["resource"].get("resourceType") == "Medication"]
    wanted = [(d, read_draft(d, meds, patient_id, as_of)) for d in drafts]
    wanted = [(d, drugs) for d, drugs in wanted if drugs]
    if not wanted:
        return []
    ctx = order_context(read, resources, [d for d, _ in wanted], patient_id, as_of, policy)
    cards = []
    for _, drugs in wanted:
        for drug in drugs:
            card = order_card(ctx, drug, links)
            if card is not None:
                cards.append(card)
    return cards
