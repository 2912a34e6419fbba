"""Unit tests of the input checks in omnivi.data._validation."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from omnivi.data._validation import (
    check_cell_order,
    check_counts,
    check_finite,
    check_modalities,
    check_nonnegative,
    check_obs_columns,
    get_matrix,
)


def _adata(n_obs: int = 5, n_vars: int = 4, names: list[str] | None = None) -> ad.AnnData:
    names = names or [f"c{i}" for i in range(n_obs)]
    x = np.arange(len(names) * n_vars, dtype=np.float32).reshape(len(names), n_vars)
    adata = ad.AnnData(x, obs=pd.DataFrame({"batch": ["a"] * len(names)}, index=names))
    adata.var_names = [f"g{i}" for i in range(n_vars)]
    return adata


# ---------------------------------------------------------------------------- get_matrix
def test_get_matrix_returns_x_or_layer():
    adata = _adata()
    adata.layers["counts"] = adata.X * 2
    assert get_matrix(adata, None) is adata.X
    np.testing.assert_array_equal(get_matrix(adata, "counts"), adata.X * 2)


def test_get_matrix_missing_layer_lists_available_layers():
    adata = _adata()
    adata.layers["counts"] = adata.X.copy()
    with pytest.raises(KeyError, match=r"Layer 'raw' not found; available layers: \['counts'\]"):
        get_matrix(adata, "raw")


def test_get_matrix_empty_x():
    adata = ad.AnnData(obs=pd.DataFrame(index=["a", "b"]), var=pd.DataFrame(index=["g"]))
    assert adata.X is None
    with pytest.raises(ValueError, match=r"`\.X` is empty"):
        get_matrix(adata, None)


# --------------------------------------------------------------------------- check_finite
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sparse", [False, True])
def test_check_finite_rejects_nan_and_inf(bad, sparse):
    x = np.ones((4, 3), dtype=np.float32)
    x[1, 2] = bad
    x[3, 0] = bad
    matrix = sp.csr_matrix(x) if sparse else x
    with pytest.raises(ValueError, match=r"modality 'rna' contains 2 NaN or infinite values"):
        check_finite(matrix, "modality 'rna'")


@pytest.mark.parametrize("sparse", [False, True])
def test_check_finite_accepts_finite(sparse):
    x = np.array([[0.0, 1.5], [-2.0, 0.0]], dtype=np.float32)
    check_finite(sp.csr_matrix(x) if sparse else x, "x")


# --------------------------------------------------------------------------- check_counts
@pytest.mark.parametrize("sparse", [False, True])
def test_check_counts_accepts_integer_valued_floats(sparse):
    x = np.array([[0, 3, 1], [7, 0, 250]], dtype=np.float32)
    check_counts(sp.csr_matrix(x) if sparse else x, "x", "nb")


@pytest.mark.parametrize("sparse", [False, True])
def test_check_counts_rejects_negative(sparse):
    x = np.array([[0, 3, -1], [7, 0, 2]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"The rna data contains negative values, but the 'zinb'"):
        check_counts(sp.csr_matrix(x) if sparse else x, "The rna data", "zinb")


@pytest.mark.parametrize("sparse", [False, True])
def test_check_counts_rejects_non_integers_and_suggests_normal(sparse):
    x = np.array([[0, 3, 1.5], [7, 0, 2]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"non-integer values.*'normal'"):
        check_counts(sp.csr_matrix(x) if sparse else x, "The protein data", "nbmixture")


def test_check_counts_does_not_modify_input():
    x = np.array([[0.2, 3.0], [7.0, 0.0]], dtype=np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match="non-integer"):
        check_counts(x, "x", "nb")
    np.testing.assert_array_equal(x, before)


# ----------------------------------------------------------------------- check_nonnegative
def test_check_nonnegative():
    check_nonnegative(sp.csr_matrix(np.array([[0.0, 2.0], [1.0, 0.5]])), "atac")
    with pytest.raises(ValueError, match=r"atac contains negative values.*binary peak calls"):
        check_nonnegative(np.array([[0.0, -2.0]]), "atac")


# ----------------------------------------------------------------------- check_obs_columns
def test_check_obs_columns():
    adata = _adata()
    check_obs_columns(adata, ["batch", None], "adata")
    with pytest.raises(
        KeyError, match=r"Column 'donor' not found in adata\.obs; available columns: \['batch'\]"
    ):
        check_obs_columns(adata, ["batch", "donor"], "adata")


# ------------------------------------------------------------------------ check_modalities
def test_check_modalities():
    mdata = md.MuData({"rna": _adata(), "adt": _adata(n_vars=2)})
    check_modalities(mdata, {"rna_layer": "rna", "protein_layer": "adt", "atac_layer": None})
    with pytest.raises(
        KeyError, match=r"modalities\['protein_layer'\] = 'protein'.*no modality 'protein'"
    ):
        check_modalities(mdata, {"rna_layer": "rna", "protein_layer": "protein"})


# ----------------------------------------------------------------------- check_cell_order
def test_check_cell_order_accepts_paired_cells():
    mdata = md.MuData({"rna": _adata(), "adt": _adata(n_vars=2)})
    check_cell_order(mdata, ["rna", "adt"])


def test_check_cell_order_rejects_duplicate_cell_names():
    names = ["c0", "c1", "c1"]
    mdata = md.MuData({"rna": _adata(names=names)})
    with pytest.raises(ValueError, match=r"duplicate cell names.*obs_names_make_unique"):
        check_cell_order(mdata, ["rna"])
