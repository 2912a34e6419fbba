"""Plots: embeddings coloured by cell type and batch, loss curves."""

from ._plots import embedding, embedding_grid, loss_curves

__all__ = ["embedding", "embedding_grid", "loss_curves"]
