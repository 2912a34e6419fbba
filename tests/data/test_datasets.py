"""Tests of locating and reading the real data sets."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from omnivi.data import DATA_DIR_ENV, find_data_dir, read_dataset


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No environment variable and a working directory with no ../shared/data."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def _tiny_anndata(n_obs=4, n_vars=3, prefix="g"):
    return ad.AnnData(
        sp.csr_matrix(np.arange(n_obs * n_vars, dtype=np.float32).reshape(n_obs, n_vars)),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_obs)]),
        var=pd.DataFrame(index=[f"{prefix}{i}" for i in range(n_vars)]),
    )


def test_find_data_dir_none_when_nothing(isolated):
    assert find_data_dir() is None


def test_find_data_dir_explicit_path(isolated):
    folder = isolated / "mine"
    folder.mkdir()
    assert find_data_dir(folder) == folder
    assert find_data_dir(str(folder)) == folder


def test_find_data_dir_env(isolated, monkeypatch):
    folder = isolated / "from_env"
    folder.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    assert find_data_dir() == folder
    # a non-existent explicit path falls through to the environment variable
    assert find_data_dir(isolated / "missing") == folder


def test_find_data_dir_shared_beside_cwd(isolated):
    shared = isolated / "shared" / "data"
    shared.mkdir(parents=True)
    assert find_data_dir() == shared


def test_find_data_dir_env_pointing_nowhere_falls_back(isolated, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(isolated / "nope"))
    assert find_data_dir() is None
    shared = isolated / "shared" / "data"
    shared.mkdir(parents=True)
    assert find_data_dir() == shared


def test_read_dataset_reads_h5mu_and_h5ad(isolated):
    folder = isolated / "sets"
    folder.mkdir()
    md.MuData({"rna": _tiny_anndata(), "adt": _tiny_anndata(n_vars=2, prefix="p")}).write(
        folder / "pair.h5mu"
    )
    _tiny_anndata().write_h5ad(folder / "single.h5ad")

    mdata = read_dataset("pair", folder)
    assert isinstance(mdata, md.MuData)
    assert set(mdata.mod) == {"rna", "adt"}
    assert mdata["adt"].shape == (4, 2)

    adata = read_dataset("single", data_dir=folder)
    assert isinstance(adata, ad.AnnData)
    np.testing.assert_array_equal(adata.X.toarray(), _tiny_anndata().X.toarray())


def test_read_dataset_unknown_name_lists_available(isolated):
    folder = isolated / "sets"
    folder.mkdir()
    _tiny_anndata().write_h5ad(folder / "single.h5ad")
    with pytest.raises(FileNotFoundError, match=r"No data set 'other'.*available: \['single'\]"):
        read_dataset("other", folder)


def test_read_dataset_without_folder(isolated):
    with pytest.raises(FileNotFoundError, match=DATA_DIR_ENV):
        read_dataset("bmmc_cite_small")


@pytest.mark.real_data
def test_read_real_cite(real_data_dir):
    mdata = read_dataset("bmmc_cite_small", real_data_dir)
    assert isinstance(mdata, md.MuData)
    assert mdata.n_obs == 600
    assert mdata["rna"].shape == (600, 1000)
    assert mdata["adt"].shape == (600, 134)
    for column in ("batch", "cell_type"):
        assert column in mdata.obs.columns
        assert column in mdata["rna"].obs.columns
        assert column in mdata["adt"].obs.columns
    for mod in ("rna", "adt"):
        x = mdata[mod].X
        assert sp.issparse(x)
        assert (x.data >= 0).all()
        np.testing.assert_array_equal(x.data, np.round(x.data))


@pytest.mark.real_data
def test_read_real_multiome(real_data_dir):
    mdata = read_dataset("bmmc_multiome_small", real_data_dir)
    assert set(mdata.mod) >= {"rna", "atac"}
    assert mdata.n_obs == 500
    assert mdata.obs["batch"].nunique() == 2
    np.testing.assert_array_equal(mdata["atac"].X.data, np.round(mdata["atac"].X.data))
