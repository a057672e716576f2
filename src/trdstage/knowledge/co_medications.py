"""Co-medication names (`other_medications`) -> the generic names the interaction rules use.

A name resolves when it, or a run of one to three of its words, is a generic named by a
safety.yaml group, a formulary name (generic, brand or alias), or a co-medication brand from
knowledge/data/co_medications.yaml: "Tramadol 50 mg", "Ultram", "Zyvox 600 mg tablet" and
"St John's wort extract" all resolve. What does not resolve is reported, never dropped.
"""

from __future__ import annotations

import re
from functools import cache

from pydantic import BaseModel, ConfigDict

from trdstage.knowledge.loader import load_data_file

_WORD = re.compile(r"[^\s,;:()\[\]/]+")


class CoMedicationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    brands: dict[str, str]
    brands_source: str


@cache
def co_medication_brands() -> dict[str, str]:
    parsed, _ = load_data_file("co_medications.yaml", CoMedicationsFile)
    return {" ".join(k.lower().split()): v for k, v in parsed.brands.items()}


def resolve_name(name: str, known: frozenset[str], aliases: dict[str, str]) -> str | None:
    """The generic for `name`: the whole name first, then the longest run of words found in
    `known` (generic names) or `aliases` (brand or alias -> generic)."""
    words = _WORD.findall(name.lower())
    for size in range(len(words), 0, -1):
        for i in range(len(words) - size + 1):
            phrase = " ".join(words[i:i + size])
            if phrase in known:
                return phrase
            if phrase in aliases:
                return aliases[phrase]
    return None
