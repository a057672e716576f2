"""Engines: trial adequacy and outcome, the staging models, and `assess()`."""

from trdstage.engine.assess import assess

__all__ = ["assess"]
