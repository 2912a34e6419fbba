"""Figures a user looks at after training: embeddings and loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scanpy.plotting.palettes import default_20, default_102


def _palette(categories: Sequence) -> dict:
    """One colour per category: scanpy's 20-colour palette, or its 102 for more."""
    colours = default_20 if len(categories) <= 20 else default_102
    return {c: colours[i % len(colours)] for i, c in enumerate(categories)}


def _point_size(n_cells: int) -> float:
    return max(120_000 / max(n_cells, 1), 1.0) ** 0.5


def _scatter(ax, coordinates: np.ndarray, values: pd.Series, colours: dict, size: float) -> None:
    """Scatter ``coordinates`` one category at a time, without ticks."""
    for category, colour in colours.items():
        where = (values == category).to_numpy()
        ax.scatter(*coordinates[where].T, s=size, color=colour, label=str(category), lw=0)
    ax.set_xticks([])
    ax.set_yticks([])


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
    size = point_size or _point_size(len(obs))
    fig, axes = plt.subplots(1, len(color), figsize=(6.5 * len(color), 5), squeeze=False)
    for ax, column in zip(axes[0], color, strict=True):
        values = obs[column].astype("category")
        _scatter(ax, coordinates, values, _palette(values.cat.categories), size)
        ax.set_title(column)
        ax.legend(
            markerscale=3, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5)
        )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def embedding_grid(
    coordinates: Mapping[str, np.ndarray],
    obs: pd.DataFrame,
    color: Sequence[str],
    n_columns: int = 4,
    point_size: float | None = None,
) -> Figure:
    """Scatter several 2-D embeddings of the same cells side by side, e.g. one per method.

    Each embedding gets one panel per column of ``color``, stacked; a category has the same
    colour in every panel, with one legend per column of ``color`` beside the grid.

    Parameters
    ----------
    coordinates
        Name -> cells x 2 (rows in ``obs``'s order), e.g. a UMAP of each method's latent.
    obs
        Per-cell table holding the columns to colour by.
    color
        Categorical columns of ``obs``.
    n_columns
        Embeddings per row of the grid.
    point_size
        Marker size; by default it shrinks with the number of cells.
    """
    names = list(coordinates)
    n_columns = max(min(n_columns, len(names)), 1)
    n_rows = -(-len(names) // n_columns) * len(color)
    fig, axes = plt.subplots(
        n_rows, n_columns, figsize=(3.4 * n_columns + 3, 3.2 * n_rows), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    size = point_size or 0.6 * _point_size(len(obs))
    palettes = {c: _palette(obs[c].astype("category").cat.categories) for c in color}
    for i, name in enumerate(names):
        for j, column in enumerate(color):
            ax = axes[(i // n_columns) * len(color) + j, i % n_columns]
            ax.set_axis_on()
            values = obs[column].astype("category")
            _scatter(ax, coordinates[name], values, palettes[column], size)
            ax.set_title(f"{name}\n{column}", fontsize=9)
    for k, column in enumerate(color):
        handles = [
            plt.Line2D([], [], marker="o", ls="", color=colour, label=str(category))
            for category, colour in palettes[column].items()
        ]
        fig.legend(
            handles=handles,
            title=column,
            fontsize=7,
            frameon=False,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0 - k * 0.5),
            ncol=-(-len(handles) // 40),
        )
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
