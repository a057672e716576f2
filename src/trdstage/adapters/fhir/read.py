"""FHIR R4 Bundle -> the domain's `Patient`: the only place that knows FHIR on the way in.

Each resource is validated with `fhir.resources.R4B` and mapped at the boundary: medication
records become dated regimens (the engine merges records of one agent into trials with its 30-day
rule), ECT and rTMS procedures become courses, PHQ-9/HAM-D17/MADRS/QIDS-SR16 observations become
ratings, MDD Conditions become episodes and other known Conditions become flags. A resource that
cannot be parsed is an `InputError` naming it; a resource read but not used is a `Notice` saying
why. docs/fhir.md is the implementer's description of every rule here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from trdstage.adapters.errors import InputError, format_loc
from trdstage.adapters.fhir.codes import Coding, FhirCodes, load_fhir_codes
from trdstage.domain import (
    Adherence,
    CourseKind,
    DoseStep,
    ECTCourse,
    Episode,
    ItemReading,
    Laterality,
    MedicationRegimen,
    Outcome,
    Patient,
    RatingReading,
    Scale,
    Severity,
    Sex,
    TreatmentCourse,
)
from trdstage.domain.results import Notice
from trdstage.domain.units import MG_PER_UNIT, DoseError, to_mg
from trdstage.knowledge import Knowledge, load_knowledge

READ_TYPES = ("Patient", "Condition", "MedicationStatement", "MedicationRequest",
              "MedicationDispense", "Medication", "Procedure", "Observation")
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationDispense")
BUNDLE_TYPES = ("collection", "searchset", "transaction", "batch", "document")
MAX_LISTED = 10

# Statuses whose record is not a treatment that happened (skipped with a warning).
SKIP_STATUS = {
    "MedicationStatement": {"entered-in-error", "not-taken", "intended"},
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationDispense": {"entered-in-error", "cancelled", "declined", "preparation"},
    "Procedure": {"entered-in-error", "not-done", "preparation"},
    "Observation": {"entered-in-error", "cancelled", "registered"},
}
# Statuses under which a record with no end date is still running at the as-of date.
OPEN_STATUS = {"active", "on-hold", "in-progress"}
# MedicationRequest intents that are orders (a plan or proposal is not a treatment taken).
ORDER_INTENTS = {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
COUNT_UNITS = {"", "1", "tbl", "tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule",
               "capsules", "each", "ea", "unit", "units", "patch", "patches", "spray", "sprays",
               "actuation", "actuations", "dose", "doses", "device", "devices"}
DURATION_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0,
                 "mo": 30.0, "month": 30.0, "months": 30.0, "h": 1 / 24, "a": 365.0}
PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0,
               "a": 365.0}
_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?)\s*(mg|mcg|ug|µg|g)\b(?:\s*/\s*(\d+(?:\.\d+)?)?\s*(ml|hr|h|actuat)\b)?",
    re.IGNORECASE)
_TOKEN = re.compile(r"[^\s\[\]\(\),;:/]+")


E = TypeVar("E", bound=StrEnum)


@dataclass
class FhirRead:
    """What was read: the patient, warnings about the input, and where each domain id came
    from (regimen, course, ECT and episode ids -> FHIR references), for `derivedFrom`."""

    patient: Patient
    notices: list[Notice]
    sources: dict[str, list[str]] = field(default_factory=dict)

    def as_tuple(self) -> tuple[Patient, list[Notice]]:
        return self.patient, self.notices


@dataclass
class _Strength:
    mg: float
    per: str  # "unit" | "mL" | "day"


@dataclass
class _Part:
    agent: str
    kind: str
    strength: _Strength | None


@dataclass
class _Session:
    start: date
    end: date | None
    ref: str
    count: int | None
    outcome: Outcome | None
    laterality: Laterality = Laterality.unknown
    modality: str | None = None


@dataclass
class _Mdd:
    ref: str
    onset: date
    end: date | None
    active: bool
    severity: Severity | None
    psychotic: bool
    recorded: date


@dataclass
class _Entry:
    raw: dict[str, Any]
    rtype: str
    label: str  # "Type/id" or "Type (entry n)": for messages
    ref: str  # "Type/id" or the fullUrl: for references
    full_url: str | None
    obj: Any = None


def max_bundle_bytes() -> int:
    return int(load_fhir_codes().spec.settings.max_bundle_mb * 1024 * 1024)


def is_fhir_json(path: str | Path) -> bool:
    """True when a file looks like FHIR JSON (a top-level "resourceType"); native patient files
    never carry that key. Reads only the first 64 kB."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return head.lstrip()[:1] == b"{" and re.search(rb'"resourceType"\s*:', head) is not None


def read_fhir_file(path: str | Path, max_bytes: int | None = None) -> FhirRead:
    """Read a FHIR JSON file (a Bundle); raise `InputError` naming the place of any problem."""
    path = Path(path)
    limit = max_bytes if max_bytes is not None else max_bundle_bytes()
    if not path.is_file():
        raise InputError(str(path), "no such file")
    size = path.stat().st_size
    if size > limit:
        raise InputError(str(path), f"FHIR bundle of {size / 1048576:.1f} MB is larger than the "
                         f"{limit / 1048576:g} MB limit (fhir_codes.yaml settings.max_bundle_mb); "
                         "export only this patient's resources, or use --fhir-server")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason})") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}",
                         f"malformed JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise InputError(str(path), "malformed JSON: nested too deeply") from exc
    return read_fhir_data(raw, str(path))


def read_fhir_data(raw: Any, name: str = "<input>") -> FhirRead:
    """A parsed FHIR JSON document: a Bundle (collection, searchset, transaction, batch,
    document; a Patient $everything result is a searchset)."""
    if not isinstance(raw, dict) or "resourceType" not in raw:
        raise InputError(name, "not a FHIR resource (no resourceType at the top level)")
    rtype = raw["resourceType"]
    if rtype != "Bundle":
        raise InputError(f"{name}: resourceType",
                         f"expected a Bundle, got {rtype!r}; export the patient's record as a "
                         "Bundle (e.g. Patient/<id>/$everything) or use --fhir-server")
    btype = raw.get("type")
    if btype not in BUNDLE_TYPES:
        raise InputError(f"{name}: Bundle.type",
                         f"{btype!r} is not read; expected one of {', '.join(BUNDLE_TYPES)}")
    entries = raw.get("entry") or []
    if not isinstance(entries, list):
        raise InputError(f"{name}: Bundle.entry", "must be a list")
    items: list[tuple[Any, str | None]] = []
    outcome_marked: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"{name}: Bundle.entry[{i}]", "must be an object")
        search = entry.get("search")
        resource = entry.get("resource")
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(search, dict) and search.get("mode") == "outcome":
            if resource is None or rtype == "OperationOutcome":
                continue
            # only an OperationOutcome is information about the search: anything else is read
            rid = resource.get("id") if isinstance(resource, dict) else None
            outcome_marked.append(f"{rtype}/{rid}" if rid else f"Bundle.entry[{i}]")
        if "resource" not in entry:
            raise InputError(f"{name}: Bundle.entry[{i}]", "has no resource")
        url = entry.get("fullUrl")
        items.append((entry["resource"], url if isinstance(url, str) else None))
    read = read_fhir_resources(items, name)
    if outcome_marked:
        read.notices.append(Notice(
            code="search_mode_outcome", where=", ".join(outcome_marked[:MAX_LISTED]) + (
                f" and {len(outcome_marked) - MAX_LISTED} more"
                if len(outcome_marked) > MAX_LISTED else ""),
            message="entry marked search.mode 'outcome' is not an OperationOutcome: read as "
            "part of the record"))
    return read


def read_fhir_resources(items: Iterable[tuple[Any, str | None]], name: str = "<input>",
                        patient_id: str | None = None) -> FhirRead:
    """Resources (each with its fullUrl or None) -> the patient. `patient_id` names the patient
    when no Patient resource is among them."""
    return _Reader(name, load_fhir_codes(), load_knowledge(), patient_id).read(list(items))


def _day(value: Any) -> tuple[date | None, bool]:
    """A FHIR date/dateTime as a date; the flag says it was partial (year or year-month)."""
    if value is None:
        return None, False
    if isinstance(value, datetime):
        return value.date(), False
    if isinstance(value, date):
        return value, False
    text = str(value)
    m = re.fullmatch(r"(\d{4})(?:-(\d{2}))?", text)
    if m:
        return date(int(m.group(1)), int(m.group(2) or 1), 1), True
    try:
        return date.fromisoformat(text[:10]), False
    except ValueError:
        return None, False


def _codings(concept: Any) -> list[Coding]:
    if concept is None:
        return []
    return [Coding(c.system, c.code, c.display) for c in (concept.coding or [])]


def _texts(concept: Any) -> list[str]:
    if concept is None:
        return []
    out = [concept.text] if concept.text else []
    out.extend(c.display for c in (concept.coding or []) if c.display)
    return out


def _describe(concept: Any) -> str:
    if concept is None:
        return "no code"
    parts = [f"{c.code}" + (f" {c.display!r}" if c.display else "")
             for c in (concept.coding or []) if c.code]
    if concept.text:
        parts.append(repr(concept.text))
    return ", ".join(parts) or "no code"


def _duration_days(quantity: Any) -> float | None:
    if quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "d").strip().lower()
    factor = DURATION_DAYS.get(unit)
    return None if factor is None else float(quantity.value) * factor


class _Reader:
    def __init__(self, name: str, codes: FhirCodes, knowledge: Knowledge,
                 patient_id: str | None) -> None:
        self.name = name
        self.codes = codes
        self.k = knowledge
        self.settings = codes.spec.settings
        self.patient_id = patient_id
        self.notes: dict[tuple[str, str], list[str]] = {}
        self.sources: dict[str, list[str]] = {}
        self.by_ref: dict[str, _Entry] = {}
        self.regimens: list[MedicationRegimen] = []
        self.sessions: dict[str, list[_Session]] = {}
        self.ratings: list[tuple[RatingReading, str]] = []
        self.item_readings: list[ItemReading] = []
        self.mdd: list[_Mdd] = []
        self.flags: set[str] = set()
        self.pid = patient_id or "patient"
        self.patient_refs: set[str] = set()
        self._members: set[str] | None = None
        self.rx: dict[str, str] = {}
        self.atc: dict[str, str] = {}
        for table in (self.k.antidepressants, self.k.augmenters, self.k.rapid_acting):
            for entry in table.values():
                if entry.rxnorm:
                    self.rx[entry.rxnorm] = entry.name
                atc = getattr(entry, "atc", None)
                if atc:
                    self.atc[atc.upper()] = entry.name

    # ---- notices and errors -------------------------------------------------------------
    def note(self, code: str, message: str, where: str) -> None:
        self.notes.setdefault((code, message), []).append(where)

    def fail(self, entry: _Entry, fld: str, message: str) -> InputError:
        return InputError(f"{self.name}: {entry.label}", f"{fld}: {message}")

    def notices(self) -> list[Notice]:
        out = []
        for (code, message), places in self.notes.items():
            shown = ", ".join(places[:MAX_LISTED])
            if len(places) > MAX_LISTED:
                shown += f" and {len(places) - MAX_LISTED} more"
            out.append(Notice(code=code, message=message, where=shown))
        return out

    def day(self, entry: _Entry, fld: str, value: Any) -> date | None:
        found, partial = _day(value)
        if partial and found is not None:
            self.note("partial_date", f"{fld} gives only a year or month: the first day of it "
                      "is used", entry.label)
        return found

    # ---- the pass over the resources ------------------------------------------------------
    def read(self, items: list[tuple[Any, str | None]]) -> FhirRead:
        entries = self.validate(items)
        patients = [e for e in entries if e.rtype == "Patient"]
        patient = patients[0] if patients else None
        for extra in patients[1:]:
            self.note("extra_patient", "more than one Patient resource: only the first is read",
                      extra.label)
        pid = (patient.obj.id if patient is not None else None) or self.patient_id or \
            self.first_subject(entries) or "patient"
        self.pid = pid
        self.patient_refs = {f"Patient/{pid}"}
        if patient is not None and patient.full_url:
            self.patient_refs.add(patient.full_url)
        for entry in entries:
            if entry.rtype in ("Patient", "Medication") or not self.mine(entry):
                continue
            if entry.rtype == "Condition":
                self.condition(entry)
            elif entry.rtype in MEDICATION_TYPES:
                self.medication(entry)
            elif entry.rtype == "Procedure":
                self.procedure(entry)
            elif entry.rtype == "Observation":
                self.observation(entry)
        return self.build(patient)

    @staticmethod
    def first_subject(entries: list[_Entry]) -> str | None:
        """Without a Patient resource, the patient is the first subject referred to."""
        for entry in entries:
            subject = getattr(entry.obj, "subject", None)
            ref = getattr(subject, "reference", None) or ""
            if ref.startswith("Patient/"):
                return ref.removeprefix("Patient/").split("/")[0]
        return None

    def validate(self, items: list[tuple[Any, str | None]]) -> list[_Entry]:
        entries: list[_Entry] = []
        unused: dict[str, list[str]] = {}
        for index, (raw, full_url) in enumerate(items):
            if not isinstance(raw, dict):
                raise InputError(f"{self.name}: entry[{index}]", "resource is not a JSON object")
            rtype = raw.get("resourceType")
            if not isinstance(rtype, str):
                raise InputError(f"{self.name}: entry[{index}]", "resource has no resourceType")
            rid = raw.get("id")
            label = f"{rtype}/{rid}" if rid else f"{rtype} (entry {index})"
            ref = f"{rtype}/{rid}" if rid else (full_url or f"{rtype}[{index}]")
            entry = _Entry(raw, rtype, label, ref, full_url)
            if rtype not in READ_TYPES:
                try:
                    get_fhir_model_class(rtype)
                except (KeyError, ValueError, AttributeError, ImportError) as exc:
                    raise InputError(f"{self.name}: entry[{index}]",
                                     f"unknown resourceType {rtype!r}") from exc
                if rtype != "OperationOutcome":
                    unused.setdefault(rtype, []).append(label)
                continue
            for c_i, inner in enumerate(raw.get("contained") or []):
                inner_type = inner.get("resourceType") if isinstance(inner, dict) else None
                try:
                    get_fhir_model_class(str(inner_type))
                except (KeyError, ValueError, AttributeError, ImportError) as exc:
                    raise InputError(f"{self.name}: {label}", f"contained[{c_i}].resourceType: "
                                     f"unknown resourceType {inner_type!r}") from exc
            try:
                entry.obj = get_fhir_model_class(rtype).model_validate(raw)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = format_loc(tuple(err["loc"]))
                msg = err["msg"].removeprefix("Value error, ")
                more = len(exc.errors()) - 1
                suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
                raise InputError(f"{self.name}: {label}", f"{loc}: {msg}{suffix}") from exc
            except (ValueError, TypeError, KeyError) as exc:
                raise InputError(f"{self.name}: {label}", f"not a valid {rtype}: {exc}") from exc
            entries.append(entry)
            self.by_ref[ref] = entry
            if full_url:
                self.by_ref[full_url] = entry
        for rtype, labels in unused.items():
            for label in labels:
                self.note("resource_not_read", f"{rtype} resources are not part of a treatment "
                          "history: not read", label)
        return entries

    def mine(self, entry: _Entry) -> bool:
        subject = getattr(entry.obj, "subject", None) or getattr(entry.obj, "patient", None)
        ref = getattr(subject, "reference", None)
        if not ref or not (ref.startswith("Patient/") or ref in self.by_ref):
            return True
        if ref in self.patient_refs or ref.split("/_history")[0].endswith(f"Patient/{self.pid}"):
            return True
        self.note("other_patient", f"subject is not Patient/{self.pid}: not read", entry.label)
        return False

    def skipped(self, entry: _Entry) -> bool:
        status = getattr(entry.obj, "status", None)
        if status in SKIP_STATUS.get(entry.rtype, set()):
            self.note("status_not_counted", f"{entry.rtype} with status {status!r}: not a "
                      "treatment or measurement that happened; not used", entry.label)
            return True
        return False

    def extension(self, obj: Any, name: str) -> Any:
        url = self.codes.extension(name)
        for ext in getattr(obj, "extension", None) or []:
            if ext.url == url:
                for attr in ("valueCode", "valueString", "valueInteger", "valuePositiveInt",
                             "valueUnsignedInt"):
                    value = getattr(ext, attr, None)
                    if value is not None:
                        return value
        return None

    def _coded_extension(self, entry: _Entry, name: str, vocabulary: type[E]) -> E | None:
        """A project extension whose value must be one of `vocabulary` (None when absent)."""
        value = self.extension(entry.obj, name)
        if value is None:
            return None
        try:
            return vocabulary(str(value))
        except ValueError as exc:
            raise self.fail(entry, f"extension({name})",
                            f"{value!r} is not one of {', '.join(v.value for v in vocabulary)}") \
                from exc

    def outcome(self, entry: _Entry) -> Outcome | None:
        return self._coded_extension(entry, "treatment-outcome", Outcome)

    def adherence(self, entry: _Entry) -> Adherence:
        return self._coded_extension(entry, "adherence", Adherence) or Adherence.unknown

    # ---- Condition ----------------------------------------------------------------------
    def condition(self, entry: _Entry) -> None:
        cond = entry.obj
        verification = {c.code for c in _codings(cond.verificationStatus)}
        if verification & {"refuted", "entered-in-error"}:
            self.note("status_not_counted", "Condition refuted or entered in error: not used",
                      entry.label)
            return
        rule = self.codes.match(self.codes.spec.conditions, _codings(cond.code), _texts(cond.code))
        if rule is None:
            self.note("condition_not_used", f"Condition of no known use ({_describe(cond.code)})"
                      ": not read", entry.label)
            return
        if rule.means.startswith("flag:"):
            self.flags.add(rule.means.removeprefix("flag:"))
            self.sources.setdefault(f"flag:{rule.means.removeprefix('flag:')}", []).append(
                entry.ref)
            return
        onset = self.day(entry, "onset", cond.onsetDateTime or (
            cond.onsetPeriod.start if cond.onsetPeriod else None))
        recorded = self.day(entry, "recordedDate", cond.recordedDate)
        if onset is None:
            if recorded is None:
                raise self.fail(entry, "onset[x]", "no onsetDateTime, onsetPeriod.start or "
                                "recordedDate: the episode cannot be dated")
            onset = recorded
            self.note("onset_from_recorded_date", "MDD Condition without onset: its "
                      "recordedDate is taken as the episode onset", entry.label)
        end = self.day(entry, "abatement", cond.abatementDateTime or (
            cond.abatementPeriod.end or cond.abatementPeriod.start
            if cond.abatementPeriod else None))
        if end is not None and end < onset:
            raise self.fail(entry, "abatement[x]", f"{end.isoformat()} is before the onset "
                            f"{onset.isoformat()}")
        clinical = {c.code for c in _codings(cond.clinicalStatus)}
        active = end is None and not (clinical & {"inactive", "remission", "resolved"})
        if not active and end is None:
            self.note("no_abatement_date", "MDD Condition is resolved or in remission but has no "
                      "abatement date: read as a past episode without an end", entry.label)
        severity, psychotic = self.severity(cond)
        self.mdd.append(_Mdd(entry.ref, onset, end, active, severity, psychotic,
                             recorded or onset))

    def severity(self, cond: Any) -> tuple[Severity | None, bool]:
        icd = self.codes.spec.icd10cm_severity.codes
        for c in _codings(cond.code):
            if self.codes.system_key(c.system) in ("icd10cm", "icd10") and c.code:
                code = c.code.strip().upper()
                if len(code) > 3 and code[3] != ".":
                    code = f"{code[:3]}.{code[3:]}"
                value = icd.get(code[:5])
                if value is not None:
                    return (Severity.severe, True) if value == "severe_psychotic" else (
                        Severity(value), False)
        snomed = self.codes.spec.snomed_severity.codes
        for c in _codings(cond.severity):
            if self.codes.system_key(c.system) == "snomed" and c.code in snomed:
                return Severity(snomed[c.code]), False
        return None, False

    # ---- medications --------------------------------------------------------------------
    def medication(self, entry: _Entry) -> None:
        res = entry.obj
        if self.skipped(entry):
            return
        if entry.rtype == "MedicationRequest" and res.intent not in ORDER_INTENTS:
            self.note("status_not_counted", f"MedicationRequest with intent {res.intent!r}: a "
                      "plan or proposal, not an order; not used", entry.label)
            return
        concept, med = self.med_concept(entry)
        parts = self.parts(concept, med)
        if not parts:
            self.note("medication_not_recognised", "medication not recognised as an "
                      f"antidepressant, augmenter or esketamine/ketamine ({_describe(concept)}): "
                      "not used", entry.label)
            return
        start, end = self.med_period(entry)
        for index, part in enumerate(parts):
            rid = entry.ref if index == 0 else f"{entry.ref}#{part.agent}"
            self.sources.setdefault(rid, []).append(entry.ref)
            if part.kind == "rapid_acting":
                kind = self.k.rapid_acting[part.agent].course_kind
                self.sessions.setdefault(kind, []).append(
                    _Session(start, end, rid, None, self.outcome(entry)))
                continue
            dose = self.daily_dose(entry, part)
            self.regimens.append(MedicationRegimen(
                id=rid, agent=part.agent, adherence=self.adherence(entry),
                outcome=self.outcome(entry),
                steps=[DoseStep(start=start, end=end, daily_dose_mg=dose)]))

    def med_concept(self, entry: _Entry) -> tuple[Any, Any]:
        res = entry.obj
        if res.medicationCodeableConcept is not None:
            return res.medicationCodeableConcept, None
        ref = res.medicationReference.reference if res.medicationReference else None
        if ref is None:
            display = res.medicationReference.display if res.medicationReference else None
            if display:
                return _FakeConcept(display), None
            raise self.fail(entry, "medication[x]", "no medicationCodeableConcept or "
                            "medicationReference")
        if ref.startswith("#"):
            for item in res.contained or []:
                if item.id == ref[1:] and item.__resource_type__ == "Medication":
                    return item.code, item
            raise self.fail(entry, "medicationReference",
                            f"{ref} is not a contained Medication")
        target = self.by_ref.get(ref) or next(
            (e for r, e in self.by_ref.items() if e.rtype == "Medication" and ref.endswith(r)),
            None)
        if target is None or target.rtype != "Medication":
            display = res.medicationReference.display
            if display:
                return _FakeConcept(display), None
            raise self.fail(entry, "medicationReference",
                            f"{ref} is not a Medication in the bundle")
        return target.obj.code, target.obj

    def parts(self, concept: Any, med: Any) -> list[_Part]:
        if med is not None and med.ingredient:
            found: list[_Part] = []
            for ing in med.ingredient:
                sub = self.parts(ing.itemCodeableConcept, None) if ing.itemCodeableConcept \
                    else []
                strength = self.ratio_strength(ing.strength)
                for part in sub[:1]:
                    found.append(_Part(part.agent, part.kind, strength or part.strength))
            if found:
                return found
        by_code: list[str] = []
        for c in _codings(concept):
            key = self.codes.system_key(c.system)
            code = (c.code or "").strip()
            agent = self.rx.get(code) if key == "rxnorm" else (
                self.atc.get(code.upper()) if key == "atc" else None)
            if agent and agent not in by_code:
                by_code.append(agent)
        by_text: list[_Part] = []
        for text in _texts(concept):
            by_text = self.parse_text(text)
            if by_text:
                break
        if not by_code:
            return by_text
        out = []
        for agent in by_code:
            strength = next((p.strength for p in by_text if p.agent == agent), None)
            match = self.k.resolve(agent)
            out.append(_Part(agent, match.kind if match else "antidepressant", strength))
        return out

    def parse_text(self, text: str) -> list[_Part]:
        """'sertraline 50 MG Oral Tablet', 'olanzapine 6 MG / fluoxetine 25 MG Oral Capsule',
        'Zoloft 100 MG Oral Tablet' -> ingredients with strengths."""
        out: list[_Part] = []
        for component in re.split(r"\s/\s", text):
            tokens = _TOKEN.findall(component)
            found = None
            for size in (3, 2, 1):
                for i in range(len(tokens) - size + 1):
                    match = self.k.resolve(" ".join(tokens[i:i + size]))
                    if match is not None:
                        found = match
                        break
                if found:
                    break
            if found is None or any(p.agent == found.name for p in out):
                continue
            strength = None
            m = _STRENGTH.search(component)
            if m:
                try:
                    mg = to_mg(float(m.group(1)), m.group(2))
                except DoseError:
                    mg = None
                if mg is not None:
                    per_num, per_unit = m.group(3), (m.group(4) or "").lower()
                    if per_unit == "ml":
                        strength = _Strength(mg / float(per_num or 1), "mL")
                    elif per_unit in ("hr", "h"):
                        strength = _Strength(mg * 24 / float(per_num or 1), "day")
                    else:
                        strength = _Strength(mg, "unit")
            out.append(_Part(found.name, found.kind, strength))
        return out

    def ratio_strength(self, ratio: Any) -> _Strength | None:
        if ratio is None or ratio.numerator is None or ratio.numerator.value is None:
            return None
        unit = ratio.numerator.code or ratio.numerator.unit or ""
        try:
            mg = to_mg(float(ratio.numerator.value), unit)
        except DoseError:
            return None
        den = ratio.denominator
        den_unit = ((den.code or den.unit or "") if den else "").strip().lower()
        den_value = float(den.value) if den is not None and den.value else 1.0
        if den_unit == "ml":
            return _Strength(mg / den_value, "mL")
        return _Strength(mg / den_value, "unit")

    def med_period(self, entry: _Entry) -> tuple[date, date | None]:
        res = entry.obj
        rtype = entry.rtype
        status = res.status
        start: date | None = None
        end: date | None = None
        span: float | None = None
        fld = "effective[x]"
        if rtype == "MedicationStatement":
            if res.effectivePeriod is not None:
                start = self.day(entry, "effectivePeriod.start", res.effectivePeriod.start)
                end = self.day(entry, "effectivePeriod.end", res.effectivePeriod.end)
            else:
                start = self.day(entry, "effectiveDateTime", res.effectiveDateTime)
        elif rtype == "MedicationRequest":
            fld = "authoredOn"
            bounds = self.bounds(res.dosageInstruction)
            if bounds is not None:
                start = self.day(entry, "boundsPeriod.start", bounds.start)
                end = self.day(entry, "boundsPeriod.end", bounds.end)
            if start is None:
                start = self.day(entry, "authoredOn", res.authoredOn)
            if start is None and res.dispenseRequest and res.dispenseRequest.validityPeriod:
                start = self.day(entry, "validityPeriod.start",
                                 res.dispenseRequest.validityPeriod.start)
            dr = res.dispenseRequest
            if end is None and dr is not None:
                span = _duration_days(dr.expectedSupplyDuration)
                if span is not None and self.settings.request_counts_refills:
                    span *= 1 + (dr.numberOfRepeatsAllowed or 0)
        else:
            fld = "whenHandedOver"
            start = self.day(entry, "whenHandedOver", res.whenHandedOver) or self.day(
                entry, "whenPrepared", res.whenPrepared)
            span = _duration_days(res.daysSupply)
        if start is None:
            raise self.fail(entry, fld, "no date: a treatment record needs a start date "
                            "(see docs/fhir.md for the elements read)")
        if end is None and span is not None:
            where = "daysSupply" if rtype == "MedicationDispense" else \
                "dispenseRequest.expectedSupplyDuration"
            if span < 0:
                raise self.fail(entry, where, f"negative supply duration ({span:g} days)")
            try:
                end = start + timedelta(days=round(span))
            except (OverflowError, ValueError) as exc:
                raise self.fail(entry, where, f"supply of {span:g} days runs past the last "
                                "date that can be read (year 9999)") from exc
        if end is None and status not in OPEN_STATUS:
            self.note("no_end_date", f"{rtype} with status {status!r} and no end or supply "
                      "duration: counted as a single day", entry.label)
            end = start + timedelta(days=1)
        if end is not None and end < start:
            raise self.fail(entry, "end", f"end {end.isoformat()} is before start "
                            f"{start.isoformat()}")
        return start, end

    @staticmethod
    def bounds(dosages: Any) -> Any:
        for dosage in dosages or []:
            timing = dosage.timing
            if timing is not None and timing.repeat is not None and timing.repeat.boundsPeriod:
                return timing.repeat.boundsPeriod
        return None

    def per_day(self, entry: _Entry, timing: Any) -> float:
        if timing is not None and timing.repeat is not None:
            rep = timing.repeat
            if rep.frequency is not None or rep.period is not None:
                unit = rep.periodUnit or "d"
                if rep.period is not None and rep.period <= 0:
                    raise self.fail(entry, "dosage.timing.repeat.period",
                                    f"{rep.period:g} is not a positive period")
                period = float(rep.period or 1) * PERIOD_DAYS.get(unit, 1.0)
                return float(rep.frequency or 1) / period
        if timing is not None and timing.code is not None:
            table = self.codes.spec.timing_per_day.codes
            for c in _codings(timing.code):
                if c.code and c.code.upper() in table:
                    return table[c.code.upper()]
            if timing.code.text and timing.code.text.upper() in table:
                return table[timing.code.text.upper()]
        self.note("timing_assumed", "dosage without timing: "
                  f"{self.settings.default_administrations_per_day:g} administration a day "
                  "assumed", entry.label)
        return self.settings.default_administrations_per_day

    def quantity_mg(self, quantity: Any, strength: _Strength | None) -> float | None:
        if quantity is None or quantity.value is None:
            return None
        value = float(quantity.value)
        unit = (quantity.code or quantity.unit or "").strip()
        low = unit.lower().strip("{}")
        if low in MG_PER_UNIT or unit in MG_PER_UNIT:
            return to_mg(value, unit)
        if strength is None:
            return None
        if low == "ml":
            return value * strength.mg if strength.per == "mL" else None
        if low in COUNT_UNITS:
            return value * strength.mg if strength.per in ("unit", "day") else None
        return None

    def checked_mg(self, entry: _Entry, fld: str, quantity: Any,
                   strength: _Strength | None) -> float | None:
        """`quantity_mg`, with a negative amount an input error naming the field."""
        if quantity is not None and quantity.value is not None and quantity.value < 0:
            raise self.fail(entry, fld, f"negative amount {quantity.value}")
        try:
            return self.quantity_mg(quantity, strength)
        except DoseError as exc:
            raise self.fail(entry, fld, str(exc)) from exc

    def daily_dose(self, entry: _Entry, part: _Part) -> float | None:
        res = entry.obj
        dosages = list((res.dosage if entry.rtype == "MedicationStatement"
                        else res.dosageInstruction) or [])
        sequences = sorted({d.sequence for d in dosages if d.sequence is not None})
        if len(sequences) > 1:
            self.note("dosage_sequence", "several sequential dosage instructions: the first "
                      "is read", entry.label)
            dosages = [d for d in dosages if d.sequence in (None, sequences[0])]
        total = 0.0
        counted = False
        for dosage in dosages:
            if dosage.asNeededBoolean or dosage.asNeededCodeableConcept is not None:
                self.note("as_needed", "dosage taken as needed: the dose given is read as if "
                          "regular", entry.label)
            for dr in dosage.doseAndRate or []:
                qty = dr.doseQuantity
                if qty is None and dr.doseRange is not None:
                    qty = dr.doseRange.low
                    self.note("dose_range", "dose given as a range: its low end is read",
                              entry.label)
                mg = self.checked_mg(entry, "dosage.doseAndRate.dose", qty, part.strength)
                if mg is None:
                    continue
                if part.strength is not None and part.strength.per == "day" and \
                        (qty.code or qty.unit or "").strip().lower().strip("{}") in COUNT_UNITS:
                    total += mg
                else:
                    total += mg * self.per_day(entry, dosage.timing)
                counted = True
                break
        if counted:
            return round(total, 3)
        supply = None
        quantity = None
        if entry.rtype == "MedicationDispense":
            quantity, supply = res.quantity, _duration_days(res.daysSupply)
        elif entry.rtype == "MedicationRequest" and res.dispenseRequest is not None:
            quantity = res.dispenseRequest.quantity
            supply = _duration_days(res.dispenseRequest.expectedSupplyDuration)
        mg = self.checked_mg(entry, "quantity", quantity, part.strength)
        if mg is not None and supply:
            return round(mg / supply, 3)
        if entry.rtype == "MedicationDispense" and supply and quantity is None and not dosages:
            self.note("dispense_dose_unknown", "MedicationDispense with daysSupply but no "
                      "quantity or dosage: the supply's duration is read, its dose is not "
                      "known (adequacy then follows the policy's missing_dose rule)",
                      entry.label)
            return None
        self.note("dose_not_computed", "daily dose not computable (no dose quantity with a "
                  "known strength, and no quantity and days supply): dose not recorded",
                  entry.label)
        return None

    # ---- Procedure ------------------------------------------------------------------------
    def procedure(self, entry: _Entry) -> None:
        proc = entry.obj
        if self.skipped(entry):
            return
        rule = self.codes.match(self.codes.spec.procedures, _codings(proc.code),
                                _texts(proc.code))
        if rule is None:
            self.note("procedure_not_used", f"Procedure of no known kind ({_describe(proc.code)})"
                      ": not used", entry.label)
            return
        if proc.performedPeriod is not None:
            start = self.day(entry, "performedPeriod.start", proc.performedPeriod.start)
            end = self.day(entry, "performedPeriod.end", proc.performedPeriod.end)
        else:
            start = self.day(entry, "performedDateTime", proc.performedDateTime)
            end = None
        if start is None:
            raise self.fail(entry, "performed[x]", "no performedDateTime or "
                            "performedPeriod.start: the session cannot be dated")
        count = self.session_count(entry)
        if proc.performedPeriod is not None and count is None:
            self.note("sessions_unknown", "Procedure with a period but no session count "
                      "(extension session-count): read as a course of unknown length",
                      entry.label)
        texts = [*_texts(proc.code), *(t for s in proc.bodySite or [] for t in _texts(s)),
                 *(n.text for n in proc.note or [] if n.text)]
        self.sessions.setdefault(rule.means, []).append(_Session(
            start, end, entry.ref, count,
            self.outcome(entry), self.laterality(proc, texts),
            (proc.code.text if proc.code else None) if rule.means != "ect" else None))
        self.sources.setdefault(entry.ref, []).append(entry.ref)

    def session_count(self, entry: _Entry) -> int | None:
        raw = self.extension(entry.obj, "session-count")
        if raw is None:
            return None
        try:
            count = int(str(raw).strip())
        except ValueError as exc:
            raise self.fail(entry, "extension(session-count)",
                            f"{raw!r} is not a whole number of sessions") from exc
        if count < 0:
            raise self.fail(entry, "extension(session-count)",
                            f"{count} is not a number of sessions (negative)")
        return count

    def laterality(self, proc: Any, texts: list[str]) -> Laterality:
        spec = self.codes.spec.laterality
        for site in proc.bodySite or []:
            for c in _codings(site):
                if self.codes.system_key(c.system) == "snomed" and c.code in spec.snomed:
                    return Laterality(spec.snomed[c.code])
        blob = " | ".join(texts)
        for value in ("bilateral", "unilateral"):
            patterns = spec.text.get(value, [])
            if any(re.search(p, blob, re.IGNORECASE) for p in patterns):
                return Laterality(value)
        return Laterality.unknown

    # ---- Observation ----------------------------------------------------------------------
    def observation(self, entry: _Entry) -> None:
        obs = entry.obj
        if self.skipped(entry):
            return
        items = self.codes.spec.phq9_items.codes
        codes = {c.code for c in _codings(obs.code)
                 if c.code and self.codes.system_key(c.system) == "loinc"}
        item_codes = sorted(codes & set(items))
        if item_codes:
            if entry.ref not in self.members:
                self.lone_item(entry, items.index(item_codes[0]) + 1)
            return
        rule = self.codes.match(self.codes.spec.observations, _codings(obs.code),
                                _texts(obs.code))
        if rule is None:
            self.note("observation_not_used", "Observation of no known rating scale "
                      f"({_describe(obs.code)}): not used", entry.label)
            return
        when = self.when(entry)
        if rule.means == "phq9_panel" or (rule.means == "PHQ-9" and (obs.component or
                                                                     obs.hasMember)):
            self.panel(entry, when)
            return
        total = self.total(entry, obs, rule.means)
        if total is None:
            return
        self.add_rating(entry, Scale(rule.means), when, total, None)

    def when(self, entry: _Entry) -> date:
        obs = entry.obj
        when = self.day(entry, "effective[x]", obs.effectiveDateTime or obs.effectiveInstant or (
            obs.effectivePeriod.start if obs.effectivePeriod else None) or obs.issued)
        if when is None:
            raise self.fail(entry, "effective[x]", "no effectiveDateTime, effectivePeriod.start "
                            "or issued: the rating cannot be dated")
        return when

    def lone_item(self, entry: _Entry, item: int) -> None:
        """A PHQ-9 item Observation outside any panel: no total, but its answer is kept for the
        item alerts (a positive item 9 must always be seen)."""
        when = self.when(entry)
        value = self.number(entry.obj, answers=True)
        if value is None:
            self.note("no_value", f"PHQ-9 item {item} Observation without a value: not used",
                      entry.label)
            return
        if self.keep_items(entry, when, {item: value}):
            self.note("item_alone", "PHQ-9 item Observation outside a PHQ-9 panel (44249-1): "
                      "no total; the answer is kept for the item alerts (item 9)", entry.label)

    def keep_items(self, entry: _Entry, when: date, values: dict[int, float]) -> bool:
        """Item answers (1-based item -> score) kept as item readings; a score outside 0-3 is
        named and not used."""
        kept = False
        for item, value in sorted(values.items()):
            if value != int(value) or not 0 <= value <= 3:
                self.note("items_out_of_range", f"PHQ-9 item {item} score {value:g} outside "
                          "0-3: that item not used", entry.label)
                continue
            self.item_readings.append(ItemReading(scale=Scale.phq9, date=when, item=item,
                                                  score=int(value)))
            self.sources.setdefault(f"item:{when.isoformat()}:{item}", []).append(entry.ref)
            kept = True
        return kept

    def total(self, entry: _Entry, holder: Any, scale: str) -> float | None:
        """A scale total; an answer code (LA...) scores one item, never a total."""
        total = self.number(holder)
        if total is None:
            if holder.valueCodeableConcept is not None:
                self.note("total_answer_code", f"{scale} total given as a coded answer "
                          f"({_describe(holder.valueCodeableConcept)}): answer codes score "
                          "single items, not totals; not used", entry.label)
            else:
                self.note("no_value", f"{scale} Observation without a numeric value: not used",
                          entry.label)
        return total

    @property
    def members(self) -> set[str]:
        if self._members is None:
            found: set[str] = set()
            for e in self.by_ref.values():
                if e.rtype == "Observation":
                    found.update(m.reference for m in e.obj.hasMember or [] if m.reference)
            self._members = {self.by_ref[r].ref for r in found if r in self.by_ref}
        return self._members

    def number(self, obs: Any, answers: bool = False) -> float | None:
        """The numeric value; LOINC answer codes and ordinal weights only when `answers` (an
        item answer)."""
        if obs.valueInteger is not None:
            return float(obs.valueInteger)
        if obs.valueQuantity is not None and obs.valueQuantity.value is not None:
            return float(obs.valueQuantity.value)
        if obs.valueString is not None:
            try:
                return float(obs.valueString)
            except ValueError:
                return None
        if obs.valueCodeableConcept is not None and answers:
            scores = self.codes.spec.phq9_answers.codes
            for c in _codings(obs.valueCodeableConcept):
                if c.code in scores:
                    return scores[c.code]
            for c in obs.valueCodeableConcept.coding or []:
                for ext in c.extension or []:
                    if ext.url.endswith(("ordinalValue", "itemWeight")) and \
                            ext.valueDecimal is not None:
                        return float(ext.valueDecimal)
        return None

    def panel(self, entry: _Entry, when: date) -> None:
        """A PHQ-9 panel (44249-1), or a total (44261-6) with components or members: the total
        needs all nine items (or a total given); each item answer is kept even when the total
        cannot be used, so that a positive item 9 always reaches the item alerts."""
        obs = entry.obj
        item_codes = self.codes.spec.phq9_items.codes
        values: dict[int, float] = {}
        total: float | None = None
        parts: list[tuple[list[Coding], Any]] = [(_codings(c.code), c)
                                                 for c in obs.component or []]
        for member in obs.hasMember or []:
            target = self.by_ref.get(member.reference or "")
            if target is not None and target.rtype == "Observation":
                if target.obj.status in SKIP_STATUS["Observation"]:
                    continue  # named by its own pass
                parts.append((_codings(target.obj.code), target.obj))
        for codings, holder in parts:
            for c in codings:
                if self.codes.system_key(c.system) != "loinc":
                    continue
                if c.code in item_codes:
                    value = self.number(holder, answers=True)
                    if value is not None:
                        values[item_codes.index(c.code) + 1] = value
                    else:
                        self.note("no_value", f"PHQ-9 item {item_codes.index(c.code) + 1} "
                                  "without a value: not used", entry.label)
                elif c.code == "44261-6":
                    total = self.total(entry, holder, "PHQ-9")
        if total is None and (obs.valueInteger is not None or obs.valueQuantity is not None
                              or obs.valueString is not None
                              or obs.valueCodeableConcept is not None):
            total = self.total(entry, obs, "PHQ-9")
        usable = {i: v for i, v in values.items() if v == int(v) and 0 <= v <= 3}
        items = [int(usable[i]) for i in range(1, 10)] if len(usable) == 9 else None
        if items is not None and total is None:
            total = float(sum(items))
        elif values and items is None:
            self.note("items_incomplete", f"PHQ-9 with {len(usable)} of 9 usable items: no "
                      "total from them; the items given are kept for the item alerts (item 9)",
                      entry.label)
        kept = False
        if total is None:
            self.note("no_value", "PHQ-9 panel without a total or all nine items: no total "
                      "read", entry.label)
        else:
            kept = self.add_rating(entry, Scale.phq9, when, total, items)
        if values and (items is None or not kept):
            self.keep_items(entry, when, values)

    def add_rating(self, entry: _Entry, scale: Scale, when: date, total: float,
                   items: list[int] | None) -> bool:
        """Keep a reading (False when its total is unusable)."""
        spec = self.k.scales.get(scale.value)
        if spec is not None and not spec.min <= total <= spec.max:
            self.note("value_out_of_range", f"{scale.value} total {total:g} outside "
                      f"{spec.min:g}-{spec.max:g}: not used", entry.label)
            return False
        for reading, _ in self.ratings:
            if reading.scale == scale and reading.date == when and reading.total == total:
                if items is not None and reading.items is None:
                    self.ratings = [(r, w) for r, w in self.ratings if r is not reading]
                    break
                return True
        self.ratings.append((RatingReading(scale=scale, date=when, total=total, items=items),
                             entry.ref))
        return True

    # ---- assembling the patient -----------------------------------------------------------
    def courses(self) -> tuple[list[ECTCourse], list[TreatmentCourse]]:
        gap = timedelta(days=self.settings.session_gap_days)
        ect: list[ECTCourse] = []
        other: list[TreatmentCourse] = []
        for kind, sessions in self.sessions.items():
            groups: list[list[_Session]] = []
            for s in sorted(sessions, key=lambda s: s.start):
                if s.count is not None:
                    groups.append([s])
                    continue
                last = groups[-1] if groups and groups[-1][-1].count is None else None
                if last is not None and s.start - max(x.end or x.start for x in last) <= gap:
                    last.append(s)
                else:
                    groups.append([s])
            for group in groups:
                cid = group[0].ref
                refs = [r for s in group for r in self.sources.get(s.ref, [s.ref])]
                self.sources[cid] = list(dict.fromkeys(refs))
                start = group[0].start
                ends = [s.end or s.start for s in group]
                open_end = any(s.end is None for s in group) and kind in ("esketamine",
                                                                           "ketamine")
                end = None if open_end else max(ends)
                outcome = next((s.outcome for s in reversed(group) if s.outcome), None)
                if group[0].count is not None:
                    sessions_n: int | None = group[0].count
                elif kind in ("esketamine", "ketamine") or (
                        len(group) == 1 and group[0].end is not None):
                    sessions_n = None
                else:
                    sessions_n = len(group)
                if kind == "ect":
                    sides = {s.laterality for s in group} - {Laterality.unknown}
                    side = sides.pop() if len(sides) == 1 else Laterality.unknown
                    if len(sides) > 1:
                        self.note("laterality_mixed", "ECT course with both bilateral and "
                                  "unilateral sessions: placement read as unknown", cid)
                    ect.append(ECTCourse(id=cid, start=start, end=end, sessions=sessions_n,
                                         laterality=side, outcome=outcome))
                else:
                    other.append(TreatmentCourse(
                        id=cid, kind=CourseKind(kind), start=start, end=end,
                        sessions=sessions_n, outcome=outcome))
        return ect, other

    def episodes(self, first_record: date | None) -> list[Episode]:
        found: list[Episode] = []
        past = [m for m in self.mdd if not m.active]
        active = [m for m in self.mdd if m.active]
        for m in past:
            self.sources[m.ref] = [m.ref]
            found.append(Episode(id=m.ref, onset=m.onset, end=m.end, severity=m.severity,
                                 psychotic_features=m.psychotic))
        if active:
            active.sort(key=lambda m: m.onset)
            rated = sorted((m for m in active if m.severity is not None),
                           key=lambda m: m.recorded)
            latest = rated[-1] if rated else None
            if len({m.onset for m in active}) > 1:
                self.note("episodes_merged", "several active MDD Conditions: read as one "
                          f"current episode from the earliest onset ({active[0].onset})",
                          ", ".join(m.ref for m in active))
            self.sources[active[0].ref] = [m.ref for m in active]
            found.append(Episode(
                id=active[0].ref, onset=active[0].onset,
                severity=latest.severity if latest else None,
                psychotic_features=latest.psychotic if latest else False))
        if not found:
            if first_record is None:
                raise InputError(self.name, "no MDD Condition and no treatment or rating of "
                                 "depression: nothing to assess")
            self.note("no_mdd_condition", "no active or past MDD Condition (VSAC Major "
                      "Depression Including Remission, SNOMED 370143000, ICD-10-CM or ICD-10 "
                      "F32/F33): the episode is taken to start at the first "
                      f"treatment or rating ({first_record.isoformat()}), severity unknown",
                      self.name)
            found.append(Episode(onset=first_record))
        found.sort(key=lambda e: e.onset)
        return found

    def build(self, patient_entry: _Entry | None) -> FhirRead:
        ect, other = self.courses()
        dated = [r.start for r in self.regimens] + [c.start for c in ect] + [
            c.start for c in other] + [r.date for r, _ in self.ratings] + [
            i.date for i in self.item_readings]
        episodes = self.episodes(min(dated) if dated else None)

        def home(start: date) -> int:
            index = 0
            for i, e in enumerate(episodes):
                if e.onset <= start:
                    index = i
            return index

        meds: dict[int, list[MedicationRegimen]] = {}
        ects: dict[int, list[ECTCourse]] = {}
        courses: dict[int, list[TreatmentCourse]] = {}
        ratings: dict[int, list[RatingReading]] = {}
        for r in self.regimens:
            meds.setdefault(home(r.start), []).append(r)
        for c in ect:
            ects.setdefault(home(c.start), []).append(c)
        for t in other:
            courses.setdefault(home(t.start), []).append(t)
        for reading, _ in sorted(self.ratings, key=lambda x: x[0].date):
            ratings.setdefault(home(reading.date), []).append(reading)
        answers: dict[int, list[ItemReading]] = {}
        for answer in sorted(self.item_readings, key=lambda x: (x.date, x.item)):
            answers.setdefault(home(answer.date), []).append(answer)
        episodes = [e.model_copy(update={
            "medications": meds.get(i, []), "ect": ects.get(i, []),
            "courses": courses.get(i, []), "ratings": ratings.get(i, []),
            "item_readings": answers.get(i, [])})
            for i, e in enumerate(episodes)]
        birth = sex = death = None
        deceased = False
        if patient_entry is not None:
            res = patient_entry.obj
            birth = self.day(patient_entry, "birthDate", res.birthDate)
            sex = {"female": Sex.female, "male": Sex.male, "other": Sex.other}.get(
                res.gender or "", Sex.unknown)
            death = self.day(patient_entry, "deceasedDateTime", res.deceasedDateTime)
            deceased = death is not None or bool(res.deceasedBoolean)
            if death is not None and birth is not None and death < birth:
                raise self.fail(patient_entry, "deceasedDateTime", f"{death.isoformat()} is "
                                f"before birthDate {birth.isoformat()}")
            if deceased:
                self.sources.setdefault("deceased", []).append(patient_entry.ref)
        patient = Patient(id=self.pid, birth_date=birth, sex=sex or Sex.unknown,
                          death_date=death, deceased=deceased,
                          flags=sorted(self.flags), episodes=episodes)
        return FhirRead(patient=patient, notices=self.notices(), sources=self.sources)


class _FakeConcept:
    """A CodeableConcept stand-in for a medicationReference that carries only a display."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.coding: list[Any] = []

