"""A label-free view of the input data: a PCA of each modality, fit on reference cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scanpy as sc
from scipy import sparse

from omnivi.pp._normalize import log1p_scaled


class InputPCA:
    """Project cells onto principal components of the reference cells' normalised input.

    Each modality's counts are scaled to the reference's median total per cell and
    log1p-transformed, then projected on that modality's principal components. The
    components of each modality are divided by the square root of their total variance on the
    reference, so that every modality weighs the same, and concatenated. New cells are
    normalised with the reference's target total and centred on the reference mean, so their
    coordinates are comparable with the reference's.

    Parameters
    ----------
    n_comps
        Principal components per modality (fewer if the data has fewer dimensions).
    seed
        Seed of the PCA solver.
    """

    def __init__(self, n_comps: int = 50, seed: int = 0):
        self.n_comps = n_comps
        self.seed = seed
        self.targets_: list[float] = []
        self.means_: list[np.ndarray] = []
        self.components_: list[np.ndarray] = []
        self.scales_: list[float] = []

    @staticmethod
    def _totals(matrix: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(matrix.sum(axis=1)).ravel()

    def _normalise(self, matrix, target: float):
        matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        totals = self._totals(matrix)
        factors = np.where(totals > 0, totals / target, 1.0)
        return log1p_scaled(matrix, factors)

    def fit_transform(self, matrices: Sequence) -> np.ndarray:
        """Fit the projection on reference cells and return their coordinates.

        Parameters
        ----------
        matrices
            One cells x features count matrix per modality, rows aligned.

        Returns
        -------
        Cells x components (concatenated over modalities).
        """
        self.targets_, self.means_, self.components_, self.scales_ = [], [], [], []
        blocks = []
        for matrix in matrices:
            totals = self._totals(sparse.csr_matrix(matrix))
            target = float(np.median(totals[totals > 0])) if (totals > 0).any() else 1.0
            normalised = self._normalise(matrix, target)
            n = min(self.n_comps, min(normalised.shape) - 1)
            coordinates, components, _, _ = sc.pp.pca(
                normalised, n_comps=n, random_state=self.seed, return_info=True
            )
            scale = float(np.sqrt(coordinates.var(axis=0).sum())) or 1.0
            self.targets_.append(target)
            self.means_.append(np.asarray(normalised.mean(axis=0)).ravel())
            self.components_.append(np.asarray(components, dtype=np.float32))
            self.scales_.append(scale)
            blocks.append(coordinates / scale)
        return np.hstack(blocks).astype(np.float32)

    def transform(self, matrices: Sequence) -> np.ndarray:
        """Coordinates of new cells, with the features and modalities of the fit.

        Parameters
        ----------
        matrices
            One cells x features count matrix per modality, in the order of the fit.

        Returns
        -------
        Cells x components (concatenated over modalities).
        """
        if not self.components_:
            raise RuntimeError("InputPCA is not fit; call fit_transform on reference cells.")
        blocks = []
        for matrix, target, mean, components, scale in zip(
            matrices, self.targets_, self.means_, self.components_, self.scales_, strict=True
        ):
            normalised = self._normalise(matrix, target)
            projected = np.asarray(normalised @ components.T) - mean @ components.T
            blocks.append(projected / scale)
        return np.hstack(blocks).astype(np.float32)
