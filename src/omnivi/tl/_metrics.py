"""Light-weight embedding metrics (no scib-metrics needed), used by the demo and tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors


def _neighbours(
    embedding: np.ndarray, n_neighbors: int, cells: np.ndarray | None = None
) -> np.ndarray:
    """Find the ``n_neighbors`` nearest other cells of each of ``cells`` (all if None)."""
    index = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(embedding)
    query = embedding if cells is None else embedding[cells]
    return index.kneighbors(query, return_distance=False)[:, 1:]


def knn_label_accuracy(
    embedding: np.ndarray,
    labels: np.ndarray | pd.Series,
    n_neighbors: int = 15,
    n_splits: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier of ``labels``.

    A direct measure of how well an embedding separates cell types: 1 means every cell's
    neighbours share its label.

    Parameters
    ----------
    embedding
        Cells x dimensions.
    labels
        One label per cell.
    n_neighbors
        Neighbours voting for each cell.
    n_splits
        Folds of the (stratified) cross-validation.
    seed
        Seed of the fold assignment.
    """
    labels = np.asarray(labels).astype(str)
    smallest = pd.Series(labels).value_counts().min()
    folds = StratifiedKFold(
        n_splits=min(n_splits, max(smallest, 2)), shuffle=True, random_state=seed
    )
    predicted = cross_val_predict(
        KNeighborsClassifier(n_neighbors=n_neighbors), embedding, labels, cv=folds
    )
    return float(np.mean(predicted == labels))


def label_recall(
    embedding: np.ndarray, labels: np.ndarray | pd.Series, label: str, n_neighbors: int = 15
) -> float:
    """Fraction of the cells of ``label`` whose neighbours mostly share that label.

    Measures whether a (rare) population forms its own neighbourhood in the embedding.

    Parameters
    ----------
    embedding
        Cells x dimensions.
    labels
        One label per cell.
    label
        The population to check.
    n_neighbors
        Neighbours of each cell, itself excluded.
    """
    labels = np.asarray(labels).astype(str)
    members = np.flatnonzero(labels == label)
    if members.size == 0:
        raise ValueError(f"No cell has label {label!r}.")
    neighbours = _neighbours(embedding, n_neighbors, members)
    return float(np.mean((labels[neighbours] == label).mean(axis=1) > 0.5))


def batch_mixing_entropy(
    embedding: np.ndarray, batches: np.ndarray | pd.Series, n_neighbors: int = 30
) -> float:
    """Mean normalised entropy of the batches among each cell's neighbours.

    1 means every neighbourhood holds the batches in equal parts, 0 means each holds one batch.

    Parameters
    ----------
    embedding
        Cells x dimensions.
    batches
        One batch per cell.
    n_neighbors
        Neighbours of each cell, itself excluded.
    """
    codes, names = pd.factorize(np.asarray(batches))
    if len(names) < 2:
        raise ValueError("Batch mixing needs at least two batches.")
    neighbours = _neighbours(embedding, n_neighbors)
    counts = np.stack([(codes[neighbours] == b).sum(axis=1) for b in range(len(names))], axis=1)
    p = counts / n_neighbors
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    return float(np.mean(entropy) / np.log(len(names)))
