"""Modules: scvi-tools ``BaseModuleClass`` implementations and their losses."""

from ._contrastive import (
    CONTRASTIVE_TERMS,
    ContrastiveObjective,
    batch_mixing_loss,
    cell_type_contrastive_loss,
    centroid_geometry_loss,
    labelled_contrastive_terms,
)
from ._contrastive_encoder import ContrastiveEncoder
from ._omnivae import OmniVAE, balanced_modality_weights, modalities_with_depth

__all__ = [
    "CONTRASTIVE_TERMS",
    "ContrastiveEncoder",
    "ContrastiveObjective",
    "OmniVAE",
    "balanced_modality_weights",
    "batch_mixing_loss",
    "cell_type_contrastive_loss",
    "centroid_geometry_loss",
    "labelled_contrastive_terms",
    "modalities_with_depth",
]
