"""Mosaic MuData: cells measured in some of the modalities only."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import sparse

from omnivi.data._validation import check_unique_cells, get_matrix, matrix_anndata

#: ``.obsm`` key of the padded MuData holding which modalities each cell has (cells x mods).
MODALITY_MASK_OBSM_KEY = "_omnivi_modality_mask"


def modality_presence(mdata: MuData, mods: list[str]) -> pd.DataFrame:
    """Return which of ``mods`` each cell of ``mdata`` was measured in (cells x mods, bool)."""
    return pd.DataFrame(
        {mod: mdata.obs_names.isin(mdata.mod[mod].obs_names) for mod in mods},
        index=mdata.obs_names,
    )


def is_mosaic(mdata: MuData, mods: list[str]) -> bool:
    """Whether some cell of ``mdata`` lacks one of ``mods``."""
    return not modality_presence(mdata, mods).to_numpy().all()


def pad_mosaic(mdata: MuData, layers: Mapping[str, str | None]) -> MuData:
    """Build a MuData in which every cell has every modality, with a mask of what was measured.

    The user's object is not modified, and its sparse data is not copied: each padded
    modality is a CSR matrix over every cell of ``mdata`` (in ``mdata``'s order) that shares
    the ``data`` and ``indices`` arrays of the user's matrix, of any dtype (scvi-tools casts
    each minibatch to float32), with a row-pointer array of its own in which the cells the
    modality lacks are empty rows. A modality that is dense, or whose cells are not in
    ``mdata``'s order, is copied once.
    ``.obsm`` of the new MuData holds under :data:`MODALITY_MASK_OBSM_KEY` a cells x
    modalities array, 1 where the cell was measured. The global ``.obs`` is copied; each
    modality's ``.obs`` is the global one.

    Parameters
    ----------
    mdata
        The user's MuData; its ``.obs`` is the union of the modalities' cells.
    layers
        Modality name in ``mdata`` -> layer holding its data (``None`` for ``.X``); the data
        is kept under the same layer in the padded object.
    """
    check_unique_cells(mdata, layers)
    presence = modality_presence(mdata, list(layers))
    obs = mdata.obs.copy()
    modalities = {}
    for mod, layer in layers.items():
        source = mdata.mod[mod]
        present = presence[mod].to_numpy()
        padded = _pad_rows(
            sparse.csr_matrix(get_matrix(source, layer)),
            source.obs_names.get_indexer(mdata.obs_names[present]),
            present,
        )
        modalities[mod] = matrix_anndata(padded, layer, obs.copy(), source.var.copy())
    result = MuData(modalities)
    result.obs = obs
    result.obsm[MODALITY_MASK_OBSM_KEY] = presence.to_numpy(dtype=np.float32)
    return result


def _pad_rows(matrix: sparse.csr_matrix, rows: np.ndarray, present: np.ndarray):
    """Return ``matrix``'s ``rows`` placed at the true positions of ``present``, others empty.

    The result shares ``matrix``'s ``data`` and ``indices`` when ``rows`` lists every row
    once, in order (the usual layout of a MuData); otherwise those rows are copied first.
    """
    if not np.array_equal(rows, np.arange(matrix.shape[0])):
        matrix = matrix[rows]
    row_lengths = np.zeros(present.size, dtype=matrix.indptr.dtype)
    row_lengths[present] = np.diff(matrix.indptr)
    indptr = np.concatenate([[0], np.cumsum(row_lengths)]).astype(matrix.indptr.dtype)
    return sparse.csr_matrix(
        (matrix.data, matrix.indices, indptr),
        shape=(present.size, matrix.shape[1]),
        copy=False,
    )
