"""A CDS Hooks client as an EHR would run it: signs each call with an ES384 JWT (a key made at
start, its public half served as a JWKS), fills the prefetch from its FHIR data, and builds the
hook requests (patient-view, order-select, order-sign with a draft MedicationRequest).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from trdstage.service.sandbox.fhir import FhirSandbox, search

Prefetch = Literal["full", "none"]
TOKEN_LIFETIME_S = 300


@dataclass
class SigningKey:
    kid: str = field(default_factory=lambda: f"sandbox-{secrets.token_hex(4)}")
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": "ES384", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}


@dataclass
class CdsClientSim:
    iss: str
    jwks_url: str | None
    fhir_base: str
    fhir: FhirSandbox
    key: SigningKey = field(default_factory=SigningKey)
    tenant: str | None = None

    def token(self, audience: str, **override: Any) -> str:
        """A fresh signed JWT for one call (`override` replaces claims or header fields, for
        tests: `alg`, `kid`, `jku`, `exp`, ...)."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.iss, "aud": audience, "exp": now + TOKEN_LIFETIME_S,
                                  "iat": now, "jti": str(uuid.uuid4()), "sub": "trdstage"}
        if self.tenant:
            claims["tenant"] = self.tenant
        header: dict[str, Any] = {"kid": self.key.kid, "typ": "JWT"}
        if self.jwks_url:
            header["jku"] = self.jwks_url
        for k, v in override.items():
            target = header if k in ("kid", "jku", "typ") else claims
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
        return jwt.encode(claims, self.key.key, algorithm="ES384", headers=header)

    def prefetch(self, templates: dict[str, str], patient_id: str) -> dict[str, Any]:
        """Every template answered from the FHIR data (`null` where there is none)."""
        out: dict[str, Any] = {}
        for key, template in templates.items():
            query = template.replace("{{context.patientId}}", patient_id)
            if "?" not in query:
                rtype, rid = query.split("/", 1)
                out[key] = self.fhir.resource(rtype, rid)
                continue
            rtype, qs = query.split("?", 1)
            hits = search(self.fhir.patients, rtype, dict(parse_qsl(qs)))
            out[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                        "entry": [{"fullUrl": f"{self.fhir_base}/{rtype}/{r['id']}",
                                   "resource": r} for r in hits]} if hits else None
        return out

    def request(self, hook: str, patient_id: str, templates: dict[str, str] | None,
                prefetch: Prefetch = "full", draft: dict[str, Any] | None = None,
                access_token: str | None = None) -> dict[str, Any]:
        context: dict[str, Any] = {"userId": "Practitioner/sandbox-clinician",
                                   "patientId": patient_id}
        if hook in ("order-select", "order-sign"):
            drafts = [draft] if draft is not None else []
            context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": d} for d in drafts]}
            if hook == "order-select":
                context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
        body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()),
                                "fhirServer": self.fhir_base, "context": context}
        if access_token:
            body["fhirAuthorization"] = {"access_token": access_token, "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read",
                                         "subject": "trdstage", "patient": patient_id}
        if prefetch == "full" and templates:
            body["prefetch"] = self.prefetch(templates, patient_id)
        return body


def draft_order(patient_id: str, text: str, per_day: float, unit: str = "tablet",
                rid: str | None = None, rxnorm: str | None = None) -> dict[str, Any]:
    """A draft MedicationRequest as an EHR's order entry makes it."""
    concept: dict[str, Any] = {"text": text}
    if rxnorm:
        concept["coding"] = [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                              "code": rxnorm, "display": text}]
    return {"resourceType": "MedicationRequest", "id": rid or f"draft-{uuid.uuid4().hex[:8]}",
            "status": "draft", "intent": "order", "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": concept,
            "dosageInstruction": [{"text": f"{per_day:g} {unit} per day", "timing": {
                "repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": unit}}]}]}
