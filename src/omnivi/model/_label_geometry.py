"""Statistics of the labelled training cells that the supervised objectives need."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from omnivi.model._input_pca import InputPCA


def inverse_frequency_weights(codes: np.ndarray, n_labels: int, unlabeled_code: int) -> np.ndarray:
    """Weight per label code, inversely proportional to its number of cells (mean 1).

    Codes without cells, and the unlabeled code, get weight 0.
    """
    counts = np.bincount(codes[codes != unlabeled_code], minlength=n_labels).astype(float)
    weights = np.zeros(n_labels)
    present = counts > 0
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights


def reference_centroid_distances(
    matrices: list,
    codes: np.ndarray,
    n_labels: int,
    unlabeled_code: int,
    n_comps: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Distances between cell-type centroids in a PCA of the labelled cells' data.

    The labelled cells are embedded by :class:`~omnivi.model._input_pca.InputPCA` (each
    modality log-normalised, reduced by PCA and weighted equally); the centroid of each label
    is taken in that space.

    Parameters
    ----------
    matrices
        One cells x features matrix per modality, rows aligned with ``codes``.
    codes
        Label code per cell.
    n_labels
        Number of label codes.
    unlabeled_code
        Code of unlabeled cells (left out); ``-1`` if none.
    n_comps
        Principal components per modality (fewer if the data has fewer dimensions).
    seed
        Seed of the PCA solver.

    Returns
    -------
    ``n_labels`` x ``n_labels`` Euclidean distances; rows of labels without cells are 0.
    """
    labelled = codes != unlabeled_code
    embedding = InputPCA(n_comps, seed).fit_transform(
        [sparse.csr_matrix(matrix)[labelled] for matrix in matrices]
    )
    kept = codes[labelled]
    centroids = np.zeros((n_labels, embedding.shape[1]))
    present = np.unique(kept)
    for code in present:
        centroids[code] = embedding[kept == code].mean(axis=0)
    distances = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)
    absent = np.setdiff1d(np.arange(n_labels), present)
    distances[absent, :] = 0.0
    distances[:, absent] = 0.0
    return distances
