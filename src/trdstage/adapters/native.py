"""The native patient file (YAML or JSON): read, validate, resolve drug names.

The file is the domain's `Patient` in JSON form (`trdstage schema` prints its JSON Schema), with
drug names given as generic, brand or alias and doses with units. Every problem is raised as an
`InputError` naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trdstage.adapters.errors import InputError, format_loc
from trdstage.domain import CourseKind, ECTCourse, Patient, TreatmentCourse
from trdstage.domain.patient import Episode, MedicationRegimen
from trdstage.knowledge import Knowledge, load_knowledge

MAX_FILE_BYTES = 20 * 1024 * 1024


def read_patient_file(path: str | Path, today: date | None = None) -> Patient:
    """Read a native patient file; raise `InputError` with the place of any problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(str(path), f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason})") from exc
    return parse_patient_text(text, str(path), today=today,
                              as_json=path.suffix.lower() == ".json")


def parse_patient_text(text: str, name: str = "<input>", today: date | None = None,
                       as_json: bool = False) -> Patient:
    raw = _load(text, name, as_json)
    return patient_from_mapping(raw, name, today=today)


def _load(text: str, name: str, as_json: bool) -> Any:
    if as_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{exc.lineno}:{exc.colno}",
                             f"malformed JSON: {exc.msg}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise InputError(where, f"malformed YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(name, f"malformed YAML: {exc}") from exc


def patient_from_mapping(raw: Any, name: str = "<input>", today: date | None = None,
                         knowledge: Knowledge | None = None) -> Patient:
    if not isinstance(raw, dict):
        raise InputError(name, "expected a mapping with 'episodes' at the top level")
    try:
        patient = Patient.model_validate(raw)
    except ValidationError as exc:
        raise InputError(*_first_error(name, exc)) from exc
    _check_future(patient, name, today or date.today())
    knowledge = knowledge or load_knowledge()
    check_ratings(patient, name, knowledge)
    return resolve_agents(patient, name, knowledge)


def _first_error(name: str, exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = format_loc(tuple(err["loc"]))
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "required field missing"
    elif msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{name}: {loc}", f"{msg}{suffix}"


def _dated(patient: Patient) -> Iterator[tuple[str, date | None]]:
    """Every date of the history with the place it stands."""
    yield "birth_date", patient.birth_date
    yield "death_date", patient.death_date
    for e_i, ep in enumerate(patient.episodes):
        at = f"episodes[{e_i}]"
        yield f"{at}.onset", ep.onset
        yield f"{at}.end", ep.end
        for m_i, med in enumerate(ep.medications):
            regimens = [(f"{at}.medications[{m_i}]", med.steps)]
            regimens += [(f"{at}.medications[{m_i}].added[{a_i}]", a.steps)
                         for a_i, a in enumerate(med.added)]
            for where, steps in regimens:
                for s_i, step in enumerate(steps):
                    yield f"{where}.steps[{s_i}].start", step.start
                    yield f"{where}.steps[{s_i}].end", step.end
        courses: list[tuple[str, ECTCourse | TreatmentCourse]] = [
            (f"{at}.ect[{c_i}]", c) for c_i, c in enumerate(ep.ect)]
        courses += [(f"{at}.courses[{c_i}]", c) for c_i, c in enumerate(ep.courses)]
        for where, course in courses:
            yield f"{where}.start", course.start
            yield f"{where}.end", course.end
        for r_i, reading in enumerate(ep.ratings):
            yield f"{at}.ratings[{r_i}].date", reading.date
        for i_i, answer in enumerate(ep.item_readings):
            yield f"{at}.item_readings[{i_i}].date", answer.date


def _check_future(patient: Patient, name: str, today: date) -> None:
    for loc, value in _dated(patient):
        if value is not None and value > today:
            raise InputError(f"{name}: {loc}",
                             f"date {value.isoformat()} is in the future (today is "
                             f"{today.isoformat()})")


def check_ratings(patient: Patient, name: str, knowledge: Knowledge) -> None:
    """Totals within the scale's range; item scores, where given, of the right count and range
    and adding up to the total."""
    for e_i, episode in enumerate(patient.episodes):
        for r_i, reading in enumerate(episode.ratings):
            where = f"{name}: episodes[{e_i}].ratings[{r_i}]"
            spec = knowledge.scales[reading.scale.value]
            if not spec.min <= reading.total <= spec.max:
                raise InputError(f"{where}.total", f"{reading.total:g} is outside the "
                                 f"{spec.id} range {spec.min:g}-{spec.max:g}")
            if reading.items is None:
                continue
            if spec.items is None or spec.item_max is None:
                raise InputError(f"{where}.items", f"item scores are not read for {spec.id}")
            if len(reading.items) != spec.items:
                raise InputError(f"{where}.items", f"{spec.id} has {spec.items} items, "
                                 f"{len(reading.items)} given")
            for i_i, item in enumerate(reading.items):
                if not 0 <= item <= spec.item_max:
                    raise InputError(f"{where}.items[{i_i}]", f"item score {item} is outside "
                                     f"0-{spec.item_max}")
            if sum(reading.items) != reading.total:
                raise InputError(f"{where}.total", f"{reading.total:g} differs from the sum "
                                 f"of the item scores ({sum(reading.items)})")
        for i_i, answer in enumerate(episode.item_readings):
            where = f"{name}: episodes[{e_i}].item_readings[{i_i}]"
            spec = knowledge.scales[answer.scale.value]
            if spec.items is None or spec.item_max is None:
                raise InputError(f"{where}.scale", f"item scores are not read for {spec.id}")
            if answer.item > spec.items:
                raise InputError(f"{where}.item", f"{spec.id} has {spec.items} items")
            if answer.score > spec.item_max:
                raise InputError(f"{where}.score", f"item score {answer.score} is outside "
                                 f"0-{spec.item_max}")


def _resolve(knowledge: Knowledge, agent: str, where: str) -> tuple[str, str]:
    match = knowledge.resolve(agent)
    if match is None:
        hints = knowledge.suggest(agent)
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise InputError(where, f"unknown drug {agent!r}{hint}")
    return match.name, match.kind


def _added_agent(knowledge: Knowledge, agent: str, where: str) -> str:
    name, kind = _resolve(knowledge, agent, f"{where}.agent")
    if kind == "rapid_acting":
        raise InputError(f"{where}.agent", f"{name} is recorded as a course "
                         f"(courses: kind {name}), not as an added agent")
    return name


def resolve_agents(patient: Patient, name: str, knowledge: Knowledge) -> Patient:
    """Canonical generic names; esketamine/ketamine given as medications become courses."""
    episodes: list[Episode] = []
    for e_i, episode in enumerate(patient.episodes):
        meds: list[MedicationRegimen] = []
        courses = list(episode.courses)
        for m_i, regimen in enumerate(episode.medications):
            where = f"{name}: episodes[{e_i}].medications[{m_i}]"
            agent, kind = _resolve(knowledge, regimen.agent, f"{where}.agent")
            if kind == "rapid_acting":
                courses.append(_as_course(regimen, CourseKind(
                    knowledge.rapid_acting[agent].course_kind)))
                # the agents taken with esketamine/ketamine (the oral antidepressant started
                # with it) are trials of their own, never dropped with the regimen
                origin = regimen.id or f"episodes[{e_i}].medications[{m_i}]"
                for a_i, extra in enumerate(regimen.added):
                    extra_agent = _added_agent(knowledge, extra.agent, f"{where}.added[{a_i}]")
                    meds.append(MedicationRegimen(
                        id=f"{origin}.added[{a_i}]", agent=extra_agent, steps=extra.steps,
                        adherence=extra.adherence or regimen.adherence,
                        outcome=extra.outcome if extra.outcome is not None
                        else regimen.outcome))
                continue
            added = []
            changed = agent != regimen.agent
            for a_i, extra in enumerate(regimen.added):
                extra_agent = _added_agent(knowledge, extra.agent, f"{where}.added[{a_i}]")
                changed = changed or extra_agent != extra.agent
                added.append(extra if extra_agent == extra.agent
                             else extra.model_copy(update={"agent": extra_agent}))
            meds.append(regimen.model_copy(update={"agent": agent, "added": added})
                        if changed else regimen)
        episodes.append(episode.model_copy(update={"medications": meds, "courses": courses}))
    return patient.model_copy(update={"episodes": episodes})


def _as_course(regimen: MedicationRegimen, kind: CourseKind) -> TreatmentCourse:
    ends = [s.end for s in regimen.steps]
    end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    return TreatmentCourse(id=regimen.id, kind=kind, start=regimen.start, end=end,
                           outcome=regimen.outcome)


def patient_json_schema() -> dict[str, Any]:
    schema = Patient.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trdstage patient file"
    return schema
