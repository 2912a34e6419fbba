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

    def fit(self, matrices: Sequence, observed: np.ndarray | None = None) -> InputPCA:
        """Fit the projection of each modality on reference cells.

        Parameters
        ----------
        matrices
            One cells x features count matrix per modality, rows aligned.
        observed
            Cells x modalities, true where a cell has the modality (mosaic data); each
            modality is fit on its cells only. ``None``: every cell has every modality.

        Returns
        -------
        The fitted object.
        """
        self.targets_, self.means_, self.components_, self.scales_ = [], [], [], []
        for position, matrix in enumerate(matrices):
            matrix = sparse.csr_matrix(matrix, dtype=np.float32)
            if observed is not None:
                matrix = matrix[np.asarray(observed[:, position], dtype=bool)]
            totals = self._totals(matrix)
            target = float(np.median(totals[totals > 0])) if (totals > 0).any() else 1.0
            normalised = self._normalise(matrix, target)
            n = min(self.n_comps, min(normalised.shape) - 1)
            coordinates, components, _, _ = sc.pp.pca(
                normalised, n_comps=n, random_state=self.seed, return_info=True
            )
            self.targets_.append(target)
            self.means_.append(np.asarray(normalised.mean(axis=0)).ravel())
            self.components_.append(np.asarray(components, dtype=np.float32))
            self.scales_.append(float(np.sqrt(coordinates.var(axis=0).sum())) or 1.0)
        return self

    def fit_transform(self, matrices: Sequence) -> np.ndarray:
        """Fit the projection on reference cells and return their coordinates.

        Parameters
        ----------
        matrices
            One cells x features count matrix per modality, rows aligned; every cell has
            every modality.

        Returns
        -------
        Cells x components (concatenated over modalities).
        """
        return self.fit(matrices).transform(matrices)

    def columns(self, positions: Sequence[int]) -> np.ndarray:
        """Columns of :meth:`transform`'s output that belong to the modalities ``positions``."""
        ends = np.cumsum([len(components) for components in self.components_])
        starts = ends - [len(components) for components in self.components_]
        return np.concatenate([np.arange(starts[i], ends[i]) for i in positions])

    def transform(self, matrices: Sequence, positions: Sequence[int] | None = None) -> np.ndarray:
        """Coordinates of cells, with the features and modalities of the fit.

        Parameters
        ----------
        matrices
            One cells x features count matrix per modality of ``positions``, in that order.
        positions
            Which of the fitted modalities ``matrices`` holds; ``None`` for all.

        Returns
        -------
        Cells x components (concatenated over the modalities given).
        """
        if not self.components_:
            raise RuntimeError("InputPCA is not fit; call fit on reference cells.")
        positions = range(len(self.components_)) if positions is None else positions
        blocks = []
        for matrix, i in zip(matrices, positions, strict=True):
            normalised = self._normalise(matrix, self.targets_[i])
            components = self.components_[i]
            projected = np.asarray(normalised @ components.T) - self.means_[i] @ components.T
            blocks.append(projected / self.scales_[i])
        return np.hstack(blocks).astype(np.float32)
