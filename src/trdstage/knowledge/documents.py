"""Parse the YAML and JSON documents a user gives (patient files, FHIR Bundles, server pages,
policy files) with bounds: nesting depth, node count (YAML aliases), number size, finite numbers.

A document outside the bounds is a `DocumentError` naming the place (line and column, or the
field path), never a RecursionError, a crash of the C parser or a number that overflows later.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

MAX_DEPTH = 64  # real FHIR Bundles nest about 12 levels, patient files 6
MAX_NODES = 5_000_000  # values visited, aliases counted each time they are used
MAX_MAGNITUDE = 1e15  # no dose, duration, score or count comes near this

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class DocumentError(ValueError):
    """A document outside the bounds: `where` names the place, `message` what is wrong."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def load_json(text: str | bytes, name: str) -> Any:
    """Parse JSON text; refuse it beyond the bounds of this module."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{name}:{exc.lineno}:{exc.colno}",
                            f"malformed JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise DocumentError(name, f"malformed JSON: nested more than {MAX_DEPTH} levels") \
            from exc
    except UnicodeDecodeError as exc:
        raise DocumentError(name, f"not UTF-8 text ({exc.reason})") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise DocumentError(name, f"malformed JSON: {exc}") from exc
    check_tree(data, name)
    return data


def load_yaml(text: str, name: str) -> Any:
    """Parse YAML text (safe loader); the nesting depth is checked on the event stream before
    anything is built, so no parser recurses deeper than MAX_DEPTH."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
                    raise DocumentError(where, f"nested more than {MAX_DEPTH} levels")
            elif isinstance(event, _CLOSE):
                depth -= 1
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise DocumentError(where, f"malformed YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise DocumentError(name, f"malformed YAML: {exc}") from exc
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a date 2024-02-30
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(name, f"malformed YAML: {exc}") from exc
    check_tree(data, name)
    return data


def _bad_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if abs(value) > MAX_MAGNITUDE:
            return f"{value:g} is too large (at most {MAX_MAGNITUDE:g})"
    elif isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        digits = len(str(abs(value)))
        return f"a {digits}-digit number is too large (at most {MAX_MAGNITUDE:g})"
    return None


def check_tree(data: Any, name: str) -> None:
    """Depth, node count and numbers of a parsed document (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise DocumentError(name, f"more than {MAX_NODES:,} values (YAML aliases "
                                "expanded); refused")
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            problem = _bad_value(value)
            if problem:
                raise DocumentError(f"{name}: {_locate(data, value)}", problem)
            continue
        if depth >= MAX_DEPTH:
            raise DocumentError(name, f"nested more than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _locate(data: Any, target: Any) -> str:
    """The field path of the value object `target` (bounded: called after the depth check)."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        items: Any = (value.items() if isinstance(value, dict)
                      else enumerate(value) if isinstance(value, list) else ())
        for key, child in items:
            here = (f"{path}[{key}]" if isinstance(key, int)
                    else f"{path}.{key}" if path else str(key))
            if child is target:
                return here
            stack.append((child, here))
    return "(top level)"
