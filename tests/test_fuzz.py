"""Mutation fuzzing of the bundled examples (native files, FHIR Bundles, policies) through the
command line, in-process, within a fixed budget (derandomized: the same mutants every run).

For every mutant: exit 0 or 2, never a traceback; an error names the file; on an error nothing
is written; on success every medication, procedure and observation of the input is used or
named in a warning (or counted in one: "... and N more").
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from trdstage.adapters.fhir import read_fhir_data
from trdstage.cli import app
from trdstage.knowledge import KnowledgeError, load_policy

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "src/trdstage/examples"
POLICIES = ROOT / "src/trdstage/knowledge/data/policies"
AS_OF = "2026-01-01"
RECORD_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationDispense", "Procedure",
                "Observation")
runner = CliRunner()

# the CI budget: about 20 s in all on 2 cores; TRDSTAGE_FUZZ_EXAMPLES=5000 for a deeper run
EXAMPLES_PER_TEST = int(os.environ.get("TRDSTAGE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES_PER_TEST, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HOSTILE: list[Any] = [
    None, "", -1, 0, 1, 2.5, -0.5, 10**12, -(10**12), 1e308, True, False, "x" * 300,
    "9999-12-31", "0001-01-01", "2024-02-30", "2024-13-01", "2025-06-01", "1999-01-01",
    "2024-03-01T10:00:00+99:00", "not a date", [], {}, [None], {"x": 1}, "\u0000", "Σ ü 漢",
    "10 mg", "-5 mg", "abc mg", "1e400 mg", "sertraline", "Zoloft", "lithium", "esketamine",
    "PHQ-9", "http://loinc.org", "44261-6", "44260-8", "F33.2", "mg", "d", "wk", "NaN",
]


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


NATIVE = [(p.name, _load(p)) for p in sorted(EXAMPLES.glob("*.yaml"))]
FHIR = [(p.name, _load(p)) for p in sorted((EXAMPLES / "fhir").glob("*.json"))]
POLICY = [(p.name, _load(p)) for p in sorted(POLICIES.glob("*.yaml"))]


def _slots(doc: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) of the document, iteratively."""
    stack = [doc]
    while stack:
        node = stack.pop()
        items: Any = (node.items() if isinstance(node, dict)
                      else enumerate(node) if isinstance(node, list) else ())
        for key, child in items:
            yield node, key
            stack.append(child)


@st.composite
def mutants(draw: st.DrawFn, seeds: list[tuple[str, Any]]) -> tuple[str, Any]:
    name, seed = draw(st.sampled_from(seeds))
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(doc))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(("hostile", "hostile", "delete", "duplicate", "splice")))
        before = json.dumps(container, default=str)[:300]
        if op == "hostile":
            container[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
        elif op == "delete":
            del container[key]
        elif op == "duplicate" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        else:  # a value from elsewhere in the document: type-aware nonsense
            _, other_key = other = draw(st.sampled_from(slots))
            container[key] = copy.deepcopy(other[0][other_key])
        note(f"{name}: {op} at {key!r} of {before}")
    return name, doc


def _run(path: Path, tmp: Path) -> tuple[int, str, Path]:
    out = tmp / "result.json"
    out.unlink(missing_ok=True)
    result = runner.invoke(app, ["assess", str(path), "--as-of", AS_OF, "--format", "json",
                                 "-o", str(out)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crash on {path.name}: {result.exception!r}\n"
                             f"{path.read_text(encoding='utf-8', errors='replace')[:3000]}"
                             ) from result.exception
    output = " ".join(result.output.split())
    assert result.exit_code in (0, 2), output
    assert "Traceback" not in output
    if result.exit_code == 2:
        assert path.name in output, output  # the error names the file
        assert not out.exists(), "output written although the run failed"
        assert [p.name for p in tmp.iterdir() if p.name.endswith(".tmp")] == []
    return result.exit_code, output, out


def _more(warnings: list[dict[str, Any]]) -> int:
    return sum(int(n) for w in warnings
               for n in re.findall(r"and (\d+) more", f"{w['message']} {w.get('where') or ''}"))


@FUZZ
@given(case=mutants(NATIVE))
def test_fuzz_native_files(tmp_path_factory: pytest.TempPathFactory,
                           case: tuple[str, Any]) -> None:
    name, doc = case
    tmp = tmp_path_factory.mktemp("native")
    path = tmp / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    code, _, out = _run(path, tmp)
    if code != 0:
        return
    result = json.loads(out.read_text(encoding="utf-8"))
    shown = json.dumps(result)
    ids = [item["id"] for ep in doc.get("episodes") or [] if isinstance(ep, dict)
           for kind in ("medications", "ect", "courses")
           for item in ep.get(kind) or []
           if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]]
    missing = [i for i in ids if json.dumps(i) not in shown]
    assert not missing, f"input records neither used nor named: {missing}"


@FUZZ
@given(case=mutants(FHIR))
def test_fuzz_fhir_bundles(tmp_path_factory: pytest.TempPathFactory,
                           case: tuple[str, Any]) -> None:
    name, doc = case
    tmp = tmp_path_factory.mktemp("fhir")
    path = tmp / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, _, out = _run(path, tmp)
    if code != 0 or not isinstance(doc, dict):
        return
    result = json.loads(out.read_text(encoding="utf-8"))
    assert_nothing_vanishes(doc, result)


def assert_nothing_vanishes(doc: dict[str, Any], result: dict[str, Any]) -> None:
    """Every record of a read type is in the result (trials), its sources (the derivedFrom of
    `--format fhir`: regimens, courses, ECT sessions) or a warning; observations that became
    ratings carry no id, so those are counted instead."""
    read = read_fhir_data(doc)
    shown = json.dumps(result) + json.dumps(read.sources)
    entries = list(enumerate(doc.get("entry") or []))
    records = [e["resource"] for _, e in entries if isinstance(e, dict)
               and isinstance(e.get("resource"), dict)
               and e["resource"].get("resourceType") in RECORD_TYPES]
    names = [(f"{r['resourceType']}/{r['id']}" if r.get("id")
              else f"{r['resourceType']} (entry {i})", e.get("fullUrl"))
             for i, e in entries if isinstance(e, dict)
             and isinstance(r := e.get("resource"), dict)
             and r.get("resourceType") in RECORD_TYPES]
    missing = [label for label, url in names if label not in shown
               and not (isinstance(url, str) and url and json.dumps(url) in shown)]
    # the same resource twice (one id) is one record; equal readings merge into one rating
    observations = sorted({m for m in missing if m.startswith("Observation")})
    others = [m for m in missing if not m.startswith("Observation")]
    allowance = _more(result["warnings"])
    # the ratings read (they carry no id: each panel, total or item read counts once)
    ratings = sum(len(ep.ratings) for ep in read.patient.episodes)
    panels = sum(len(r.get("hasMember") or []) for r in records
                 if r["resourceType"] == "Observation" and isinstance(r.get("hasMember"), list))
    assert len(others) <= allowance, f"records neither used nor named: {others}"
    assert len(observations) <= ratings + panels + allowance, observations


@settings(max_examples=2 * EXAMPLES_PER_TEST, deadline=None, derandomize=True, database=None)
@given(case=mutants(POLICY))
def test_fuzz_policy_files(tmp_path_factory: pytest.TempPathFactory,
                           case: tuple[str, Any]) -> None:
    name, doc = case
    path = tmp_path_factory.mktemp("policy") / f"mine-{name}"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    try:
        policy = load_policy(path)
    except KnowledgeError as exc:
        assert path.name in str(exc)
        return
    assert policy.partial_response_min_reduction_pct <= policy.response_min_reduction_pct


@FUZZ
@given(name_doc=st.sampled_from(NATIVE + FHIR), cut=st.floats(0, 1),
       noise=st.binary(min_size=0, max_size=8))
def test_fuzz_truncated_and_corrupted_bytes(tmp_path_factory: pytest.TempPathFactory,
                                            name_doc: tuple[str, Any], cut: float,
                                            noise: bytes) -> None:
    name, _ = name_doc
    folder = EXAMPLES / "fhir" if name.endswith(".json") else EXAMPLES
    data = (folder / name).read_bytes()
    at = int(len(data) * cut)
    tmp = tmp_path_factory.mktemp("bytes")
    path = tmp / name
    path.write_bytes(data[:at] + noise + data[at + len(noise):])
    _run(path, tmp)


def test_seeds_pass_the_checks(tmp_path: Path) -> None:
    """The unmutated examples satisfy every assertion of the fuzzers."""
    for name, doc in FHIR:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        code, output, out = _run(path, tmp_path)
        assert code == 0, output
        assert_nothing_vanishes(doc, json.loads(out.read_text()))
    assert date.fromisoformat(AS_OF)
