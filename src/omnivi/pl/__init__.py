"""Plots: embeddings coloured by cell type and batch, loss curves."""

from ._plots import embedding, loss_curves

__all__ = ["embedding", "loss_curves"]
