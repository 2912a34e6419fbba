"""Models: user-facing scvi-tools models."""

from ._omnicl import OmniCL
from ._omnivi import OmniVI
from ._plans import ContrastiveTrainingPlan, WarmupCosineTrainingPlan

__all__ = ["ContrastiveTrainingPlan", "OmniCL", "OmniVI", "WarmupCosineTrainingPlan"]
