"""A cell-type classifier on a learned embedding."""

from __future__ import annotations

import torch
from torch import nn


class LatentClassifier(nn.Module):
    """Multilayer perceptron from an embedding to cell-type logits.

    It is fit apart from the model that holds it, on that model's frozen embedding
    (:meth:`omnivi.model.OmniVI.train_classifier`): its parameters require no gradient
    otherwise, so the model's own training (and DistributedDataParallel) leaves them out.

    Parameters
    ----------
    n_input
        Dimension of the embedding.
    n_classes
        Number of cell types.
    n_hidden
        Width of the hidden layer.
    dropout_rate
        Dropout after the hidden layer.
    """

    #: It outputs logits (what :class:`scvi.train.ClassifierTrainingPlan` checks).
    logits = True

    def __init__(
        self, n_input: int, n_classes: int, n_hidden: int = 128, dropout_rate: float = 0.1
    ):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_input, n_hidden),
            nn.LayerNorm(n_hidden),
            nn.ReLU(),
            nn.Dropout(dropout_rate),
            nn.Linear(n_hidden, n_classes),
        )
        self.requires_grad_(False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return the logits (cells x classes) of embeddings ``z``."""
        return self.layers(z)

    def reset_parameters(self) -> None:
        """Re-initialise every layer (before fitting to a new embedding)."""
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
