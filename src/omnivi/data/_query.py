"""Aligning query data with a reference model's features."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from omnivi.data._validation import get_matrix, matrix_anndata, matrix_rows

#: Below this fraction of the reference's features present in the query, a warning is given.
MIN_SHARED_FEATURE_FRACTION = 0.8


def align_features(
    adata: AnnData, features: pd.Index, layer: str | None, where: str = "query"
) -> AnnData:
    """Return a new AnnData with exactly ``features``, in their order.

    Features the query lacks are added as zeros; features the reference lacks are dropped.
    ``adata`` is not modified.

    Parameters
    ----------
    adata
        Query cells x features.
    features
        The reference's features, in its order.
    layer
        Layer holding the data in ``adata`` (and in the result); ``None`` for ``.X``.
    where
        How to name ``adata`` in errors and warnings.
    """
    features = pd.Index(features)
    columns = adata.var_names.get_indexer(features)
    shared = int((columns >= 0).sum())
    if shared == 0:
        raise ValueError(
            f"The {where} shares no feature with the reference ({len(features)} features, e.g. "
            f"{list(features[:3])}; the {where} has e.g. {list(adata.var_names[:3])}). Use the "
            "same feature identifiers as the reference (gene symbols or Ensembl IDs)."
        )
    if shared < MIN_SHARED_FEATURE_FRACTION * len(features):
        warnings.warn(
            f"The {where} has {shared} of the reference's {len(features)} features; the "
            f"{len(features) - shared} missing ones are set to zero, which may bias the mapping.",
            UserWarning,
            stacklevel=3,
        )
    matrix = matrix_rows(get_matrix(adata, layer)).astype(np.float32, copy=False)
    present = np.flatnonzero(columns >= 0)
    selector = sparse.csr_matrix(
        (np.ones(shared, dtype=np.float32), (columns[present], present)),
        shape=(adata.n_vars, len(features)),
    )
    aligned = sparse.csr_matrix(matrix @ selector)
    return matrix_anndata(aligned, layer, adata.obs.copy(), pd.DataFrame(index=features.copy()))


def empty_modality(features: pd.Index, layer: str | None) -> AnnData:
    """Return an AnnData with no cells and ``features``: a modality the query lacks."""
    matrix = sparse.csr_matrix((0, len(features)), dtype=np.float32)
    return matrix_anndata(matrix, layer, var=pd.DataFrame(index=pd.Index(features).copy()))


def check_same_features(data: AnnData | MuData, features, model_name: str) -> None:
    """Raise unless ``data`` has exactly a model's ``features`` (per modality for MuData).

    Parameters
    ----------
    data
        Data to load a model onto.
    features
        The model's features: an index, or a dict of modality -> index.
    model_name
        Class name of the model, for the fix named in the error.
    """
    prepare = (
        f"{model_name}.prepare_query_mudata(data, model) (or prepare_query_anndata for an AnnData)"
    )
    if isinstance(features, dict):
        missing = [mod for mod in features if mod not in data.mod]
        if missing:
            raise ValueError(
                f"The data has no modality {missing} of the model's {list(features)}. Pass the "
                f"object that {prepare} returns: it adds the missing modalities without cells, "
                "so that the model embeds each cell from what it has."
            )
    pairs = (
        {mod: (data[mod].var_names, names) for mod, names in features.items()}
        if isinstance(features, dict)
        else {"data": (data.var_names, features)}
    )
    for where, (given, expected) in pairs.items():
        if not pd.Index(given).equals(pd.Index(expected)):
            raise ValueError(
                f"The {where if where == 'data' else f'modality {where!r}'} has "
                f"{len(given)} features, not the model's {len(expected)} in its order. Lay it "
                f"out like the training data first, and pass the object that {prepare} "
                "returns: it pads missing features with zeros and drops extra ones."
            )
