"""A 2-D picture of an embedding."""

from __future__ import annotations

import numpy as np


def umap(embedding: np.ndarray, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """UMAP coordinates of the cells of an embedding (umap-learn, scanpy's neighbour count).

    Computed with umap-learn directly rather than ``sc.pp.neighbors`` + ``sc.tl.umap``: with
    scanpy 1.11 and SciPy 1.17, ``sc.pp.neighbors`` fails on more than about 8,000 cells
    ("'csr_array' object has no attribute 'getnnz'").

    Parameters
    ----------
    embedding
        Cells x dimensions, e.g. ``mdata.obsm["X_omnivi"]``.
    n_neighbors
        Neighbours of each cell in UMAP's graph.
    seed
        Seed of UMAP's layout.

    Returns
    -------
    Cells x 2.
    """
    from umap import UMAP

    reducer = UMAP(n_neighbors=n_neighbors, random_state=seed, n_jobs=1)  # seeded: serial
    return reducer.fit_transform(np.asarray(embedding, dtype=np.float32))
