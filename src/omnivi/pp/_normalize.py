"""Normalisation of each modality: RNA log1p with size factors, protein CLR, ATAC TF-IDF.

Every function reads counts from ``.X`` or a layer and writes its result to a new layer,
leaving the counts the models need untouched.
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

from omnivi.data._validation import check_nonnegative, get_matrix


def _counts(adata: AnnData, layer: str | None) -> sparse.csr_matrix | np.ndarray:
    """Return ``layer`` as float32 (CSR if sparse), checked to be non-negative."""
    matrix = get_matrix(adata, layer)
    check_nonnegative(matrix, f"layer {layer or '.X'!r}", "Pass raw counts.")
    if sparse.issparse(matrix):
        return sparse.csr_matrix(matrix, dtype=np.float32)
    return np.asarray(matrix, dtype=np.float32)


def _scale_rows(matrix, factors: np.ndarray):
    """Multiply each row of a dense or sparse matrix by ``factors``."""
    if sparse.issparse(matrix):
        return sparse.csr_matrix(sparse.diags(factors.astype(np.float32)) @ matrix)
    return matrix * factors[:, None].astype(np.float32)


def _log1p(matrix):
    return matrix.log1p() if sparse.issparse(matrix) else np.log1p(matrix)


def median_size_factors(matrix) -> np.ndarray:
    """Per-row size factors of a count matrix: row totals over their median (empty rows: 1)."""
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    positive = totals > 0
    if not positive.any():
        raise ValueError("Every cell has zero counts; there is nothing to normalise.")
    factors = np.ones_like(totals, dtype=float)
    factors[positive] = totals[positive] / np.median(totals[positive])
    return factors


def log1p_scaled(matrix, factors: np.ndarray):
    """``log1p`` of each row of a count matrix divided by its size factor (stays sparse)."""
    return _log1p(_scale_rows(matrix, 1.0 / factors))


def size_factors(adata: AnnData, layer: str | None = None) -> np.ndarray:
    """Per-cell size factors: total counts divided by their median over cells.

    Parameters
    ----------
    adata
        Cells x features of counts.
    layer
        Layer of counts; ``None`` for ``.X``.

    Returns
    -------
    One positive factor per cell (cells without counts get 1).
    """
    return median_size_factors(_counts(adata, layer))


def normalize_log1p(
    adata: AnnData,
    layer: str | None = None,
    factors: np.ndarray | str | None = None,
    key_added: str = "log1p_norm",
) -> np.ndarray:
    """Divide each cell's counts by its size factor and take ``log1p``.

    Parameters
    ----------
    adata
        Cells x features of counts (RNA, or any count modality).
    layer
        Layer of counts; ``None`` for ``.X``.
    factors
        Size factors: an array (one per cell), the name of an ``.obs`` column, or ``None``
        for :func:`size_factors` (total counts over their median).
    key_added
        Layer to write the result to.

    Returns
    -------
    The size factors used. Writes ``adata.layers[key_added]``.
    """
    counts = _counts(adata, layer)
    if factors is None:
        factors = median_size_factors(counts)
    elif isinstance(factors, str):
        if factors not in adata.obs:
            raise KeyError(f"No .obs column {factors!r} of size factors.")
        factors = adata.obs[factors].to_numpy(dtype=float)
    factors = np.asarray(factors, dtype=float)
    if factors.shape != (adata.n_obs,) or not np.all(np.isfinite(factors) & (factors > 0)):
        raise ValueError("Size factors must be one finite, positive number per cell.")
    adata.layers[key_added] = log1p_scaled(counts, factors)
    return factors


def clr(adata: AnnData, layer: str | None = None, axis: int = 0, key_added: str = "clr") -> None:
    """Centred log-ratio transform of protein counts, as muon's ``prot.pp.clr``.

    Each count is divided by the geometric mean (of ``log1p`` counts) along ``axis``, then
    ``log1p``-transformed: ``log1p(x / exp(mean(log1p(x))))``, the formula of muon (and of
    Seurat's CLR, with margin 1 for ``axis=0``).

    Parameters
    ----------
    adata
        Cells x proteins of counts (ADT).
    layer
        Layer of counts; ``None`` for ``.X``.
    axis
        ``0``: normalise each protein across cells (muon's default); ``1``: each cell across
        its proteins.
    key_added
        Layer to write the (dense) result to.
    """
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (per protein) or 1 (per cell), got {axis}.")
    counts = _counts(adata, layer)
    counts = counts.toarray() if sparse.issparse(counts) else counts
    geometric_mean = np.exp(np.log1p(counts).mean(axis=axis, keepdims=True))
    adata.layers[key_added] = np.log1p(counts / geometric_mean)


def binarize(adata: AnnData, layer: str | None = None, key_added: str = "binary") -> None:
    """Binarise accessibility: 1 where a region has any count in a cell, else 0.

    Parameters
    ----------
    adata
        Cells x regions of counts (ATAC).
    layer
        Layer of counts; ``None`` for ``.X``.
    key_added
        Layer to write the result to (sparse if the input is).
    """
    counts = _counts(adata, layer)
    if sparse.issparse(counts):
        binary = counts.copy()
        binary.data = (binary.data > 0).astype(np.float32)
        binary.eliminate_zeros()
    else:
        binary = (counts > 0).astype(np.float32)
    adata.layers[key_added] = binary


def tfidf(
    adata: AnnData,
    layer: str | None = None,
    scale_factor: float = 1e4,
    key_added: str = "tfidf",
) -> None:
    """TF-IDF of accessibility: ``log1p(scale_factor * tf * idf)``.

    Term frequency ``tf`` is a region's count over the cell's total; inverse document
    frequency ``idf`` is the number of cells over the region's total count (the log-TF-IDF
    commonly used for ATAC latent semantic indexing).

    Parameters
    ----------
    adata
        Cells x regions of counts (ATAC).
    layer
        Layer of counts; ``None`` for ``.X``.
    scale_factor
        Multiplier before ``log1p``.
    key_added
        Layer to write the result to (sparse if the input is).
    """
    counts = _counts(adata, layer)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    region_totals = np.asarray(counts.sum(axis=0)).ravel()
    tf = _scale_rows(counts, 1.0 / np.maximum(totals, 1e-12))
    idf = adata.n_obs / np.maximum(region_totals, 1e-12)
    scaled = tf.multiply(idf[None, :]).tocsr() if sparse.issparse(tf) else tf * idf[None, :]
    adata.layers[key_added] = _log1p(scaled * scale_factor)
