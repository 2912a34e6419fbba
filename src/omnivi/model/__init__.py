"""Models: user-facing scvi-tools models."""

from ._omnicl import OmniCL
from ._omnivi import OmniVI
from ._plans import WarmupCosineTrainingPlan

__all__ = ["OmniCL", "OmniVI", "WarmupCosineTrainingPlan"]
