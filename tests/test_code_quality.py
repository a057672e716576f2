"""The house rules hold on every run: ruff (with its bandit rules) over the tree, strict mypy
over the package, and the layering: the domain core and the engines import no adapter."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "trdstage"


def _tool(name: str) -> list[str]:
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip(f"{name} is not installed in this environment")
    return [exe]


def test_ruff() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "src", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict() -> None:
    proc = subprocess.run([*_tool("mypy")], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


# layer -> what it may not import (arrows point inward)
FORBIDDEN = {
    "domain": ("trdstage.knowledge", "trdstage.engine", "trdstage.advice", "trdstage.adapters",
               "trdstage.cohort", "trdstage.report", "trdstage.cli", "yaml", "httpx", "duckdb",
               "ibis"),
    "knowledge": ("trdstage.engine", "trdstage.advice", "trdstage.adapters", "trdstage.cohort",
                  "trdstage.report", "trdstage.cli"),
    "engine": ("trdstage.advice", "trdstage.adapters", "trdstage.cohort", "trdstage.report",
               "trdstage.cli"),
    "advice": ("trdstage.adapters", "trdstage.cohort", "trdstage.report", "trdstage.cli"),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_point_inward(layer: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in _imports(path):
            if module.startswith(FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
