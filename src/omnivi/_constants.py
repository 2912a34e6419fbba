"""Names shared across the package: modalities, registry keys and likelihoods."""

from __future__ import annotations

from typing import Literal

from scvi import REGISTRY_KEYS

#: The modalities omnivi models, in the order they are encoded and fused.
MODALITIES: tuple[str, ...] = ("rna", "protein", "atac")

#: The ``setup_mudata`` argument naming each modality's layer.
LAYER_ARGS: dict[str, str] = {
    "rna": "rna_layer",
    "protein": "protein_layer",
    "atac": "atac_layer",
}

#: The key under which each modality's matrix is registered with scvi-tools.
MODALITY_REGISTRY_KEYS: dict[str, str] = {
    "rna": REGISTRY_KEYS.X_KEY,
    "protein": REGISTRY_KEYS.PROTEIN_EXP_KEY,
    "atac": "atac",
}

#: Likelihoods each modality accepts; the first is the default.
LIKELIHOODS: dict[str, tuple[str, ...]] = {
    "rna": ("nb", "zinb", "normal"),
    "protein": ("nbmixture", "nb", "normal"),
    "atac": ("bernoulli",),
}

#: Likelihoods that need non-negative integer counts as input.
COUNT_LIKELIHOODS: frozenset[str] = frozenset({"nb", "zinb", "nbmixture"})

#: Where :meth:`omnivi.model.OmniVI.store_latent` writes the joint latent by default.
LATENT_OBSM_KEY = "X_omnivi"

LatentDistribution = Literal["normal", "deterministic"]

#: Registry key of the cells x modalities mask of mosaic data (1 where a cell was measured).
MODALITY_MASK_KEY = "modality_mask"
