"""The staging models, one module each, all behind `StagingModel`."""

from trdstage.engine.models.base import StagingModel
from trdstage.engine.models.european import EuropeanModel
from trdstage.engine.models.maudsley import MaudsleyModel
from trdstage.engine.models.mgh import MghModel
from trdstage.engine.models.regulatory import RegulatoryModel
from trdstage.engine.models.thase_rush import ThaseRushModel

__all__ = [
    "EuropeanModel",
    "MaudsleyModel",
    "MghModel",
    "RegulatoryModel",
    "StagingModel",
    "ThaseRushModel",
]
