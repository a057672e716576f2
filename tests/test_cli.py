"""`trdstage assess`, `schema`, `policies`, `demo`: the JSON contract and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trdstage.cli import app

EXAMPLE = (Path(__file__).parents[1] / "src/trdstage/examples/d2-ssri-snri.yaml").as_posix()
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_contract() -> None:
    code, out, _ = run("assess", EXAMPLE, "--as-of", "2026-01-01", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["as_of"] == "2026-01-01"
    trial = data["trials"][0]
    for key in ("id", "agents", "start", "end", "adequate", "outcome", "failed", "reasons"):
        assert key in trial
    assert trial["outcome"] in {"response", "partial_response", "non_response", "intolerance",
                                "unknown"}
    s = data["staging"]
    assert isinstance(s["thase_rush"]["stage"], int) and "caveats" in s["thase_rush"]
    assert isinstance(s["mgh"]["score"], float)
    assert s["maudsley"]["score"] == 7 and s["maudsley"]["band"] == "moderate"
    assert s["european"]["category"] == "TRD1"
    assert s["regulatory"]["met"] is True
    assert isinstance(data["warnings"], list)
    assert "not a medical device" in data["disclaimer"]


def test_text_is_a_ten_second_summary() -> None:
    code, out, _ = run("assess", EXAMPLE, "--as-of", "2026-01-01")
    assert code == 0
    head = out.splitlines()[:9]
    assert any("Thase & Rush" in line and "stage II" in line for line in head)
    assert any("Regulatory TRD" in line and "met" in line for line in head)
    assert "not a medical device" in out


def test_markdown_and_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.md"
    code, _, _ = run("assess", EXAMPLE, "--as-of", "2026-01-01", "--format", "markdown",
                     "-o", str(target))
    assert code == 0
    text = target.read_text()
    assert text.startswith("# TRD staging") and "| Thase & Rush | stage II" in text


def test_policy_option_changes_the_reading() -> None:
    d7 = EXAMPLE.replace("d2-ssri-snri", "d7-bupropion-mirtazapine")
    out = {p: json.loads(run("assess", d7, "--as-of", "2026-01-01", "--format", "json",
                             "--policy", p)[1]) for p in ("default", "literal-sequential")}
    assert out["default"]["staging"]["thase_rush"]["stage"] == 2
    assert out["literal-sequential"]["staging"]["thase_rush"]["stage"] == 1
    assert out["literal-sequential"]["policy"] == "literal-sequential"


def test_policy_from_a_file(tmp_path: Path) -> None:
    from trdstage.knowledge.loader import DATA
    custom = tmp_path / "strict.yaml"
    text = (DATA / "policies" / "default.yaml").read_text().replace(
        "min_adequate_weeks: 6", "min_adequate_weeks: 10").replace("name: default", "name: strict")
    custom.write_text(text)
    data = json.loads(run("assess", EXAMPLE, "--as-of", "2026-01-01", "--format", "json",
                          "--policy", str(custom))[1])
    assert data["policy"] == "strict" and not data["trials"][0]["adequate"]


def test_schema_describes_the_patient_file() -> None:
    code, out, _ = run("schema")
    assert code == 0
    schema = json.loads(out)
    assert "episodes" in schema["properties"]
    assert "dose" in schema["$defs"]["DoseStep"]["properties"]


def test_policies_and_demo_run() -> None:
    assert run("policies")[0] == 0
    code, out, _ = run("demo")
    assert code == 0 and "D4" in out and "DEMO-1" in out


def _bad(tmp_path: Path, text: str, suffix: str = ".yaml") -> tuple[int, str]:
    f = tmp_path / f"patient{suffix}"
    f.write_text(text)
    target = tmp_path / "result.json"
    code, out, err = run("assess", str(f), "--as-of", "2026-01-01", "-o", str(target))
    assert not target.exists()  # nothing half-written
    assert "Traceback" not in out + err
    return code, " ".join(err.split())


VALID_STEP = "{start: 2025-01-10, end: 2025-03-10, dose: 100 mg}"


# Native inputs `assess` refuses, with a piece of the message (the service refuses the same).
BAD_INPUTS = [
    ("episodes: [{onset: 2025-01-01, bad", "malformed YAML"),
    ("episodes: [{severity: mild}]", "episodes[0].onset: required field missing"),
    ("episodes: [{onset: 2025-01-01, medications: "
     f"[{{agent: sertralin, steps: [{VALID_STEP}]}}]}}]",
     "unknown drug 'sertralin'; did you mean sertraline"),
    ("episodes: [{onset: 2025-01-01, medications: [{agent: sertraline, steps: "
     "[{start: 2025-03-10, end: 2025-01-10, dose: 100 mg}]}]}]", "end 2025-01-10 is before start"),
    ("episodes: [{onset: 2099-01-01}]", "in the future"),
    ("episodes: [{onset: 2025-01-01, medications: [{agent: sertraline, steps: "
     "[{start: 2025-01-10, dose: -50 mg}]}]}]", "negative dose"),
    ("episodes: [{onset: 2025-01-01, medications: [{agent: sertraline, steps: "
     "[{start: 2025-01-10, dose: 2 tablets}]}]}]", "unknown dose unit 'tablets'"),
    ("episodes: [{onset: 2025-01-01, colour: blue}]", "episodes[0].colour: Extra inputs"),
    ("- just\n- a list\n", "expected a mapping"),
    ("episodes: [{onset: 2025-01-01, ratings: [{scale: PHQ-9, date: 2025-02-01, total: 30}]}]",
     "ratings[0].total: 30 is outside the PHQ-9 range 0-27"),
    ("episodes: [{onset: 2025-01-01, ratings: [{scale: PHQ-9, date: 2025-02-01, total: 5, "
     "items: [1, 1, 1, 1, 1]}]}]", "PHQ-9 has 9 items, 5 given"),
    ("episodes: [{onset: 2025-01-01, ratings: [{scale: PHQ-9, date: 2025-02-01, total: 10, "
     "items: [1, 1, 1, 1, 1, 1, 1, 1, 1]}]}]", "differs from the sum"),
    ("episodes: [{onset: 2025-01-01, ratings: [{scale: BDI, date: 2025-02-01, total: 9}]}]",
     "ratings[0].scale"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INPUTS)
def test_bad_input_is_named_and_exits_2(tmp_path: Path, text: str, expected: str) -> None:
    code, err = _bad(tmp_path, text)
    assert code == 2
    assert expected in err
    assert "patient.yaml" in err


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, '{"episodes": [}', suffix=".json")
    assert code == 2 and "patient.json:1:" in err and "malformed JSON" in err


def test_missing_file_and_unknown_policy(tmp_path: Path) -> None:
    code, _, err = run("assess", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such file" in err
    code, _, err = run("assess", EXAMPLE, "--policy", "defualt")
    assert code == 2 and "did you mean 'default'" in " ".join(err.split())


def test_bad_as_of_date() -> None:
    code, _, _ = run("assess", EXAMPLE, "--as-of", "01/02/2026")
    assert code == 2


def test_doses_in_grams_and_micrograms_are_converted(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("episodes: [{onset: 2025-01-01, medications: [{agent: Zoloft, outcome: "
                 "non_response, steps: [{start: 2025-01-10, end: 2025-03-10, dose: 0.1 g}], "
                 "added: [{agent: T3, steps: [{start: 2025-01-20, end: 2025-03-10, "
                 "dose: 25 µg}]}]}]}]")
    data = json.loads(run("assess", str(f), "--as-of", "2026-01-01", "--format", "json")[1])
    trial = data["trials"][0]
    assert trial["agents"] == ["sertraline"] and trial["max_daily_dose_mg"] == 100
    assert trial["concurrent"][0]["agent"] == "liothyronine"


def test_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("episodes: [")
    proc = subprocess.run([sys.executable, "-m", "trdstage", "assess", str(f)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "malformed YAML" in proc.stderr


def test_result_schema_names_the_contract_fields() -> None:
    code, out, _ = run("schema", "--result")
    assert code == 0
    schema = json.loads(out)
    assert {"as_of", "trials", "staging", "warnings", "disclaimer"} <= set(schema["properties"])
    assert "stage" in schema["$defs"]["ThaseRushResult"]["properties"]
