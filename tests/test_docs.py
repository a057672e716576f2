"""The README's examples stay true."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import yaml

from trdstage.adapters.native import patient_from_mapping
from trdstage.engine import assess

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_patient_file_example_is_valid() -> None:
    block = re.search(r"### The patient file.*?```yaml\n(.*?)```", README, re.S)
    assert block is not None
    patient = patient_from_mapping(yaml.safe_load(block.group(1)), "README.md",
                                   today=date(2026, 1, 1))
    result = assess(patient, as_of=date(2026, 1, 1))
    assert result.trials[0].agents == ["sertraline"]
    assert result.trials[0].concurrent[0].agent == "lithium"


def test_readme_has_exactly_two_setup_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^make \w+", quick, re.M)
    assert commands == ["make demo", "make test"]
