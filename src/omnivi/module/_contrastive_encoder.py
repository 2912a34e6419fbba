"""Encoder-only module trained by the contrastive objectives alone (no decoder)."""

from __future__ import annotations

from typing import Literal

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data

from omnivi._constants import MODALITIES, MODALITY_MASK_KEY, MODALITY_REGISTRY_KEYS
from omnivi.module._contrastive import ContrastiveObjective, labelled_contrastive_terms
from omnivi.nn import FusionEncoder, LatentClassifier, ModalityEncoder, hide_one_modality

InputTransform = Literal["normalize_log1p", "log1p", "identity"]
INPUT_TRANSFORMS = ("normalize_log1p", "log1p", "identity")
_TARGET_SUM = 1e4


def transform_input(x: torch.Tensor, transform: InputTransform) -> torch.Tensor:
    """Apply an input transform: per-cell scaling to 10,000 then log1p, log1p, or nothing."""
    if transform == "normalize_log1p":
        total = x.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return torch.log1p(x * (_TARGET_SUM / total))
    if transform == "log1p":
        return torch.log1p(x)
    return x


class ContrastiveEncoder(BaseModuleClass):
    """Per-modality encoders fused into one embedding, trained by contrastive losses only.

    The architecture of the single-cell contrastive annotation models (features -> 1000 ->
    500 -> 100, layer normalisation, dropout 0.2), extended to several modalities: each
    modality has its own first block; the blocks are concatenated and fused.

    Parameters
    ----------
    n_features
        Number of features per modality, e.g. ``{"rna": 2000}``.
    n_labels
        Number of label codes (cell types, plus the unlabeled category if any); at least 2.
    unlabeled_code
        Label code of unlabeled cells; ``-1`` if every cell is labelled.
    n_hidden
        Width of each modality's block.
    n_fusion_hidden
        Width of the joint layer after concatenation.
    n_latent
        Dimension of the embedding.
    dropout_rate
        Dropout after each hidden layer.
    input_transform
        How raw values are transformed before encoding: ``"normalize_log1p"`` (counts
        scaled to 10,000 per cell, then log1p), ``"log1p"`` or ``"identity"`` (already
        normalised input). ATAC is always read as presence/absence.
    modality_dropout
        During training, the probability that a cell has one of its modalities hidden from
        the encoder (:func:`~omnivi.nn.hide_one_modality`), so that the embedding also works
        from one modality alone (a query that lacks one). Ignored with one modality.
    contrastive_kwargs
        Options of :class:`~omnivi.module.ContrastiveObjective`.
    """

    def __init__(
        self,
        n_features: dict[str, int],
        n_labels: int,
        unlabeled_code: int = -1,
        n_hidden: int = 1000,
        n_fusion_hidden: int = 500,
        n_latent: int = 100,
        dropout_rate: float = 0.2,
        input_transform: InputTransform = "normalize_log1p",
        modality_dropout: float = 0.2,
        contrastive_kwargs: dict | None = None,
    ):
        super().__init__()
        if not 0 <= modality_dropout <= 1:
            raise ValueError(f"modality_dropout must be in [0, 1], got {modality_dropout}.")
        if n_labels < 2:
            raise ValueError("A contrastive encoder needs at least two cell-type labels.")
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(
                f"input_transform must be one of {INPUT_TRANSFORMS}, got {input_transform!r}."
            )
        self.modalities = [m for m in MODALITIES if m in n_features]
        self.input_transform = input_transform
        self.modality_dropout = modality_dropout
        self.unlabeled_code = unlabeled_code
        norm = {"use_batch_norm": False, "use_layer_norm": True}
        self.encoders = torch.nn.ModuleDict(
            {
                m: ModalityEncoder(
                    n_features[m],
                    n_hidden,
                    dropout_rate=dropout_rate,
                    sparse_input=m == "atac",
                    **norm,
                )
                for m in self.modalities
            }
        )
        self.fusion = FusionEncoder(
            [n_hidden] * len(self.modalities),
            n_latent,
            n_hidden=n_fusion_hidden,
            variational=False,
            dropout_rate=dropout_rate,
            **norm,
        )
        self.n_labels = n_labels
        self.contrastive = ContrastiveObjective(**(contrastive_kwargs or {}))
        self.classifier = LatentClassifier(n_latent, n_labels)

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict:
        return {
            "x": {m: tensors[MODALITY_REGISTRY_KEYS[m]] for m in self.modalities},
            "modality_mask": tensors.get(MODALITY_MASK_KEY),
        }

    def _get_generative_input(self, tensors: dict, inference_outputs: dict) -> dict:
        return {}

    @auto_move_data
    def inference(
        self, x: dict[str, torch.Tensor], modality_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Embed cells: ``{"z": cells x n_latent}``.

        ``modality_mask`` (cells x modalities, 1 = use) defaults to all modalities; for mosaic
        data it is the registered mask of the modalities each cell has. While training, one
        of a cell's modalities is hidden with probability ``modality_dropout``.
        """
        hidden = [
            self.encoders[m](
                x[m] if m == "atac" else transform_input(x[m], self.input_transform),
                rows=None if modality_mask is None else modality_mask[:, i] > 0,
            )
            for i, m in enumerate(self.modalities)
        ]
        if modality_mask is None:
            n_cells = hidden[0].shape[0]
            modality_mask = torch.ones(n_cells, len(self.modalities), device=hidden[0].device)
        if self.training:
            modality_mask = hide_one_modality(modality_mask, self.modality_dropout)
        z, _ = self.fusion(hidden, modality_mask)
        return {"z": z}

    def generative(self) -> dict:
        """No generative model: the module has no decoder."""
        return {}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        class_weights: torch.Tensor | None = None,
        reference_distances: torch.Tensor | None = None,
    ) -> LossOutput:
        """Weighted contrastive terms on the labelled cells; each term is logged.

        ``class_weights`` and ``reference_distances`` are the training cells' statistics
        (see :meth:`~omnivi.module.ContrastiveObjective.forward`), passed by the training
        plan; ``None``: uniform weights, no centroid term.
        """
        terms = labelled_contrastive_terms(
            self.contrastive,
            inference_outputs["z"],
            tensors[REGISTRY_KEYS.LABELS_KEY],
            tensors[REGISTRY_KEYS.BATCH_KEY],
            self.unlabeled_code,
            class_weights,
            reference_distances,
        )
        return LossOutput(
            loss=terms["total"],
            n_obs_minibatch=inference_outputs["z"].shape[0],
            extra_metrics={
                **{f"contrastive_{k}": v.detach() for k, v in terms.items()},
                "temperature": self.contrastive.temperature.detach(),
            },
        )
