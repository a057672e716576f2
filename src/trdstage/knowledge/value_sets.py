"""Published diagnosis value sets (knowledge/data/value_sets.yaml): the depression eCQMs' Major
Depression and exclusion value sets from VSAC, code for code, with OID, version and expansion.

One typed loader for every reader: the FHIR adapter matches Condition codings against them and
the OMOP adapter can match concept codes (vocabulary SNOMED / ICD10CM) the same way.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trdstage.knowledge.loader import load_data_file

ValueSetSystem = Literal["snomed", "icd10cm"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueSet(_Model):
    oid: str = Field(pattern=r"^[0-9]+(\.[0-9]+)+$")
    title: str
    version: str
    expansion: str
    used_by: str
    means: str = Field(pattern=r"^(mdd|flag:[a-z_]+)$")
    source: str
    codes: dict[ValueSetSystem, dict[str, str]]

    def has(self, system: str | None, code: str | None) -> bool:
        """True when `code` of `system` ("snomed" or "icd10cm") is in the expansion."""
        if system not in self.codes or not code:
            return False
        return code.strip() in self.codes[system]


class ValueSetsFile(_Model):
    value_sets: dict[str, ValueSet]


@cache
def load_value_sets() -> dict[str, ValueSet]:
    parsed, _ = load_data_file("value_sets.yaml", ValueSetsFile)
    return dict(parsed.value_sets)


def value_set_meaning(system: str | None, code: str | None) -> tuple[str, ValueSet] | None:
    """What a coded diagnosis means by the first value set that holds it (None when none)."""
    for value_set in load_value_sets().values():
        if value_set.has(system, code):
            return value_set.means, value_set
    return None
