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


# --------------------------------------------------------------------------- docs are the product's

ROOT = Path(__file__).parents[1]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PRODUCT_DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS]
# Work history: the story of how the product was reached (git history holds it), not the product.
HISTORY = re.compile(
    r"\b(?:this|that|last|previous|next|first|second|third|fourth|fifth|sixth|seventh|eighth"
    r"|ninth|tenth|earlier|later) session\b"
    r"|\bsessions? \d+\b|\bsession'?s (?:code|change|runs?)\b"
    r"|\btried without gain\b|\bwhat (?:the|this) \w+ changed\b|\bused to\b|\bno longer\b"
    r"|\bearlier figures\b|\bwhen last measured\b|\bat present\b|\buntil (?:that|this) default\b"
    r"|\bwork notes?\b|\bthis (?:issue|pull request|PR)\b", re.I)
# A document that does not ship with the product: the project's research notes and work notes,
# and issues of its tracker.
NOT_SHIPPED = re.compile(
    r"docs/notes\b|shared/research|research notes?\b"
    r"|(?<!docs/)\b(?:staging-models|treatment-knowledge|ecosystem|knowledge-audit)\.md\b"
    r"|(?<!docs/)\bservice\.md\s*§"  # the research note of that name, cited by section
    r"|\bissues?[ -]#?\d+(?![\w-])|\bissue-\d+\.md\b",
    re.I)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _lines(path: Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def test_docs_hold_no_work_history() -> None:
    assert not (ROOT / "docs" / "notes").exists()
    found = [f"{p.relative_to(ROOT)}:{n}: {m.group(0)!r}" for p in PRODUCT_DOCS
             for n, line in _lines(p) for m in HISTORY.finditer(line)]
    assert not found, "\n".join(found)


def test_doc_links_lead_to_files_that_exist() -> None:
    broken = []
    for path in PRODUCT_DOCS:
        for n, line in _lines(path):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target) or target.startswith("#"):
                    continue  # a web address, or a place in the same page
                if not (path.parent / target.split("#", 1)[0]).exists():
                    broken.append(f"{path.relative_to(ROOT)}:{n}: {target}")
    assert not broken, "\n".join(broken)


def _product_files() -> list[Path]:
    return sorted(p for p in (ROOT / "src").rglob("*")
                  if p.is_file()
                  and p.suffix in {".py", ".md", ".txt", ".html", ".j2", ".css", ".yaml", ".toml"})


def test_no_product_file_cites_a_document_that_does_not_ship() -> None:
    found = [f"{p.relative_to(ROOT)}:{n}: {m.group(0)!r}"
             for p in [*_product_files(), *PRODUCT_DOCS, *sorted((ROOT / "bench").glob("*.py"))]
             for n, line in _lines(p) for m in NOT_SHIPPED.finditer(line)]
    assert not found, "\n".join(found)


def test_cited_docs_exist() -> None:
    """Where code or docs point at a page of docs/, that page ships."""
    missing = [f"{p.relative_to(ROOT)}:{n}: {m.group(0)}"
               for p in [*_product_files(), *PRODUCT_DOCS, *sorted((ROOT / "bench").glob("*.py"))]
               for n, line in _lines(p) for m in re.finditer(r"docs/[\w./-]+\.md", line)
               if not (ROOT / m.group(0)).exists()]
    assert not missing, "\n".join(missing)
