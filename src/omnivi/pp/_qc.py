"""Quality control of cells by median absolute deviations (MAD) of their QC metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

from omnivi.pp._normalize import _counts

MITO_PREFIXES = ("MT-", "mt-", "Mt-")


def qc_metrics(adata: AnnData, layer: str | None = None, n_top: int = 20) -> pd.DataFrame:
    """Per-cell quality metrics of a count matrix.

    Parameters
    ----------
    adata
        Cells x features of counts.
    layer
        Layer of counts; ``None`` for ``.X``.
    n_top
        Number of most-expressed features of a cell summed for ``pct_counts_top``.

    Returns
    -------
    A DataFrame indexed by cell: ``log1p_total_counts``, ``log1p_n_features`` (features with
    a count), ``pct_counts_top`` (share of the cell's counts in its ``n_top`` largest
    features) and, if any feature name starts with ``MT-``/``mt-``, ``pct_counts_mt``.
    """
    counts = _counts(adata, layer)
    cells, _ = sc.pp.calculate_qc_metrics(
        AnnData(counts), percent_top=[n_top], inplace=False, log1p=True
    )
    totals = np.maximum(cells["total_counts"].to_numpy(), 1e-12)
    metrics = pd.DataFrame(
        {
            "log1p_total_counts": cells["log1p_total_counts"].to_numpy(),
            "log1p_n_features": cells["log1p_n_genes_by_counts"].to_numpy(),
            "pct_counts_top": cells[f"pct_counts_in_top_{n_top}_genes"].to_numpy(),
        },
        index=adata.obs_names,
    )
    mito = np.asarray(adata.var_names.str.startswith(MITO_PREFIXES))
    if mito.any():
        metrics["pct_counts_mt"] = 100 * np.asarray(counts[:, mito].sum(axis=1)).ravel() / totals
    return metrics


def mad_outliers(
    adata: AnnData,
    layer: str | None = None,
    n_mads: float = 5.0,
    n_mads_mt: float = 3.0,
    max_pct_mt: float | None = 8.0,
    key_added: str | None = "outlier",
) -> pd.Series:
    """Flag low-quality cells: QC metrics more than ``n_mads`` MADs from the median.

    A cell is an outlier when its log total counts, log number of detected features or share
    of counts in its top 20 features lies more than ``n_mads`` median absolute deviations
    from the median over cells (either side), or when its mitochondrial share lies more than
    ``n_mads_mt`` MADs above the median *and* above ``max_pct_mt`` percent. Nothing is removed:
    subset with ``adata[~outliers]``.

    Parameters
    ----------
    adata
        Cells x features of counts (RNA).
    layer
        Layer of counts; ``None`` for ``.X``.
    n_mads
        Tolerance for counts, detected features and top-feature share.
    n_mads_mt
        Tolerance above the median mitochondrial share.
    max_pct_mt
        A cell is a mitochondrial outlier only above this percentage; ``None`` for no floor.
    key_added
        ``.obs`` column to write the flags to; ``None`` writes nothing.

    Returns
    -------
    Boolean Series indexed by cell, ``True`` for outliers.
    """
    metrics = qc_metrics(adata, layer)
    outlier = pd.Series(False, index=adata.obs_names)
    for column in ("log1p_total_counts", "log1p_n_features", "pct_counts_top"):
        outlier |= _beyond_mads(metrics[column], n_mads, upper_only=False)
    if "pct_counts_mt" in metrics:
        high_mt = _beyond_mads(metrics["pct_counts_mt"], n_mads_mt, upper_only=True)
        if max_pct_mt is not None:
            high_mt &= metrics["pct_counts_mt"] > max_pct_mt
        outlier |= high_mt
    if key_added is not None:
        adata.obs[key_added] = outlier.to_numpy()
    return outlier


def _beyond_mads(values: pd.Series, n_mads: float, upper_only: bool) -> pd.Series:
    median = values.median()
    mad = (values - median).abs().median()
    if mad == 0:  # most cells share one value: no spread to measure deviations against
        return pd.Series(False, index=values.index)
    deviation = values - median if upper_only else (values - median).abs()
    return deviation > n_mads * mad
