"""The one interface every staging model implements."""

from __future__ import annotations

from typing import Protocol

from trdstage.domain.results import ModelResult
from trdstage.engine.context import StagingContext


class StagingModel(Protocol):
    id: str
    name: str

    def assess(self, ctx: StagingContext) -> ModelResult:
        """Compute the model's result, with the ids it counted, its reasons and caveats."""
        ...
