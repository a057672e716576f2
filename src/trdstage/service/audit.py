"""The audit trail: `record()` adds one AuditEvent row in the caller's transaction (so the
event commits or rolls back with the action it describes); `to_fhir()` renders a row as a FHIR
R4 AuditEvent shaped after IHE Basic Audit Log Patterns (BALP): RESTful interaction type and
subtype, the agent who asked (with its network address), trdstage as the observer, the patient
and the request id as entities.

Rows hold ids, codes and outcomes only, never patient data, passwords or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request

from trdstage.service.models import Account, AuditEvent

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECURITY_SOURCE = "http://terminology.hl7.org/CodeSystem/security-source-type"
OBSERVER = "trdstage"


class Action(StrEnum):
    create = "C"
    read = "R"
    update = "U"
    delete = "D"
    execute = "E"


class Outcome(IntEnum):
    success = 0
    minor_failure = 4  # e.g. refused: bad credentials, wrong role, unknown object
    serious_failure = 8
    major_failure = 12


@dataclass(frozen=True)
class Kind:
    """An event type and subtype (system, code, display)."""

    type_system: str
    type_code: str
    type_display: str
    subtype_system: str
    subtype_code: str
    subtype_display: str


def rest(interaction: str) -> Kind:
    """A RESTful interaction (read, vread, update, create, search-type, history-instance,
    operation): the BALP Read/Create/Update/Query shape."""
    return Kind(EVENT_TYPE, "rest", "Restful Operation", RESTFUL, interaction, interaction)


LOGIN = Kind(DICOM, "110114", "User Authentication", DICOM, "110122", "Login")
LOGOUT = Kind(DICOM, "110114", "User Authentication", DICOM, "110123", "Logout")
SECURITY_ALERT = Kind(DICOM, "110113", "Security Alert", DICOM, "110127",
                      "Emergency Override Started")


@dataclass(frozen=True)
class Actor:
    """Who acted: an account, a CDS client (`kind="client"`, name = its issuer), an
    unauthenticated caller (`kind="anonymous"`, name = what it claimed, if anything)."""

    name: str
    kind: str = "account"
    account_id: int | None = None

    @classmethod
    def of(cls, account: Account) -> Actor:
        return cls(account.name, "account", account.id)


ANONYMOUS = Actor("anonymous", "anonymous")


def client_address(request: Request | None) -> str:
    if request is None or request.client is None:
        return ""
    return request.client.host


def request_id(request: Request | None) -> str:
    if request is None:
        return ""
    return str(getattr(request.state, "request_id", ""))


def record(session: Session, *, actor: Actor, kind: Kind, action: Action,
           outcome: Outcome = Outcome.success, request: Request | None = None,
           patient_id: str | None = None, entity: str | None = None,
           query: str | None = None, detail: str = "") -> AuditEvent:
    """Add an AuditEvent to `session` (not committed: the caller's commit writes it with the
    action). `entity` names the object ("Assessment/<id>"), `query` a search's parameters
    (never patient data), `detail` why it failed."""
    event = AuditEvent(
        type_system=kind.type_system, type_code=kind.type_code,
        subtype_system=kind.subtype_system, subtype_code=kind.subtype_code,
        action=action.value, outcome=int(outcome), outcome_desc=detail[:1000],
        agent_kind=actor.kind, agent_name=actor.name[:300], account_id=actor.account_id,
        source_address=client_address(request), request_id=request_id(request),
        method=request.method if request is not None else "",
        path=request.url.path[:500] if request is not None else "",
        patient_id=patient_id, entity=entity, query=query)
    session.add(event)
    return event


def _display(kind: Kind) -> tuple[dict[str, str], dict[str, str]]:
    return ({"system": kind.type_system, "code": kind.type_code, "display": kind.type_display},
            {"system": kind.subtype_system, "code": kind.subtype_code,
             "display": kind.subtype_display})


_DISPLAYS = {(k.type_code, k.subtype_code): k for k in (LOGIN, LOGOUT, SECURITY_ALERT)}


def to_fhir(event: AuditEvent, base_url: str = "") -> dict[str, Any]:
    """The row as a FHIR R4 AuditEvent (JSON-ready dict)."""
    kind = _DISPLAYS.get((event.type_code, event.subtype_code)) or Kind(
        event.type_system, event.type_code,
        "Restful Operation" if event.type_code == "rest" else event.type_code,
        event.subtype_system, event.subtype_code, event.subtype_code)
    type_coding, subtype_coding = _display(kind)
    who: dict[str, Any] = {"display": event.agent_name}
    if event.account_id is not None:
        who["identifier"] = {"system": f"{base_url}/accounts", "value": event.agent_name}
    elif event.agent_kind == "client":
        who["identifier"] = {"system": "urn:ietf:rfc:3986", "value": event.agent_name}
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                             "display": "information recipient"}]},
        "who": who, "requestor": True,
    }
    if event.source_address:
        agent["network"] = {"address": event.source_address, "type": "2"}  # 2 = IP address
    entities: list[dict[str, Any]] = []
    if event.request_id:
        entities.append({"what": {"identifier": {"value": event.request_id}},
                         "type": {"system": BALP_ENTITY, "code": "XrequestId"}})
    if event.patient_id:
        entities.append({"what": {"reference": f"Patient/{event.patient_id}"},
                         "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                         "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}})
    if event.entity:
        entities.append({"what": {"reference": event.entity},
                         "type": {"system": ENTITY_TYPE, "code": "2",
                                  "display": "System Object"},
                         "role": {"system": OBJECT_ROLE, "code": "4",
                                  "display": "Domain Resource"}})
    if event.query:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2",
                                  "display": "System Object"},
                         "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                         "description": event.query})
    raw: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": str(event.id),
        "type": type_coding, "subtype": [subtype_coding], "action": event.action,
        "recorded": event.recorded.isoformat(), "outcome": str(event.outcome),
        "agent": [agent],
        "source": {"observer": {"display": OBSERVER},
                   "type": [{"system": SECURITY_SOURCE, "code": "4",
                             "display": "Application Server"}]},
    }
    if event.outcome_desc:
        raw["outcomeDesc"] = event.outcome_desc
    if event.method or event.path:
        raw["source"]["site"] = f"{event.method} {event.path}".strip()
    if entities:
        raw["entity"] = entities
    return raw


def validate_fhir(raw: dict[str, Any]) -> None:
    """Raise if `raw` is not a valid R4 AuditEvent (tests and debugging)."""
    from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

    FhirAuditEvent.model_validate(raw)
