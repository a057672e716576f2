"""Every input error is exit 2 with the file and field named, never a traceback, and no output:
nesting, huge and non-finite numbers, impossible years, non-UTF-8 text, out-of-range policies,
`demo --as-of` before the histories, a 20,000-character flag in a PDF."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fhir_builders import bundle, patient
from trdstage.adapters.errors import InputError
from trdstage.adapters.native import parse_patient_text
from trdstage.cli import app
from trdstage.knowledge import KnowledgeError, load_policy
from trdstage.knowledge.documents import MAX_DEPTH, DocumentError, load_json, load_yaml

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "src/trdstage/examples/d2-ssri-snri.yaml"
POLICY = ROOT / "src/trdstage/knowledge/data/policies/default.yaml"
runner = CliRunner()


def assess(path: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["assess", str(path), "--as-of", "2026-01-01", *extra])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def refused(path: Path, *names: str, extra: tuple[str, ...] = ()) -> str:
    """Exit 2, the message names the file and every one of `names`."""
    code, output = assess(path, *extra)
    assert code == 2, output
    assert "Traceback" not in output
    flat = " ".join(output.split())
    if not extra:  # a policy error names the policy file, in `names`
        assert path.name in flat, output
    for name in names:
        assert name in flat, (name, output)
    return flat


def native(tmp_path: Path, text: str, suffix: str = ".yaml") -> Path:
    path = tmp_path / f"patient{suffix}"
    path.write_text(text, encoding="utf-8")
    return path


BASE = EXAMPLE.read_text(encoding="utf-8")


# --- nesting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deep_yaml_and_json_patient_files(tmp_path: Path, depth: int) -> None:
    deep_yaml = native(tmp_path, "id: x\nepisodes: " + "[" * depth + "]" * depth + "\n")
    assert "nested more than" in refused(deep_yaml)
    deep_json = native(tmp_path, '{"episodes": ' + "[" * depth + "]" * depth + "}", ".json")
    assert "nested more than" in refused(deep_json)


def test_deep_block_yaml_names_the_line(tmp_path: Path) -> None:
    lines = ["episodes:"] + [f"{'  ' * i}- " for i in range(1, 80)]
    text = "id: x\nepisodes:\n" + "".join(f"{'  ' * i}-\n" for i in range(80))
    path = native(tmp_path, text)
    flat = refused(path)
    assert "nested more than" in flat and f"{path.name}:" in flat
    del lines


def test_yaml_alias_bomb_is_refused() -> None:
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(DocumentError, match="values"):
        load_yaml("\n".join(rows) + "\n", "bomb.yaml")


def test_recursive_yaml_alias_is_refused() -> None:
    with pytest.raises(DocumentError, match="nested"):
        load_yaml("a: &a [*a]\n", "loop.yaml")


def test_deep_policy_file_no_crash_of_the_c_parser(tmp_path: Path) -> None:
    """libyaml's composer recursed into a segmentation fault: run in a child process so that a
    crash shows as a failure, not as the end of the test run."""
    deep = tmp_path / "policy.yaml"
    deep.write_text("name: x\nscope: " + "[" * 300_000 + "]" * 300_000 + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "trdstage", "assess", str(EXAMPLE), "--as-of", "2026-01-01",
         "--policy", str(deep)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert "nested more than" in done.stderr and "Traceback" not in done.stderr


def test_deep_fhir_bundle(tmp_path: Path) -> None:
    doc = bundle(patient())
    inner: dict[str, object] = {"url": "http://example.org/x"}
    for _ in range(300):
        inner = {"url": "http://example.org/x", "extension": [inner]}
    doc["entry"][0]["resource"]["extension"] = [inner]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(doc))
    assert "nested more than" in refused(path)


# --- numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("dose", "problem"), [
    ("9" * 400, "400-digit number is too large"),
    ("9" * 5000, "malformed"),
    (".inf", "not a finite number"),
    (".nan", "not a finite number"),
    ("1.0e+300", "too large"),
    ('"' + "9" * 400 + ' mg"', "not a plausible daily dose"),
    ('"1e9 g"', "cannot read dose"),
    ('"2000000 mg"', "not a plausible daily dose"),
])
def test_huge_and_non_finite_numbers(tmp_path: Path, dose: str, problem: str) -> None:
    path = native(tmp_path, BASE.replace("dose: 40 mg", f"dose: {dose}"))
    flat = refused(path)
    assert problem in flat
    if "malformed" not in problem:
        assert "episodes[0].medications[0].steps[0]" in flat


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_json_rating(tmp_path: Path, constant: str) -> None:
    doc = {"id": "x", "episodes": [{"onset": "2024-01-01", "ratings": [
        {"date": "2024-01-02", "scale": "PHQ-9", "total": 0}]}]}
    text = json.dumps(doc).replace('"total": 0', f'"total": {constant}')
    flat = refused(native(tmp_path, text, ".json"))
    assert "episodes[0].ratings[0].total" in flat and "finite" in flat


# --- dates -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "field"), [
    ("birth_date: 1975-03-14", "birth_date: 0001-01-01", "birth_date"),
    ("onset: 2024-11-01", "onset: 0001-01-01", "episodes[0].onset"),
    ("end: 2025-01-10", "end: 9999-12-31", "episodes[0].medications[0].steps[0].end"),
])
def test_years_0001_and_9999(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = native(tmp_path, BASE.replace(old, new))
    assert field in refused(path)


@pytest.mark.parametrize("when", ["0001-01-01", "9999-12-31"])
def test_as_of_out_of_range(when: str) -> None:
    result = runner.invoke(app, ["assess", str(EXAMPLE), "--as-of", when])
    assert result.exit_code == 2 and "outside 1900-01-01" in " ".join(result.output.split())


def test_impossible_date_in_yaml(tmp_path: Path) -> None:
    path = native(tmp_path, BASE.replace("2025-01-10", "2025-02-30"))
    assert "malformed YAML" in refused(path)


def test_demo_as_of_before_a_birth_date() -> None:
    result = runner.invoke(app, ["demo", "--as-of", "1950-01-01"])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "--as-of 1950-01-01 is earlier than the demo histories" in flat
    assert "birth_date" in flat and "Traceback" not in flat


# --- text encoding ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_non_utf8_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"latin1{suffix}"
    text = BASE if suffix == ".yaml" else json.dumps(bundle(patient()))
    path.write_bytes(text.replace("female", "f\xe9male").encode("latin-1"))
    assert "not UTF-8" in refused(path)


def test_non_utf8_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(POLICY.read_bytes().replace(b"name: default", b"name: d\xe9faut"))
    flat = refused(EXAMPLE, "policy.yaml", "not UTF-8", extra=("--policy", str(path)))
    assert "Traceback" not in flat


# --- policies --------------------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "value", "problem"), [
    ("min_adequate_weeks", "1e9", "less than or equal to 104"),
    ("min_adequate_weeks", "0", "greater than 0"),
    ("same_agent_gap_days", "-1", "greater than or equal to 0"),
    ("concurrent_min_days", "100000", "less than or equal to 365"),
    ("baseline_window_days", "9999999", "less than or equal to 365"),
    ("response_min_reduction_pct", "500", "less than or equal to 100"),
    ("partial_response_min_reduction_pct", "60", "is above response_min_reduction_pct"),
    ("ect_min_sessions", "0", "greater than or equal to 1"),
    ("mgh_duration_optimisation_weeks", "-3", "greater than 0"),
    ("european_crd_months", ".inf", "not a finite number"),
    ("regulatory_min_failed_agents", "1000", "less than or equal to 20"),
    ("failure_from_switch_days", "400", "less than or equal to 365"),
    ("failure_outcomes", "[non_response, non_response]", "lists a value twice"),
    ("outcome_scale_priority", "[]", "at least 1 item"),
    ("name", '""', "at least 1 character"),
])
def test_policy_settings_are_bounded(tmp_path: Path, setting: str, value: str,
                                     problem: str) -> None:
    lines = POLICY.read_text(encoding="utf-8").splitlines()
    replaced = [f"{setting}: {value}" if line.startswith(f"{setting}:") else line
                for line in lines]
    assert replaced != lines
    path = tmp_path / "mine.yaml"
    path.write_text("\n".join(replaced) + "\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"mine\.yaml") as caught:
        load_policy(path)
    assert problem in str(caught.value)
    flat = refused(EXAMPLE, "mine.yaml", problem, extra=("--policy", str(path)))
    assert "Traceback" not in flat


def test_policy_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(KnowledgeError, match="expected a mapping"):
        load_policy(path)


def test_every_bundled_policy_is_within_the_bounds() -> None:
    from trdstage.knowledge import policy_names

    for name in policy_names():
        assert load_policy(name).partial_response_min_reduction_pct <= load_policy(
            name).response_min_reduction_pct


# --- long text in a PDF ----------------------------------------------------------------------

def test_pdf_with_a_20000_character_flag(tmp_path: Path) -> None:
    long_flag = "x" * 20_000
    path = native(tmp_path, BASE.replace("sex: female",
                                         f"sex: female\nflags: [suicidality, {long_flag}]"))
    out = tmp_path / "report.pdf"
    code, output = assess(path, "--format", "pdf", "-o", str(out))
    assert code == 0, output
    assert out.read_bytes().startswith(b"%PDF")
    from pypdf import PdfReader

    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    assert "more characters: see the HTML or JSON output" in text


# --- the library API -------------------------------------------------------------------------

def test_library_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match="nested more than"):
        parse_patient_text("episodes: " + "[" * 100 + "]" * 100)
    with pytest.raises(DocumentError, match=r"x\.json:1:"):
        load_json("{", "x.json")
    assert load_json('{"a": [1, 2.5, true, null]}', "ok.json") == {"a": [1, 2.5, True, None]}
