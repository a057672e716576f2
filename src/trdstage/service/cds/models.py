"""CDS Hooks 2.0.1 (STU2) documents as pydantic models: discovery, request, response, feedback.

Field names and optionality follow the specification's tables (https://cds-hooks.hl7.org/2.0/).
OPTIONAL attributes without a value are omitted on output, never `null`, `""` or `[]`
(§"Use of JSON"): every response goes through `dump()`. Incoming documents allow extra fields
(a 3.0 client may send more, e.g. `hookVersion`), outgoing ones forbid them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Indicator = Literal["info", "warning", "critical"]
SUMMARY_MAX = 139  # "<140-character summary"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="allow")


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON for the wire: OPTIONAL attributes without a value are left out."""
    out: dict[str, Any] = _prune(model.model_dump(mode="json", exclude_none=True))
    return out


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _prune(item)
            if item in ([], {}, "") and key not in ("cards", "services"):
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


class Coding(_Out):
    code: str
    system: str | None = None
    display: str | None = None


class Source(_Out):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Out):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: list[str] | None = None

    @model_validator(mode="after")
    def _delete_needs_id(self) -> Action:
        if self.type == "delete" and not self.resourceId:
            raise ValueError("a delete action needs resourceId (cds-resp-2)")
        return self


class Suggestion(_Out):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] = Field(default_factory=list)


class Link(_Out):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_smart_only(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext only on smart links (cds-resp-3)")
        return self


class OverrideReasonCoding(Coding):
    display: str  # cds-resp-4: an override reason carries a display


class Card(_Out):
    uuid: str | None = None
    summary: str = Field(max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReasonCoding] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)

    @model_validator(mode="after")
    def _invariants(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("suggestions need selectionBehavior (cds-resp-6)")
        if self.selectionBehavior == "at-most-one" and sum(
                bool(s.isRecommended) for s in self.suggestions) > 1:
            raise ValueError("at-most-one allows one recommended suggestion (cds-resp-1)")
        return self


class Response(_Out):
    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] = Field(default_factory=list)


class Service(_Out):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class Discovery(_Out):
    services: list[Service]


class FhirAuthorization(_In):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None

    def __repr__(self) -> str:  # never print the token
        return f"FhirAuthorization(subject={self.subject!r}, scope={self.scope!r})"

    __str__ = __repr__


class Request(_In):
    hook: str
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> Request:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirAuthorization needs fhirServer (cds-r-1)")
        return self

    def __repr__(self) -> str:
        return f"Request(hook={self.hook!r}, hookInstance={self.hookInstance!r})"

    __str__ = __repr__


class PatientContext(_In):
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1, pattern=r"^[A-Za-z0-9\-\.]{1,64}$")
    encounterId: str | None = None


class OrderContext(PatientContext):
    draftOrders: dict[str, Any]
    selections: list[str] | None = None

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("resourceType") != "Bundle":
            raise ValueError("draftOrders must be a FHIR Bundle")
        return v


class AcceptedSuggestion(_In):
    id: str


class OverrideReason(_In):
    reason: dict[str, Any] | None = None
    userComment: str | None = Field(default=None, max_length=4000)


class FeedbackItem(_In):
    card: str = Field(min_length=1, max_length=100)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions (cds-fb-1)")
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason only with an overridden outcome (cds-fb-2)")
        return self


class Feedback(_In):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)
