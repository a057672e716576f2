"""Engines: trial adequacy and outcome, the staging models, and `assess()`.

`assess` loads on first use (PEP 562): the cohort engine imports `engine.timeline` alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trdstage.engine.assess import assess


def __getattr__(name: str) -> Any:
    if name != "assess":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from trdstage.engine.assess import assess

    globals()["assess"] = assess
    return assess


__all__ = ["assess"]
