"""Mosaic MuData: cells measured in some of the modalities only."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from anndata.abc import CSRDataset
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

    The user's object is not modified, and its data is not copied: each padded modality is a
    :class:`PaddedRows` over every cell of ``mdata`` (in ``mdata``'s order) that reads the
    user's matrix, of any dtype and in any cell order, when a minibatch is read, with empty
    rows for the cells the modality lacks. ``.obsm`` of the new MuData holds under
    :data:`MODALITY_MASK_OBSM_KEY` a cells x modalities array, 1 where the cell was measured.
    The global ``.obs`` is copied; each modality's ``.obs`` is the global one.

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
        padded = PaddedRows(get_matrix(source, layer), source.obs_names.get_indexer(obs.index))
        modalities[mod] = matrix_anndata(padded, layer, obs.copy(), source.var.copy())
    result = MuData(modalities)
    result.obs = obs
    result.obsm[MODALITY_MASK_OBSM_KEY] = presence.to_numpy(dtype=np.float32)
    return result


class PaddedRows(CSRDataset):
    """A modality's matrix over every cell of a mosaic MuData, padded when rows are read.

    Row ``i`` is row ``source_rows[i]`` of ``matrix``, or an empty row where
    ``source_rows[i]`` is -1 (a cell without the modality). Nothing is copied: the rows asked
    for are gathered from ``matrix`` when read, as CSR. scvi-tools reads it as it reads the
    matrix of a backed AnnData (an :class:`anndata.abc.CSRDataset`), a minibatch at a time.

    Parameters
    ----------
    matrix
        The user's cells x features matrix (CSR or dense; another sparse format is converted
        to CSR once).
    source_rows
        For each cell of the padded matrix, its row in ``matrix``, or -1.
    """

    def __init__(self, matrix, source_rows: np.ndarray):
        if sparse.issparse(matrix) and matrix.format != "csr":
            matrix = sparse.csr_matrix(matrix)
        self.matrix = matrix
        self.source_rows = np.asarray(source_rows)
        self.shape = (len(self.source_rows), matrix.shape[1])
        self.dtype = matrix.dtype

    def __getitem__(self, index) -> sparse.csr_matrix:
        """Return the rows ``index`` (an integer, slice, positions or mask; or rows, columns)."""
        rows, columns = index if isinstance(index, tuple) else (index, slice(None))
        rows = np.atleast_1d(self.source_rows[rows])
        present = rows >= 0
        measured = sparse.csr_matrix(self.matrix[rows[present]])
        lengths = np.zeros(len(rows), dtype=measured.indptr.dtype)
        lengths[present] = np.diff(measured.indptr)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(measured.indptr.dtype)
        padded = sparse.csr_matrix(
            (measured.data, measured.indices, indptr), shape=(len(rows), self.shape[1])
        )
        every_column = isinstance(columns, slice) and columns == slice(None)
        return padded if every_column else padded[:, columns]

    def to_memory(self) -> sparse.csr_matrix:
        """Return the whole padded matrix, as CSR in memory."""
        return self[:]
