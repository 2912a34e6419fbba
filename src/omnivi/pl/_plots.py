"""Figures a user looks at after training: embeddings and loss curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def embedding(
    coordinates: np.ndarray,
    obs: pd.DataFrame,
    color: list[str],
    title: str = "",
    point_size: float | None = None,
) -> Figure:
    """Scatter a 2-D embedding once per ``.obs`` column in ``color``, with a legend each.

    Parameters
    ----------
    coordinates
        Cells x 2, e.g. ``adata.obsm["X_umap"]``.
    obs
        Per-cell table holding the columns to colour by.
    color
        Categorical columns of ``obs``, one panel each.
    title
        Figure title.
    point_size
        Marker size; by default it shrinks with the number of cells.
    """
    size = point_size or max(120_000 / max(len(obs), 1), 1.0) ** 0.5
    fig, axes = plt.subplots(1, len(color), figsize=(6.5 * len(color), 5), squeeze=False)
    for ax, column in zip(axes[0], color, strict=True):
        values = obs[column].astype("category")
        cmap = plt.get_cmap("tab20", max(len(values.cat.categories), 1))
        for i, category in enumerate(values.cat.categories):
            where = (values == category).to_numpy()
            ax.scatter(*coordinates[where].T, s=size, color=cmap(i), label=str(category), lw=0)
        ax.set_title(column)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(
            markerscale=3, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5)
        )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(history: dict[str, pd.DataFrame]) -> Figure:
    """Plot training and validation losses from ``model.history``, one panel per quantity.

    The panels are the ELBO, reconstruction and local KL terms of autoencoders and the
    weighted contrastive loss (``contrastive_total``) where the model logs one.

    Parameters
    ----------
    history
        ``model.history``: one single-column DataFrame per logged quantity, indexed by epoch.
    """
    plotted = ("elbo", "reconstruction_loss", "kl_local", "contrastive_total")
    names = sorted({key.rsplit("_", 1)[0] for key in history if key.endswith("_train")})
    names = [n for n in names if n.startswith(plotted)]
    if not names:
        raise ValueError(
            "model.history has none of the losses to plot (ELBO, reconstruction, KL or "
            "contrastive_total): train the model first."
        )
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for split in ("train", "validation"):
            key = f"{name}_{split}"
            if key in history:
                ax.plot(history[key].index, history[key].iloc[:, 0], label=split)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig
