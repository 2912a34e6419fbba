import anndata as ad
import mudata as md
import numpy as np
import pytest
from scipy import sparse

from omnivi.benchmark import describe_data
from omnivi.benchmark._data import load_data, load_obs

CITE = {"rna": "rna", "protein": "adt"}


def test_describe_and_load(cite_file):
    data = describe_data(cite_file, CITE, "batch", "cell_type")
    assert data.n_batches == 2
    assert not data.mosaic
    assert data.n_features == {"rna": 80, "protein": 12}
    mdata = load_data(data)
    assert list(mdata.mod) == ["rna", "protein"]
    assert isinstance(mdata["protein"].X, np.ndarray)  # TOTALVI refuses sparse protein
    assert sparse.issparse(mdata["rna"].X)
    for part in (mdata, mdata["rna"], mdata["protein"]):
        assert {"batch", "cell_type"} <= set(part.obs.columns)
    obs = load_obs(data)
    assert list(obs.index) == list(md.read_h5mu(cite_file).obs_names)
    assert data.to_json() == type(data).from_json(data.to_json()).to_json()


def test_modalities_guessed_and_subset(cite_file):
    assert describe_data(cite_file, None, "batch", "cell_type").modalities == CITE
    rna_only = describe_data(cite_file, {"rna": "rna"}, "batch", "cell_type")
    assert list(load_data(rna_only).mod) == ["rna"]


def test_label_read_from_a_modality(tmp_path):
    rna = ad.AnnData(
        sparse.csr_matrix(np.random.default_rng(0).poisson(1.0, (40, 10)).astype(np.float32))
    )
    rna.obs["batch"] = ["a", "b"] * 20
    rna.obs["cell_type"] = ["x"] * 20 + ["y"] * 20
    with md.set_options(pull_on_update=False):
        md.MuData({"rna": rna}).write(tmp_path / "m.h5mu")
    data = describe_data(tmp_path / "m.h5mu", None, "batch", "cell_type")
    assert data.obs_owner == {"batch": "rna", "cell_type": "rna"}
    assert list(load_obs(data)["cell_type"]) == list(rna.obs["cell_type"])


def test_h5ad_is_rna(tmp_path):
    adata = ad.AnnData(np.random.default_rng(0).poisson(1.0, (30, 8)).astype(np.float32))
    adata.obs["b"] = ["1", "2"] * 15
    adata.obs["t"] = ["x", "y", "z"] * 10
    adata.write_h5ad(tmp_path / "a.h5ad")
    data = describe_data(tmp_path / "a.h5ad", {"protein": "ignored"}, "b", "t")
    assert data.modalities == {"rna": ""}
    assert list(load_data(data).mod) == ["rna"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"modalities": {"rna": "gex"}}, "no modality"),
        ({"modalities": {"rna": "rna", "dna": "adt"}}, "Unknown modality"),
        ({"modalities": {"protein": "adt"}}, "needs RNA"),
        ({"batch_key": "donor"}, "no .obs of the data"),
        ({"layers": {"rna": "counts"}}, "Layer 'counts' not found"),
    ],
)
def test_bad_arguments(cite_file, change, message):
    arguments = {"modalities": CITE, "batch_key": "batch", "label_key": "cell_type", **change}
    with pytest.raises((KeyError, ValueError), match=message):
        describe_data(cite_file, **arguments)


def _write(tmp_path, mutate):
    rna = ad.AnnData(np.random.default_rng(0).poisson(1.0, (30, 8)).astype(np.float32))
    rna.obs["batch"] = ["1", "2"] * 15
    rna.obs["cell_type"] = ["x", "y", "z"] * 10
    mutate(rna)
    path = tmp_path / "bad.h5ad"
    rna.write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.obs.__setitem__("cell_type", [None] + ["x"] * 29), "no value in 'cell_type'"),
        (lambda a: a.obs.__setitem__("batch", ["1"] * 30), "one batch only"),
        (lambda a: setattr(a, "X", a.X + 0.5), "raw counts"),
        (lambda a: setattr(a, "X", a.X - 2), "raw counts"),
    ],
)
def test_bad_data(tmp_path, mutate, message):
    with pytest.raises(ValueError, match=message):
        describe_data(_write(tmp_path, mutate), None, "batch", "cell_type")


def test_not_anndata_or_mudata(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"neither an \.h5mu"):
        describe_data(tmp_path / "x.csv", None, "batch", "cell_type")
    (tmp_path / "broken.h5mu").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="Could not read"):
        describe_data(tmp_path / "broken.h5mu", None, "batch", "cell_type")


def write_mosaic(path, cite_file):
    """The simulated CITE-seq cells, the first 60 without protein, the last 60 without RNA."""
    source = md.read_h5mu(cite_file)
    names = source.obs_names
    with md.set_options(pull_on_update=False):
        mosaic = md.MuData(
            {"rna": source["rna"][names[:-60]].copy(), "adt": source["adt"][names[60:]].copy()},
            obs=source.obs,
        )
    mosaic.write(path)
    return path


def test_mosaic(tmp_path, cite_file):
    data = describe_data(write_mosaic(tmp_path / "m.h5mu", cite_file), CITE, "batch", "cell_type")
    assert data.mosaic
    mdata = load_data(data)
    assert mdata.n_obs == 240
    assert (mdata["rna"].n_obs, mdata["protein"].n_obs) == (180, 180)
    assert set(mdata["rna"].obs["cell_type"]) <= set(mdata.obs["cell_type"])
