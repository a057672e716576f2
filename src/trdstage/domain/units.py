"""Daily dose parsing and unit conversion to milligrams (pure)."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

MG_PER_UNIT = {
    "mg": 1.0,
    "milligram": 1.0,
    "milligrams": 1.0,
    "g": 1000.0,
    "gram": 1000.0,
    "grams": 1000.0,
    "mcg": 0.001,
    "µg": 0.001,
    "μg": 0.001,
    "ug": 0.001,
    "microgram": 0.001,
    "micrograms": 0.001,
}
# A bound against overflowing input (a kilogram a day), far above any drug's dose: not clinical.
MAX_DOSE_MG = 1_000_000.0
_DOSE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([^\s/]+)?\s*(?:/\s*(?:day|d|24\s*h))?\s*$",
                   re.IGNORECASE)


class DoseError(ValueError):
    pass


def to_mg(value: float, unit: str) -> float:
    factor = MG_PER_UNIT.get(unit.strip().lower()) or MG_PER_UNIT.get(unit.strip())
    if factor is None:
        raise DoseError(f"unknown dose unit {unit!r} (use mg, g or µg/mcg)")
    if value < 0:
        raise DoseError(f"negative dose {value:g}")
    if not math.isfinite(value) or value * factor > MAX_DOSE_MG:
        raise DoseError(f"dose {value:g} {unit} is not a plausible daily dose")
    return round(value * factor, 6)


def parse_dose(raw: Any) -> float:
    """A daily dose as a number (mg), a string such as '150 mg' or '0.6 g/day', or a mapping
    {value, unit}; returns mg per day."""
    if isinstance(raw, bool):
        raise DoseError(f"dose must be a number or a string such as '150 mg', not {raw!r}")
    if isinstance(raw, int | float):
        return to_mg(float(raw), "mg")
    if isinstance(raw, dict):
        if set(raw) - {"value", "unit"} or "value" not in raw:
            raise DoseError("dose mapping takes 'value' and 'unit'")
        value = raw["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DoseError(f"dose value must be a number, not {value!r}")
        return to_mg(float(value), str(raw.get("unit", "mg")))
    if isinstance(raw, str):
        return _parse_dose_text(raw)
    raise DoseError(f"dose must be a number or a string such as '150 mg', not {raw!r}")


@lru_cache(maxsize=4096)
def _parse_dose_text(raw: str) -> float:
    """Dose strings repeat across records ('100 mg'): parsed once each."""
    text = raw.strip()
    if text.startswith("-"):
        raise DoseError(f"negative dose {text!r}")
    match = _DOSE.match(text)
    if not match:
        raise DoseError(f"cannot read dose {raw!r} (expected e.g. '150 mg')")
    return to_mg(float(match.group(1)), match.group(2) or "mg")
