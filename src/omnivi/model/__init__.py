"""Models: user-facing scvi-tools models."""

from ._omnicl import OmniCL
from ._omnivi import OmniVI
from ._plans import (
    ContrastiveTrainingPlan,
    OmniAdversarialTrainingPlan,
    OmniTrainingPlan,
    TrainingCellStatistics,
    WarmupCosineTrainingPlan,
)

__all__ = [
    "ContrastiveTrainingPlan",
    "OmniAdversarialTrainingPlan",
    "OmniCL",
    "OmniTrainingPlan",
    "OmniVI",
    "TrainingCellStatistics",
    "WarmupCosineTrainingPlan",
]
