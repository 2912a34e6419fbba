"""Models: user-facing scvi-tools models."""

from ._omnivi import OmniVI

__all__ = ["OmniVI"]
