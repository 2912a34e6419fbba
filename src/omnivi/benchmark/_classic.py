"""The classic embeddings a user already has: PCA per modality, their concatenation, Harmony.

Each modality is transformed the usual way (scanpy's and muon's defaults) before its PCA: RNA
normalised to 10,000 counts per cell, ``log1p`` and scaled (30 components); protein
CLR-transformed across cells (20 components); ATAC TF-IDF and latent semantic indexing,
components 2-31 (the first follows sequencing depth). In a concatenation each modality's block
is divided by the square root of its total variance, so that every modality weighs the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from mudata import MuData
from scipy import sparse

#: Components of each modality's block.
N_COMPONENTS = {"rna": 30, "protein": 20, "atac": 30}


def _pca(values: np.ndarray, n_comps: int, seed: int) -> np.ndarray:
    n_comps = min(n_comps, min(values.shape) - 1)
    return sc.pp.pca(values, n_comps=n_comps, random_state=seed)


def rna_pca(rna: AnnData, seed: int = 0) -> np.ndarray:
    """PCA of RNA counts normalised to 10,000 per cell, ``log1p``-transformed and scaled."""
    view = AnnData(rna.X.copy())
    sc.pp.normalize_total(view, target_sum=1e4)
    sc.pp.log1p(view)
    if sparse.issparse(view.X):
        view.X = view.X.toarray()
    sc.pp.scale(view, max_value=10)
    return _pca(view.X, N_COMPONENTS["rna"], seed)


def protein_pca(protein: AnnData, seed: int = 0) -> np.ndarray:
    """PCA of CLR-transformed protein counts (muon's ``prot.pp.clr``, across cells)."""
    import muon

    view = AnnData(sparse.csc_matrix(protein.X, dtype=np.float32))  # CLR across cells: CSC
    muon.prot.pp.clr(view)
    return _pca(view.X.toarray(), N_COMPONENTS["protein"], seed)


def atac_lsi(atac: AnnData, seed: int = 0) -> np.ndarray:
    """Latent semantic indexing of ATAC counts (muon's TF-IDF and LSI), components 2-31."""
    import muon

    view = AnnData(sparse.csr_matrix(atac.X, dtype=np.float32))
    with np.errstate(divide="ignore"):  # regions without counts: stored as zeros anyway
        muon.atac.pp.tfidf(view)
    muon.atac.tl.lsi(view, n_comps=min(N_COMPONENTS["atac"] + 1, min(view.shape) - 1))
    return view.obsm["X_lsi"][:, 1:]


EMBEDDERS = {"rna": rna_pca, "protein": protein_pca, "atac": atac_lsi}


def concatenated_pca(
    mdata: MuData, modalities: Sequence[str] | None = None, seed: int = 0
) -> np.ndarray:
    """Each modality's PCA (or LSI), scaled to unit total variance, side by side.

    A modality's block is computed on the cells that have it; in mosaic data the others get
    zeros there (a padded concatenation).

    Parameters
    ----------
    mdata
        MuData with modalities named ``"rna"``, ``"protein"``, ``"atac"``, counts in ``.X``.
    modalities
        Which of them to use; ``None`` for all.
    seed
        Seed of the PCA / SVD solvers.

    Returns
    -------
    Cells (``mdata.obs_names`` order) x components.
    """
    blocks = []
    for modality in modalities or list(mdata.mod):
        part = mdata[modality]
        block = EMBEDDERS[modality](part, seed)
        block = block / np.sqrt(block.var(axis=0).sum())
        padded = np.zeros((mdata.n_obs, block.shape[1]), dtype=np.float32)
        padded[mdata.obs_names.get_indexer(part.obs_names)] = block
        blocks.append(padded)
    return np.hstack(blocks)


def harmony(embedding: np.ndarray, batches: Sequence, seed: int = 0) -> np.ndarray:
    """Harmony (``harmonypy``, its defaults) on an embedding, correcting for ``batches``."""
    import harmonypy

    meta = pd.DataFrame({"batch": np.asarray(batches).astype(str)})
    corrected = harmonypy.run_harmony(
        np.asarray(embedding, dtype=np.float64), meta, "batch", random_state=seed, verbose=False
    ).Z_corr
    corrected = np.asarray(corrected)
    return corrected if corrected.shape[0] == len(meta) else corrected.T
