"""Preprocessing helpers: values on small hand-made matrices, real data, inputs untouched."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from omnivi import pp


def _adata(x, var_names=None) -> ad.AnnData:
    x = np.asarray(x, dtype=np.float32)
    var = pd.DataFrame(index=var_names or [f"f{i}" for i in range(x.shape[1])])
    return ad.AnnData(x, obs=pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])]), var=var)


@pytest.mark.parametrize("as_sparse", [False, True])
def test_normalize_log1p_divides_by_median_size_factors(as_sparse):
    counts = np.array([[1, 3, 0], [2, 6, 0], [0, 0, 4]], dtype=np.float32)
    adata = _adata(counts)
    if as_sparse:
        adata.X = sp.csr_matrix(adata.X)
    factors = pp.normalize_log1p(adata)
    np.testing.assert_allclose(factors, [1.0, 2.0, 1.0])  # totals 4, 8, 4; median 4
    layer = adata.layers["log1p_norm"]
    assert sp.issparse(layer) == as_sparse
    dense = layer.toarray() if as_sparse else layer
    np.testing.assert_allclose(dense, np.log1p(counts / factors[:, None]), rtol=1e-6)
    x = adata.X.toarray() if as_sparse else adata.X
    np.testing.assert_array_equal(x, counts)  # counts untouched


def test_normalize_log1p_with_given_factors_and_bad_factors():
    adata = _adata([[2, 2], [4, 4]])
    adata.obs["sf"] = [2.0, 4.0]
    pp.normalize_log1p(adata, factors="sf", key_added="norm")
    np.testing.assert_allclose(adata.layers["norm"], np.log1p(np.ones((2, 2))))
    with pytest.raises(ValueError, match="positive"):
        pp.normalize_log1p(adata, factors=np.array([1.0, 0.0]))
    with pytest.raises(KeyError, match="missing"):
        pp.normalize_log1p(adata, factors="missing")


def test_negative_input_is_refused():
    with pytest.raises(ValueError, match=r"negative values\. Pass raw counts"):
        pp.normalize_log1p(_adata([[1, -1]]))


@pytest.mark.parametrize("axis", [0, 1])
def test_clr_matches_muon(axis):
    muon = pytest.importorskip("muon")
    counts = np.array([[0, 10, 100], [5, 5, 50], [1, 0, 3]], dtype=np.float32)
    adata = _adata(counts)
    pp.clr(adata, axis=axis)
    reference = _adata(counts)
    reference.X = sp.csr_matrix(counts) if axis == 1 else sp.csc_matrix(counts)
    muon.prot.pp.clr(reference, axis=axis)
    np.testing.assert_allclose(adata.layers["clr"], reference.X.toarray(), rtol=1e-6)
    geometric_mean = np.exp(np.log1p(counts).mean(axis=axis, keepdims=True))
    np.testing.assert_allclose(adata.layers["clr"], np.log1p(counts / geometric_mean), rtol=1e-6)
    with pytest.raises(ValueError, match="axis"):
        pp.clr(adata, axis=2)


def test_binarize_and_tfidf():
    counts = sp.csr_matrix(np.array([[0, 2, 1], [3, 0, 0]], dtype=np.float32))
    adata = _adata(counts.toarray())
    adata.X = counts
    pp.binarize(adata)
    np.testing.assert_array_equal(adata.layers["binary"].toarray(), [[0, 1, 1], [1, 0, 0]])
    pp.tfidf(adata, scale_factor=10.0)
    tf = np.array([[0, 2 / 3, 1 / 3], [1, 0, 0]])
    idf = 2 / np.array([3, 2, 1])
    np.testing.assert_allclose(adata.layers["tfidf"].toarray(), np.log1p(10 * tf * idf), rtol=1e-6)


def test_mad_outliers_flags_extreme_cells_only():
    rng = np.random.default_rng(0)
    depth = rng.lognormal(0.0, 0.3, (300, 1))
    counts = rng.poisson(0.5 * depth * rng.lognormal(0, 1, 200)).astype(np.float32)
    counts[0] = 0
    counts[0, :2] = 1  # almost empty cell
    counts[1] *= 50  # far too many counts
    names = [f"MT-{i}" for i in range(3)] + [f"g{i}" for i in range(197)]
    counts[2, :3] = 500  # mostly mitochondrial
    adata = _adata(counts, names)
    flags = pp.mad_outliers(adata)
    assert flags.index.equals(adata.obs_names)
    assert flags.iloc[:3].all()
    assert flags.iloc[3:].mean() < 0.05
    assert adata.obs["outlier"].tolist() == flags.tolist()
    metrics = pp.qc_metrics(adata)
    assert {"log1p_total_counts", "log1p_n_features", "pct_counts_top", "pct_counts_mt"} <= set(
        metrics
    )
    assert pp.mad_outliers(adata, key_added=None).equals(flags)


def test_highly_variable_features_per_modality():
    rng = np.random.default_rng(0)
    rna = rng.poisson(1.0, (200, 200)).astype(np.float32)
    rna[:100, :5] += rng.poisson(6, (100, 5))  # 5 genes vary between two groups
    accessible = np.where(np.arange(30) < 20, 0.05, 0.6)
    atac = (rng.random((200, 30)) < accessible).astype(np.float32)
    adt = rng.poisson(20, (200, 6)).astype(np.float32)
    mdata = md.MuData({"rna": _adata(rna), "atac": _adata(atac), "adt": _adata(adt)})
    selected = pp.highly_variable_features(mdata, n_top={"rna": 5, "atac": 10, "adt": 10})
    assert set(np.flatnonzero(selected["rna"])) == set(range(5))
    assert set(np.flatnonzero(selected["atac"])) == set(range(20, 30))  # most accessible
    assert selected["adt"].all()  # fewer proteins than asked: all kept
    assert mdata["rna"].var["highly_variable"].sum() == 5
    with pytest.raises(KeyError, match="No modality"):
        pp.highly_variable_features(mdata, n_top={"protein": 5})


def test_highly_variable_genes_on_real_rna(mop_rna):
    """On mop RNA, the selected genes include known markers of its cell types."""
    before = mop_rna.X.copy()
    selected = pp.highly_variable_features(mop_rna, n_top=500, batch_key="sample")["rna"]
    assert selected.sum() == 500
    markers = {"Gad1", "Gad2", "Slc17a7", "Mbp", "Plp1", "Pvalb", "Sst", "Vip"}
    markers &= set(mop_rna.var_names)
    chosen = markers & set(selected.index[selected])
    assert len(markers) == 8
    assert len(chosen) >= 6, chosen  # with 500 of 1677 genes kept
    assert (mop_rna.X != before).nnz == 0
