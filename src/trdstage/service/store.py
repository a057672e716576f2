"""What the service stores, as operations on a session (the caller commits): patients with
every version of their native history, and assessments. Used by the REST API, the demo and
the other parts of the service; every lookup is scoped to the account that owns the patient.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trdstage import assessing
from trdstage.adapters.errors import InputError
from trdstage.domain.patient import Patient as DomainPatient
from trdstage.domain.policy import Policy
from trdstage.knowledge import KnowledgeError, load_policy, policy_names
from trdstage.service.models import Account, Assessment, Patient, PatientVersion, utcnow

JSON_TYPES = ("application/json", "application/fhir+json")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


class UnsupportedMediaType(ValueError):
    """A body in a media type this endpoint does not read (415)."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def read_body(data: bytes, content_type: str | None, name: str = "body") -> Any:
    """The body as a JSON-ready value: JSON (application/json, application/fhir+json) or
    YAML (application/yaml); dates in YAML become ISO strings."""
    media = media_type(content_type)
    if media not in JSON_TYPES + YAML_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r}: expected one of "
            f"{', '.join(JSON_TYPES + YAML_TYPES)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, f"not UTF-8 text ({exc.reason})") from exc
    if media in JSON_TYPES:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{exc.lineno}:{exc.colno}",
                             f"malformed JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise InputError(name, "malformed JSON: nested too deeply") from exc
        try:  # a \ud800-style escape decodes to text no database can store
            json.dumps(raw, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(name, "malformed JSON: an unpaired surrogate escape") from exc
        return raw
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise InputError(where, f"malformed YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(name, f"malformed YAML: {exc}") from exc
    except RecursionError as exc:
        raise InputError(name, "malformed YAML: nested too deeply") from exc
    return json.loads(json.dumps(raw, default=_iso))


def _iso(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def read_input(raw: Any, name: str = "body") -> assessing.ReadInput:
    """A FHIR Bundle or a native patient document, validated as `trdstage assess` does."""
    if isinstance(raw, dict) and "resourceType" in raw:
        from trdstage.adapters.fhir import read_fhir_data

        got = read_fhir_data(raw, name)
        return assessing.ReadInput(got.patient, got.notices, got.sources, fhir=True)
    return assessing.ReadInput(native_patient(raw, name))


def native_patient(raw: Any, name: str = "body") -> DomainPatient:
    from trdstage.adapters.native import patient_from_mapping

    if isinstance(raw, dict) and "resourceType" in raw:
        raise InputError(f"{name}: resourceType", "a stored patient is a native patient "
                         "document (`trdstage schema`); a FHIR Bundle can be assessed with "
                         "POST /api/v1/assess")
    return patient_from_mapping(raw, name)


def bundled_policy(name: str) -> Policy:
    """A bundled policy by name (files on the server's disk are not offered)."""
    if name not in policy_names():
        raise InputError("policy", f"unknown policy {name!r}; bundled policies: "
                         f"{', '.join(policy_names())}")
    try:
        return load_policy(name)
    except KnowledgeError as exc:  # pragma: no cover - bundled policies load
        raise InputError("policy", str(exc)) from exc


def digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@cache
def knowledge_version() -> str:
    """A digest of the bundled knowledge files (thresholds, doses, sources, policies)."""
    data = resources.files("trdstage.knowledge") / "data"
    h = hashlib.sha256()
    stack = [data]
    files = []
    while stack:
        folder = stack.pop()
        for item in folder.iterdir():
            if item.is_dir():
                stack.append(item)
            elif item.name.endswith((".yaml", ".yml", ".json")):
                files.append(item)
    for item in sorted(files, key=lambda f: str(f)):
        h.update(item.name.encode())
        h.update(item.read_bytes())
    return "sha256:" + h.hexdigest()[:16]


def trdstage_version() -> str:
    from trdstage.service.app import version

    return version()


def create_patient(session: Session, owner: Account, document: Any) -> Patient:
    """A new patient (validated first; raises InputError naming the place)."""
    native_patient(document)
    patient = Patient(owner_id=owner.id, current_version=1)
    session.add(patient)
    session.flush()
    session.add(PatientVersion(patient_id=patient.id, version=1, document=document,
                               digest=digest(document), author_id=owner.id))
    session.flush()
    return patient


def update_patient(session: Session, patient: Patient, author: Account,
                   document: Any) -> PatientVersion:
    """A new version (the previous ones stay as they are)."""
    native_patient(document)
    patient.current_version += 1
    patient.updated = utcnow()
    row = PatientVersion(patient_id=patient.id, version=patient.current_version,
                         document=document, digest=digest(document), author_id=author.id)
    session.add(row)
    session.flush()
    return row


def find_patient(session: Session, owner: Account, patient_id: str) -> Patient | None:
    """The patient if `owner` owns it (None for unknown and for other accounts' patients)."""
    row = session.get(Patient, patient_id)
    return row if row is not None and row.owner_id == owner.id else None


def list_patients(session: Session, owner: Account, offset: int, count: int
                  ) -> tuple[int, list[Patient]]:
    where = Patient.owner_id == owner.id
    total = session.scalar(select(func.count()).select_from(Patient).where(where)) or 0
    rows = session.scalars(select(Patient).where(where).order_by(Patient.created, Patient.id)
                           .offset(offset).limit(count)).all()
    return total, list(rows)


def version_of(session: Session, patient: Patient, version: int | None = None
               ) -> PatientVersion | None:
    wanted = version if version is not None else patient.current_version
    return session.scalars(select(PatientVersion).where(
        PatientVersion.patient_id == patient.id,
        PatientVersion.version == wanted)).one_or_none()


def assess_patient(session: Session, author: Account, patient: Patient, *, as_of: date,
                   policy: Policy, version: int | None = None) -> Assessment:
    """Assess a stored version (the current one by default) and store the result."""
    row = version_of(session, patient, version)
    if row is None:
        raise InputError("version", f"patient has no version {version}")
    domain = native_patient(row.document, f"Patient/{patient.id} version {row.version}")
    result = assessing.run(domain, as_of=as_of, policy=policy)
    return add_assessment(session, author, patient.id, row.version, as_of=as_of,
                          policy=policy.name, result=result.model_dump(mode="json"))


def add_assessment(session: Session, author: Account, patient_id: str, version: int, *,
                   as_of: date, policy: str, result: dict[str, Any]) -> Assessment:
    """Store a result (the JSON contract) computed for one version of a patient."""
    stored = Assessment(patient_id=patient_id, patient_version=version, as_of=as_of,
                        policy=policy, trdstage_version=trdstage_version(),
                        knowledge_version=knowledge_version(), result=result,
                        author_id=author.id)
    session.add(stored)
    session.flush()
    return stored


def find_assessment(session: Session, owner: Account, assessment_id: str) -> Assessment | None:
    row = session.get(Assessment, assessment_id)
    if row is None:
        return None
    patient = session.get(Patient, row.patient_id)
    return row if patient is not None and patient.owner_id == owner.id else None


def list_assessments(session: Session, patient: Patient, offset: int, count: int
                     ) -> tuple[int, list[Assessment]]:
    where = Assessment.patient_id == patient.id
    total = session.scalar(select(func.count()).select_from(Assessment).where(where)) or 0
    rows = session.scalars(select(Assessment).where(where)
                           .order_by(Assessment.created, Assessment.id)
                           .offset(offset).limit(count)).all()
    return total, list(rows)
