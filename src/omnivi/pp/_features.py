"""Selection of informative features in each modality."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from mudata import MuData

from omnivi.pp._normalize import _counts

FeatureKind = Literal["rna", "protein", "atac"]
_KIND_HINTS = {"atac": ("atac", "peak", "chrom"), "protein": ("adt", "prot", "cite")}


def _kind_of(modality: str) -> FeatureKind:
    """Guess a modality's kind from its name (``atac``/``peaks``, ``adt``/``protein``)."""
    name = modality.lower()
    for kind, hints in _KIND_HINTS.items():
        if any(hint in name for hint in hints):
            return kind
    return "rna"


def _feature_scores(
    adata: AnnData, kind: FeatureKind, layer: str | None, batch_key: str | None, n_top: int
) -> np.ndarray:
    """Score each feature, higher for more informative ones.

    RNA: scanpy's selection of ``n_top`` genes by the variance of analytic Pearson residuals
    (with ``batch_key``, genes selected in most batches first), then by rank;
    protein: variance of the per-protein centred ``log1p`` counts; ATAC: fraction of cells in
    which the region is accessible.
    """
    counts = _counts(adata, layer)
    if kind == "atac":
        return np.asarray((counts > 0).mean(axis=0)).ravel()
    if kind == "protein":
        logged = np.log1p(counts.toarray() if hasattr(counts, "toarray") else counts)
        return logged.var(axis=0)
    obs = adata.obs[[batch_key]].copy() if batch_key else None
    table = sc.experimental.pp.highly_variable_genes(
        AnnData(counts, obs=obs),
        flavor="pearson_residuals",
        n_top_genes=min(n_top, adata.n_vars),
        batch_key=batch_key,
        inplace=False,
    )
    rank = table["highly_variable_rank"].fillna(adata.n_vars).to_numpy()
    return table["highly_variable"].to_numpy() * adata.n_vars - rank


def highly_variable_features(
    data: AnnData | MuData,
    n_top: int | Mapping[str, int] = 2000,
    kinds: Mapping[str, FeatureKind] | None = None,
    layer: str | None = None,
    batch_key: str | None = None,
    key_added: str = "highly_variable",
) -> dict[str, pd.Series]:
    """Mark the most informative features of each modality in its ``.var``.

    Parameters
    ----------
    data
        An AnnData (one modality) or a MuData (each modality in ``n_top`` if it is a mapping,
        else every modality).
    n_top
        Features to keep per modality: one number for all, or ``{"rna": 2000, "atac":
        20000}``. Modalities with no more features keep them all.
    kinds
        Kind of each modality (``"rna"``, ``"protein"``, ``"atac"``); by default guessed
        from its name (``adt``/``prot`` -> protein, ``atac``/``peaks`` -> ATAC, else RNA).
        For an AnnData, the key ``"rna"`` (or the only entry) gives its kind.
    layer
        Layer of counts in each modality; ``None`` for ``.X``.
    batch_key
        RNA only: ``.obs`` column of batches; genes are ranked by their residual variance
        averaged over batches (MuData: read from each modality's ``.obs``).
    key_added
        Boolean ``.var`` column written in each modality.

    Returns
    -------
    The selection (boolean Series over features) per modality name (``"rna"`` ... for an
    AnnData, the guessed or given kind).
    """
    kinds = dict(kinds or {})
    if isinstance(data, MuData):
        names = list(n_top) if isinstance(n_top, Mapping) else list(data.mod)
        missing = [name for name in names if name not in data.mod]
        if missing:
            raise KeyError(f"No modality {missing} in the MuData; it has {list(data.mod)}.")
        modalities = {name: data[name] for name in names}
    else:
        name = next(iter(kinds), "rna")
        modalities = {name: data}
    selected = {}
    for name, adata in modalities.items():
        kind = kinds.get(name, _kind_of(name))
        count = n_top[name] if isinstance(n_top, Mapping) else n_top
        rna_batches = batch_key if kind == "rna" else None
        scores = _feature_scores(adata, kind, layer, rna_batches, count)
        keep = np.zeros(adata.n_vars, dtype=bool)
        keep[np.argsort(-scores, kind="stable")[: min(count, adata.n_vars)]] = True
        adata.var[key_added] = keep
        selected[name] = pd.Series(keep, index=adata.var_names, name=key_added)
    if isinstance(data, MuData):
        data.update_var()
    return selected
