"""Modules: scvi-tools ``BaseModuleClass`` implementations and their losses."""

from ._omnivae import OmniVAE

__all__ = ["OmniVAE"]
