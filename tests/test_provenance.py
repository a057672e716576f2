"""Every text a user can see in the knowledge data (messages, caveats, notes, option labels,
citations and the source keys themselves) points at published sources or at the product's own
documentation (docs/*.md ships with the product): never at working files that do not ship, such
as research notes or issue numbers."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import yaml

from trdstage.knowledge import load_knowledge

DATA = resources.files("trdstage.knowledge") / "data"
NOT_SHIPPED = re.compile(
    r"§|research[ -]notes?|\bthe note\b|shared/research|\bissue[ -]?\d|"
    r"(staging-models|treatment-knowledge|ecosystem|service|knowledge-audit)\.md",
    re.IGNORECASE)


def _texts(obj: Any, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append((f"{where} (key)", str(key)))
            out += _texts(value, f"{where}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _texts(value, f"{where}[{i}]")
    elif isinstance(obj, str):
        out.append((where, obj))
    return out


def _data_files() -> list[Any]:
    files = [f for f in DATA.iterdir() if f.name.endswith(".yaml")]
    files += [f for f in (DATA / "policies").iterdir() if f.name.endswith(".yaml")]
    return sorted(files, key=lambda f: f.name)


def test_no_knowledge_text_cites_a_file_that_does_not_ship() -> None:
    bad = [(where, text) for f in _data_files()
           for where, text in _texts(yaml.safe_load(f.read_text(encoding="utf-8")), f.name)
           if NOT_SHIPPED.search(text)]
    assert bad == []


def test_every_cited_source_reads_as_a_published_citation() -> None:
    for key, src in load_knowledge().sources.items():
        assert not NOT_SHIPPED.search(key + " " + src.citation + " " + (src.note or "")), key


def test_the_scan_catches_what_it_is_for() -> None:
    for text in ("as in staging-models.md §5", "project defaults (issue 2)",
                 "read from the research notes", "shared/research/ecosystem.md"):
        assert NOT_SHIPPED.search(text), text
    for text in ("MHRA Drug Safety Update volume 5(5)", "documented in docs/models.md",
                 "http://www.nlm.nih.gov/research/umls/rxnorm"):
        assert not NOT_SHIPPED.search(text), text
