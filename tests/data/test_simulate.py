"""Tests of the CITE-seq simulator."""

from __future__ import annotations

import mudata as md
import numpy as np
import scipy.sparse as sp

from omnivi.data import RARE_TYPE, simulate_cite_seq


def test_layout(synthetic_mdata):
    mdata = synthetic_mdata
    assert isinstance(mdata, md.MuData)
    assert set(mdata.mod) == {"rna", "protein"}
    assert mdata.n_obs == 600
    assert mdata["rna"].shape == (600, 200)
    assert mdata["protein"].shape == (600, 20)
    assert list(mdata["rna"].var_names[:2]) == ["gene_0000", "gene_0001"]
    assert list(mdata["protein"].var_names[:2]) == ["protein_00", "protein_01"]
    np.testing.assert_array_equal(mdata["rna"].obs_names, mdata.obs_names)
    np.testing.assert_array_equal(mdata["protein"].obs_names, mdata.obs_names)
    assert {"batch", "cell_type"} <= set(mdata.obs.columns)
    assert mdata.obs["batch"].dtype == "category"
    assert mdata.obs["cell_type"].dtype == "category"


def test_counts_are_sparse_non_negative_integers(synthetic_mdata):
    for mod in ("rna", "protein"):
        x = synthetic_mdata[mod].X
        assert sp.issparse(x)
        assert (x.data >= 0).all()
        np.testing.assert_array_equal(x.data, np.round(x.data))
        assert x.sum() > 0
    # every cell has RNA counts and protein counts (sequencing depth ~1500)
    assert (np.asarray(synthetic_mdata["rna"].X.sum(axis=1)).ravel() > 100).all()
    assert (np.asarray(synthetic_mdata["protein"].X.sum(axis=1)).ravel() > 0).all()


def test_batches_and_cell_types():
    mdata = simulate_cite_seq(
        n_cells=1000,
        n_genes=50,
        n_proteins=10,
        n_batches=4,
        n_cell_types=5,
        rare_fraction=0.05,
        seed=3,
    )
    assert mdata.obs["batch"].nunique() == 4
    types = set(mdata.obs["cell_type"].astype(str))
    assert types == {f"type_{i}" for i in range(5)} | {RARE_TYPE}
    assert (mdata.obs["cell_type"] == RARE_TYPE).sum() == 50


def test_seed_determinism(synthetic_mdata):
    again = simulate_cite_seq(n_cells=600, n_genes=200, n_proteins=20, seed=0)
    other = simulate_cite_seq(n_cells=600, n_genes=200, n_proteins=20, seed=1)
    for mod in ("rna", "protein"):
        np.testing.assert_array_equal(synthetic_mdata[mod].X.toarray(), again[mod].X.toarray())
        assert not np.array_equal(synthetic_mdata[mod].X.toarray(), other[mod].X.toarray())
    np.testing.assert_array_equal(synthetic_mdata.obs["cell_type"], again.obs["cell_type"])


def test_cell_types_differ_in_expression(synthetic_mdata):
    """Markers make cell types separable: type means differ much more than within-type noise."""
    x = np.log1p(synthetic_mdata["protein"].X.toarray())
    labels = synthetic_mdata.obs["cell_type"].astype(str).to_numpy()
    means = np.stack([x[labels == t].mean(axis=0) for t in np.unique(labels) if t != RARE_TYPE])
    spread_between = np.abs(means[:, None, :] - means[None, :, :]).max(axis=-1)
    off_diagonal = spread_between[~np.eye(len(means), dtype=bool)]
    assert off_diagonal.min() > 0.5


def test_rare_type_differs_from_parent_in_few_genes(synthetic_mdata):
    x = np.log1p(synthetic_mdata["rna"].X.toarray())
    labels = synthetic_mdata.obs["cell_type"].astype(str).to_numpy()
    diff = x[labels == RARE_TYPE].mean(axis=0) - x[labels == "type_0"].mean(axis=0)
    # 8 rare markers raised by +3 in log space; most other genes barely move.
    assert (diff > 1.5).sum() >= 4
    assert (np.abs(diff) > 1.5).sum() <= 12
