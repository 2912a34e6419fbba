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

    The user's object is not modified. Each modality in ``layers`` gets a row for every cell
    of ``mdata`` (in ``mdata``'s order); cells it lacks get zeros, and ``.obsm`` of the new
    MuData holds under :data:`MODALITY_MASK_OBSM_KEY` a cells x modalities array, 1 where the
    cell was measured. The global ``.obs`` is copied; each modality's ``.obs`` is the global
    one.

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
        matrix = sparse.csr_matrix(get_matrix(source, layer), dtype=np.float32)
        rows = np.full(mdata.n_obs, -1)
        rows[presence[mod].to_numpy()] = source.obs_names.get_indexer(
            mdata.obs_names[presence[mod].to_numpy()]
        )
        gather = sparse.csr_matrix(
            (
                np.ones(int((rows >= 0).sum()), dtype=np.float32),
                (np.flatnonzero(rows >= 0), rows[rows >= 0]),
            ),
            shape=(mdata.n_obs, source.n_obs),
        )
        padded = sparse.csr_matrix(gather @ matrix)
        modalities[mod] = matrix_anndata(padded, layer, obs.copy(), source.var.copy())
    result = MuData(modalities)
    result.obs = obs
    result.obsm[MODALITY_MASK_OBSM_KEY] = presence.to_numpy(dtype=np.float32)
    return result
