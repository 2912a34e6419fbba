"""Statistics of the labelled training cells that the supervised objectives need."""

from __future__ import annotations

import numpy as np
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from omnivi._constants import MODALITY_MASK_KEY, MODALITY_REGISTRY_KEYS
from omnivi.data._validation import matrix_rows
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
    observed: np.ndarray | None = None,
    n_comps: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Distances between cell-type centroids in a PCA of the labelled cells' data.

    The labelled cells are embedded by :class:`~omnivi.model._input_pca.InputPCA` (each
    modality log-normalised, reduced by PCA and weighted equally); the centroid of each label
    is taken in that space. In mosaic data each modality's part of a centroid is the mean of
    the cells measured in it, and two centroids are compared on the modalities both have.

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
    observed
        Cells x modalities, true where a cell was measured; ``None`` if every cell has every
        modality.
    n_comps
        Principal components per modality (fewer if the data has fewer dimensions).
    seed
        Seed of the PCA solver.

    Returns
    -------
    ``n_labels`` x ``n_labels`` Euclidean distances; rows of labels without cells are 0.
    """
    labelled = codes != unlabeled_code
    kept = codes[labelled]
    matrices = [matrix_rows(matrix, labelled) for matrix in matrices]
    if observed is None:
        observed = np.ones((len(kept), len(matrices)), dtype=bool)
    else:
        observed = np.asarray(observed, dtype=bool)[labelled]
    space = InputPCA(n_comps, seed).fit(matrices, observed)
    embedding = space.transform(matrices)
    squared = np.zeros((n_labels, n_labels))
    for position in range(len(matrices)):
        block = embedding[:, space.columns([position])]
        centroids = np.full((n_labels, block.shape[1]), np.nan)
        for code in np.unique(kept[observed[:, position]]):
            centroids[code] = block[(kept == code) & observed[:, position]].mean(axis=0)
        gaps = ((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=-1)
        squared += np.nan_to_num(gaps, nan=0.0)
    distances = np.sqrt(squared)
    absent = np.setdiff1d(np.arange(n_labels), np.unique(kept))
    distances[absent, :] = 0.0
    distances[:, absent] = 0.0
    return distances


def training_cell_statistics(
    manager: AnnDataManager,
    indices: np.ndarray | None,
    modalities: list[str],
    n_labels: int,
    unlabeled_code: int,
) -> dict[str, np.ndarray]:
    """Return what the supervised objectives need from the cells a model trains on.

    Parameters
    ----------
    manager
        The registered data.
    indices
        The training cells; ``None`` for every registered cell.
    modalities
        The model's modalities.
    n_labels, unlabeled_code
        Number of label codes, and the code of unlabeled cells.

    Returns
    -------
    ``class_weights`` (inverse label frequency) and ``reference_distances`` (see
    :func:`reference_centroid_distances`) of the training cells; empty if none is labelled.
    """
    rows = np.arange(manager.adata.n_obs) if indices is None else np.asarray(indices)
    codes = np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()[rows]
    if not (codes != unlabeled_code).any():
        return {}
    matrices = [
        matrix_rows(manager.get_from_registry(MODALITY_REGISTRY_KEYS[m]), rows) for m in modalities
    ]
    observed = None
    if MODALITY_MASK_KEY in manager.data_registry:
        observed = np.asarray(manager.get_from_registry(MODALITY_MASK_KEY))[rows] > 0
    return {
        "class_weights": inverse_frequency_weights(codes, n_labels, unlabeled_code),
        "reference_distances": reference_centroid_distances(
            matrices, codes, n_labels, unlabeled_code, observed
        ),
    }
