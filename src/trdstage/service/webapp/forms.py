"""The history form <-> the native patient document, validated like `trdstage assess`.

Every input is named by its path in the native document (`episodes.0.medications.1.agent`), so a
validation message from `patient_from_mapping` ("form: episodes[0].medications[1].agent: unknown
drug ...") lands beside the field it names. Empty inputs are left out, so that the model's
defaults apply; rows left wholly empty are dropped before validation.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from trdstage.adapters.errors import InputError
from trdstage.adapters.native import patient_from_mapping
from trdstage.domain.patient import Patient
from trdstage.knowledge import load_knowledge

FORM_NAME = "form"
LISTS = ("flags", "other_medications")  # comma-separated text inputs
BOOLS = ("psychotic_features",)
_INDEX = re.compile(r"\[(\d+)\]")
_ACTION = re.compile(r"^(add|remove):([a-z_.0-9]+)$")

# What an empty row of each list holds, so that it renders with its inner rows.
BLANKS: dict[str, Callable[[], dict[str, Any]]] = {
    "episodes": lambda: {"medications": [{"steps": [{}]}]},
    "medications": lambda: {"steps": [{}]},
    "added": lambda: {"steps": [{}]},
}


# The first input of a new row, which gets the focus.
FIRST_FIELD = {"episodes": "onset", "medications": "agent", "added": "agent", "steps": "start",
               "ect": "start", "courses": "kind", "ratings": "scale", "pharmacogenomics": "gene"}


def _blank(kind: str) -> dict[str, Any]:
    make = BLANKS.get(kind)
    return make() if make else {}


def document_from_form(form: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Unflatten dotted names into the nested document (empty values left out)."""
    root: dict[str, Any] = {}
    for name, raw in form:
        if name in ("csrf", "action", "as_of", "policy") or not name:
            continue
        value: Any = raw.strip()
        parts = name.split(".")
        if parts[-1] in BOOLS:
            value = value in ("on", "true", "1", "yes")
        elif parts[-1] in LISTS:
            value = [x.strip() for x in value.split(",") if x.strip()]
        _put(root, parts, value)
    listed: dict[str, Any] = _listify(root)
    return listed


def _put(node: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[parts[-1]] = value


def _listify(node: Any) -> Any:
    """Dicts whose keys are all digits become lists in index order."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def prune(node: Any) -> Any:
    """Drop empty strings, empty lists, false booleans and wholly empty rows."""
    if isinstance(node, dict):
        out = {k: prune(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(node, list):
        items = [prune(v) for v in node]
        return [v for v in items if not _empty(v)]
    return node


def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == [] or value == {}


def _phq_total(doc: dict[str, Any]) -> None:
    """A reading with all its item scores and no total gets the items' sum as its total."""
    for episode in doc.get("episodes") or []:
        for reading in episode.get("ratings") or []:
            items = reading.get("items")
            if isinstance(items, list) and items and "total" not in reading:
                with contextlib.suppress(ValueError):  # bad items: the validation names them
                    reading["total"] = sum(int(i) for i in items)


def apply_action(doc: dict[str, Any], action: str) -> str | None:
    """'add:episodes.0.medications' appends a blank row; 'remove:episodes.0.medications.1'
    drops one. Returns the path of the added row (to focus it), or None."""
    match = _ACTION.match(action)
    if match is None:
        return None
    verb, path = match.groups()
    parts = path.split(".")
    if verb == "add":
        container = _walk(doc, parts[:-1], create=True)
        if not isinstance(container, dict):
            return None
        rows = container.setdefault(parts[-1], [])
        if not isinstance(rows, list):
            return None
        rows.append(_blank(parts[-1]))
        return f"{path}.{len(rows) - 1}.{FIRST_FIELD.get(parts[-1], 'start')}"
    container = _walk(doc, parts[:-1], create=False)
    if isinstance(container, list) and parts[-1].isdigit() and int(parts[-1]) < len(container):
        del container[int(parts[-1])]
    return None


def _walk(node: Any, parts: list[str], create: bool) -> Any:
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node and create:
                node[part] = {}
            node = node.get(part)
        else:
            return None
    return node


def with_blank_rows(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as the form shows it: at least one episode, trial and dose step each."""
    doc = dict(doc)
    episodes = [dict(e) for e in doc.get("episodes") or []] or [_blank("episodes")]
    for episode in episodes:
        meds = [dict(m) for m in episode.get("medications") or []] or [_blank("medications")]
        for med in meds:
            med["steps"] = list(med.get("steps") or []) or [{}]
            med["added"] = [dict(a, steps=list(a.get("steps") or []) or [{}])
                            for a in med.get("added") or []]
        episode["medications"] = meds
    doc["episodes"] = episodes
    return doc


def display_value(value: Any) -> str:
    """A document value as the text an input shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(display_value(v) for v in value)
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']} {value.get('unit', 'mg')}".strip()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def step_dose(step: Mapping[str, Any]) -> str:
    if step.get("dose") is not None:
        return display_value(step["dose"])
    mg = step.get("daily_dose_mg")
    return f"{mg:g} mg" if isinstance(mg, int | float) else ""


def error_path(exc: InputError) -> str:
    """'form: episodes[0].medications[1].agent' -> 'episodes.0.medications.1.agent'."""
    where = exc.where
    if where.startswith(f"{FORM_NAME}: "):
        where = where[len(FORM_NAME) + 2:]
    elif where == FORM_NAME:
        return ""
    if where == "(top level)":
        return ""
    return _INDEX.sub(r".\1", where).lstrip(".")


def validate(doc: dict[str, Any], today: date | None = None
             ) -> tuple[Patient | None, dict[str, str]]:
    """The patient, or the first problem keyed by the path of the field or row it names."""
    _phq_total(doc)
    if not doc.get("id"):
        return None, {"id": "give the patient's local id (a pseudonym, not a name)"}
    try:
        return patient_from_mapping(doc, FORM_NAME, today=today), {}
    except InputError as exc:
        return None, {error_path(exc): exc.message}


def agent_names() -> list[tuple[str, str]]:
    """Every spelling the formulary resolves (generic, alias, brand) with its generic name."""
    k = load_knowledge()
    out: dict[str, str] = {}
    for table in (k.antidepressants, k.augmenters, k.rapid_acting):
        for name, entry in table.items():
            out.setdefault(name, name)
            for spelling in [*getattr(entry, "aliases", []), *entry.brands]:
                out.setdefault(spelling, name)
    return sorted(out.items(), key=lambda x: x[0].lower())


def check_agent(text: str) -> str:
    """The message `trdstage assess` gives for an unknown drug, or what the name resolves to."""
    k = load_knowledge()
    if not text.strip():
        return ""
    match = k.resolve(text)
    if match is None:
        hints = k.suggest(text)
        return f"unknown drug {text!r}" + (f"; did you mean {', '.join(hints)}?" if hints
                                             else "")
    return "" if match.name.lower() == text.strip().lower() else f"read as {match.name}"
