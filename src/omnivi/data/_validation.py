"""Checks run on user input before anything is registered or trained; matrix accessors.

Every check only reads the user's object. A failing check raises an error that names the
problem and how to fix it, so nothing is left half-registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

#: Rows read at a time from a matrix stored on disk (the ``.X`` of a backed AnnData).
BLOCK_ROWS = 10_000


def _stored_values(matrix) -> np.ndarray:
    """Return the explicitly stored values of a dense or sparse matrix (no copy if possible)."""
    if sp.issparse(matrix):
        return np.asarray(matrix.data)
    return np.asarray(matrix)


def row_blocks(matrix) -> Iterator:
    """Yield ``matrix`` whole if it is in memory, else ``BLOCK_ROWS`` rows at a time.

    A backed AnnData's ``.X`` (an HDF5 dataset, dense or sparse) is read a block of rows at
    a time, so that going through it takes memory for one block only.
    """
    if isinstance(matrix, np.ndarray) or sp.issparse(matrix):
        yield matrix
        return
    for start in range(0, matrix.shape[0], BLOCK_ROWS):
        yield matrix[start : start + BLOCK_ROWS]


def matrix_rows(matrix, rows: np.ndarray | None = None) -> sp.csr_matrix:
    """Return ``rows`` of ``matrix`` (``None``: all) as a CSR matrix in memory, in that order.

    ``rows`` are positions or a boolean mask. A matrix on disk (the ``.X`` of a backed AnnData
    or MuData modality) is read in blocks of ``BLOCK_ROWS`` of the requested rows, in
    increasing order as HDF5 requires.
    """
    if rows is not None:
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
    if isinstance(matrix, np.ndarray) or sp.issparse(matrix):
        return sp.csr_matrix(matrix if rows is None else matrix[rows])
    if rows is None:
        return sp.vstack([sp.csr_matrix(block) for block in row_blocks(matrix)], format="csr")
    order = np.argsort(rows, kind="stable")
    ascending = rows[order]
    blocks = [
        sp.csr_matrix(matrix[ascending[start : start + BLOCK_ROWS]])
        for start in range(0, len(ascending), BLOCK_ROWS)
    ]
    stacked = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, matrix.shape[1]))
    return stacked[np.argsort(order, kind="stable")]


def stored_value_blocks(matrix) -> Iterator[np.ndarray]:
    """Yield the stored values of ``matrix``, a block of rows at a time (:func:`row_blocks`)."""
    return (_stored_values(block) for block in row_blocks(matrix))


def get_matrix(adata: AnnData, layer: str | None):
    """Return ``adata.X`` or ``adata.layers[layer]``, with a clear error if the layer is absent.

    Parameters
    ----------
    adata
        The AnnData (or one modality of a MuData) to read from.
    layer
        Name of a layer, or ``None`` for ``.X``.
    """
    if layer is None:
        if adata.X is None:
            raise ValueError(
                "`.X` is empty. Put the counts into `.X` or pass the name of the layer that "
                "holds them."
            )
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"Layer {layer!r} not found; available layers: {sorted(adata.layers)}. Pass one of "
            "them, or None to use `.X`."
        )
    return adata.layers[layer]


def matrix_anndata(matrix: sp.csr_matrix, layer: str | None, obs=None, var=None) -> AnnData:
    """Return a new AnnData holding ``matrix`` where :func:`get_matrix` reads it.

    Parameters
    ----------
    matrix
        Cells x features (sparse).
    layer
        Layer to put it in, with an all-zero sparse ``.X`` beside it; ``None`` for ``.X``.
    obs, var
        The new object's ``.obs`` and ``.var``.
    """
    adata = AnnData(obs=obs, var=var)
    if layer is None:
        adata.X = matrix
    else:
        adata.X = sp.csr_matrix(matrix.shape, dtype=matrix.dtype)
        adata.layers[layer] = matrix
    return adata


def check_finite(matrix, where: str) -> None:
    """Raise if ``matrix`` holds NaN or infinite values.

    Parameters
    ----------
    matrix
        Dense or sparse matrix, in memory or on disk.
    where
        Human-readable location used in the message, e.g. ``"modality 'rna', layer 'counts'"``.
    """
    n_bad = sum(int((~np.isfinite(values)).sum()) for values in stored_value_blocks(matrix))
    if n_bad:
        raise ValueError(
            f"{where} contains {n_bad} NaN or infinite values. Remove or impute them (for "
            "example `np.nan_to_num`) before setting up the data."
        )


def check_counts(matrix, where: str, likelihood: str) -> None:
    """Raise unless ``matrix`` holds non-negative integers, as a count likelihood needs.

    Parameters
    ----------
    matrix
        Dense or sparse matrix, in memory or on disk.
    where
        Human-readable location used in the message.
    likelihood
        The likelihood that needs counts; named in the message.
    """
    for values in stored_value_blocks(matrix):
        if (values < 0).any():
            raise ValueError(
                f"{where} contains negative values, but the {likelihood!r} likelihood models "
                "counts. Pass the raw counts (often in a 'counts' layer), or use the 'normal' "
                "likelihood for normalised or scaled data."
            )
        if not np.array_equal(values, np.round(values)):
            raise ValueError(
                f"{where} contains non-integer values, but the {likelihood!r} likelihood "
                "models counts. Pass the raw counts (often in a 'counts' layer), or use the "
                "'normal' likelihood for normalised data."
            )


def check_nonnegative(
    matrix,
    where: str,
    hint: str = "Accessibility must be fragment counts or binary peak calls (0/1).",
) -> None:
    """Raise if ``matrix`` holds negative values.

    Parameters
    ----------
    matrix
        Dense or sparse matrix, in memory or on disk.
    where
        Human-readable location used in the message.
    hint
        What the values should be instead, appended to the message.
    """
    if any((values < 0).any() for values in stored_value_blocks(matrix)):
        raise ValueError(f"{where} contains negative values. {hint}")


def check_registrable(data: AnnData | MuData, where: str) -> None:
    """Raise if ``data`` is a view, or has no cells or no features.

    scvi-tools registers data in place (``.obs`` columns, ``.uns`` entries), which a view
    cannot take. A backed AnnData (``read_h5ad(..., backed="r")``) or MuData
    (``read_h5mu(..., backed=True)``) is fine: it is checked and trained on a block of rows at
    a time, read from disk (mosaic data excepted: :func:`check_mosaic_in_memory`).

    Parameters
    ----------
    data
        The object given to ``setup_anndata`` / ``setup_mudata``.
    where
        Its name in the message (``"adata"``, ``"mdata"``).
    """
    if data.is_view:
        raise ValueError(
            f"`{where}` is a view of another object (e.g. `{where}[mask]`), which cannot be "
            f"registered: pass a copy, `{where} = {where}[mask].copy()`."
        )
    if data.n_obs == 0:
        raise ValueError(f"`{where}` has no cells: there is nothing to set up.")
    if data.n_vars == 0:
        raise ValueError(f"`{where}` has no features: there is nothing to set up.")


def check_mosaic_in_memory(mdata: MuData) -> None:
    """Raise if ``mdata`` is mosaic (some cells lack a modality) and backed by a file.

    Mosaic data is padded by reading the user's matrices a minibatch of any cells at a time,
    which omnivi does from memory only; paired data trains from disk.
    """
    if mdata.isbacked:
        raise ValueError(
            "`mdata` is a mosaic MuData (some cells lack a modality) backed by a file; omnivi "
            "reads mosaic data from memory only: load it with "
            "`mdata = mudata.read_h5mu(path)`. (A MuData whose modalities all have the same "
            "cells trains from disk.)"
        )


def check_unique_obs_names(adata: AnnData, where: str) -> None:
    """Raise if two cells of ``adata`` share a name (outputs are indexed by cell name).

    Parameters
    ----------
    adata
        The AnnData given to ``setup_anndata``.
    where
        Its name in the message.
    """
    if adata.obs_names.has_duplicates:
        raise ValueError(
            f"`{where}` has duplicate cell names; make them unique first, e.g. "
            f"`{where}.obs_names_make_unique()`."
        )


def check_obs_values(
    adata: AnnData | MuData,
    categorical: Iterable[str | None],
    continuous: Iterable[str | None],
    where: str,
) -> None:
    """Raise if a registered ``.obs`` column has missing (or, if numerical, infinite) values.

    Every cell needs a batch, a label (or the unlabeled category) and a value of each
    covariate; a missing one would otherwise fail deep inside scvi-tools' registration.

    Parameters
    ----------
    adata
        Object whose ``.obs`` holds the columns (they exist: :func:`check_obs_columns`).
    categorical
        Batch, label and categorical covariate columns; ``None`` entries are ignored.
    continuous
        Continuous covariate columns; ``None`` entries are ignored.
    where
        Human-readable location used in the message.
    """
    for key in categorical:
        if key is None:
            continue
        missing = int(adata.obs[key].isna().sum())
        if missing:
            raise ValueError(
                f"{where}.obs[{key!r}] has no value for {missing} cell(s). Give them one, e.g. "
                f"{where}.obs[{key!r}] = {where}.obs[{key!r}].astype(str).replace('nan', "
                "'unknown') (an unlabeled_category for labels), or leave those cells out."
            )
    for key in continuous:
        if key is None:
            continue
        values = pd.to_numeric(adata.obs[key], errors="coerce").to_numpy(dtype=float)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(
                f"{where}.obs[{key!r}] has {bad} missing, infinite or non-numeric value(s); a "
                "continuous covariate needs a number for every cell. Fill them in, or leave "
                "those cells out."
            )


def check_obs_columns(adata: AnnData | MuData, keys: Iterable[str | None], where: str) -> None:
    """Raise if a requested ``.obs`` column does not exist.

    Parameters
    ----------
    adata
        Object whose ``.obs`` is searched.
    keys
        Column names; ``None`` entries are ignored.
    where
        Human-readable location used in the message.
    """
    for key in keys:
        if key is not None and key not in adata.obs.columns:
            raise KeyError(
                f"Column {key!r} not found in {where}.obs; available columns: "
                f"{list(adata.obs.columns)}. Check the spelling, or point `modalities` at the "
                "modality whose .obs holds it."
            )


def check_modalities(mdata: MuData, modalities: Mapping[str, str]) -> None:
    """Raise if ``modalities`` names a modality the MuData does not have.

    Parameters
    ----------
    mdata
        The user's MuData.
    modalities
        Mapping from ``setup_mudata`` argument to modality name.
    """
    for arg, mod in modalities.items():
        if mod is not None and mod not in mdata.mod:
            raise KeyError(
                f"modalities[{arg!r}] = {mod!r}, but the MuData has no modality {mod!r}; it "
                f"has {list(mdata.mod)}."
            )


def check_global_obs_keys(
    mdata: MuData, modalities: Mapping[str, str], obs_keys: Mapping[str, str | list[str] | None]
) -> None:
    """Raise unless the ``.obs`` columns of mosaic data are in the global ``mdata.obs``.

    Cells missing from a modality have no row in its ``.obs``, so in mosaic data batch,
    labels and covariates are read from ``mdata.obs``, even when ``modalities`` maps them to
    a modality.
    """
    for arg, keys in obs_keys.items():
        keys = [keys] if isinstance(keys, str) else keys or []
        missing = [key for key in keys if key not in mdata.obs]
        if missing and modalities.get(arg) is not None:
            raise ValueError(
                f"Some cells lack a modality, so {arg}={missing} is read from the global "
                f"mdata.obs, which has no such column. Add it there, e.g. "
                f"mdata.obs[{missing[0]!r}] = mdata[{modalities[arg]!r}].obs[{missing[0]!r}] "
                "for cells that have that modality and a value for the others."
            )


def check_modalities_share_cells(presence: pd.DataFrame) -> None:
    """Raise if no cell was measured in two of the modalities: nothing would link them.

    Parameters
    ----------
    presence
        Cells x modalities, true where a cell has the modality
        (:func:`~omnivi.data._mosaic.modality_presence`).
    """
    if presence.shape[1] > 1 and not (presence.sum(axis=1) > 1).any():
        mods = list(presence.columns)
        raise ValueError(
            f"No cell is in more than one of the modalities {mods}, so nothing links them. If "
            "they hold the same cells, their cell names differ (e.g. 'AAAC-1' against 'AAAC'): "
            f"make mdata[{mods[0]!r}].obs_names and mdata[{mods[1]!r}].obs_names match, then "
            "mdata.update(). Mosaic data needs some cells measured in several modalities."
        )


def check_unique_cells(mdata: MuData, mod_keys: Iterable[str]) -> None:
    """Raise if one of ``mod_keys`` names a cell twice.

    Parameters
    ----------
    mdata
        The user's MuData.
    mod_keys
        Modalities to check.
    """
    for mod in mod_keys:
        if mdata.mod[mod].obs_names.has_duplicates:
            raise ValueError(
                f"Modality {mod!r} has duplicate cell names; make them unique, e.g. "
                f"mdata.mod[{mod!r}].obs_names_make_unique()."
            )


def check_cell_order(mdata: MuData, mod_keys: Iterable[str]) -> None:
    """Raise unless each of ``mod_keys`` stores ``mdata``'s cells once each, in its order.

    Parameters
    ----------
    mdata
        The user's MuData, every cell of which is in each of ``mod_keys``.
    mod_keys
        Modalities to check.
    """
    mod_keys = list(mod_keys)
    check_unique_cells(mdata, mod_keys)
    for mod in mod_keys:
        modality = mdata.mod[mod]
        if not modality.obs_names.equals(mdata.obs_names):
            raise ValueError(
                f"Modality {mod!r} stores the cells in another order than the MuData, so its "
                "rows would be paired with the wrong cells. Reorder it first: "
                f"mdata.mod[{mod!r}] = mdata[{mod!r}][mdata.obs_names].copy(); mdata.update()."
            )
