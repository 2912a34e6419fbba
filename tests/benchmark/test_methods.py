import numpy as np
import pytest

from omnivi.benchmark import METHODS, BenchmarkData, concatenated_pca, describe_data, harmony
from omnivi.benchmark._data import load_data
from omnivi.benchmark._run import epoch_caps, select_methods
from omnivi.benchmark._training import final_slope
from omnivi.tl import batch_mixing_entropy

from .test_data import CITE, write_mosaic


def _data(modalities, mosaic=False):
    return BenchmarkData("x.h5mu", dict(modalities), "batch", "cell_type", mosaic=mosaic)


def _keys(data, methods=None):
    return [m.key for m in select_methods(data, methods)]


def test_methods_follow_the_modalities():
    rna = _keys(_data({"rna": ""}))
    assert "totalvi" not in rna
    assert "multivi" not in rna
    assert "concat_pca" not in rna
    assert {"pca", "harmony_pca", "scvi", "scanvi", "omnivi", "omnicl"} <= set(rna)
    cite = _keys(_data(CITE))
    assert "totalvi" in cite
    assert "multivi" not in cite
    assert "harmony_concat_pca" in cite
    multiome = _keys(_data({"rna": "rna", "atac": "atac"}))
    assert "multivi" in multiome
    assert "totalvi" not in multiome
    mosaic = _keys(_data(CITE, mosaic=True))
    assert set(mosaic) == {
        "padded_pca",
        "harmony_padded_pca",
        "omnivi",
        "omnivi_ae",
        "omnivi_contrastive",
        "omnicl",
    }


def test_run_order_and_added_methods():
    keys = _keys(_data(CITE), ["harmony_pca", "scanvi", "omnivi"])
    # omnivi first (a peer's cap is raised to its epochs), SCVI before SCANVI, the baseline added
    assert keys == ["omnivi", "scvi", "scanvi", "pca", "harmony_pca"]
    assert _keys(_data(CITE, mosaic=True), ["omnivi"]) == ["omnivi", "padded_pca"]


def test_supervised_methods_are_marked():
    assert {k for k, m in METHODS.items() if m.supervised} == {
        "scanvi",
        "omnivi_contrastive",
        "omnicl",
    }


@pytest.mark.parametrize(
    ("keys", "message"),
    [(["tangram"], "Unknown method"), (["totalvi"], "TOTALVI cannot run on this data")],
)
def test_bad_method_choices(keys, message):
    with pytest.raises(ValueError, match=message):
        select_methods(_data({"rna": ""}), keys)


def test_epoch_caps():
    assert epoch_caps(None) == {}
    every = epoch_caps(5)
    assert every["multivi"] == 5
    assert every["omnicl"] == 5
    assert "pca" not in every
    assert epoch_caps({"multivi": 300}) == {"multivi": 300}
    with pytest.raises(ValueError, match="unknown method"):
        epoch_caps({"multi-vi": 3})


def test_final_slope():
    assert final_slope([1.0, 2.0]) is None
    flat = final_slope([5.0] * 50)
    assert flat == pytest.approx(0.0, abs=1e-12)
    curve = np.linspace(200, 100, 100)  # falls by 100/99 per epoch
    tail = curve[-10:]  # the last tenth
    assert final_slope(curve) == pytest.approx(-(100 / 99) / tail.mean(), rel=1e-6)


def test_concatenation_weighs_modalities_equally(cite_file):
    mdata = load_data(describe_data(cite_file, CITE, "batch", "cell_type"))
    joint = concatenated_pca(mdata)
    n_rna = min(30, 80 - 1)
    rna, protein = joint[:, :n_rna], joint[:, n_rna:]
    assert protein.shape[1] == 11  # 12 proteins: at most 11 components
    assert rna.var(axis=0).sum() == pytest.approx(1.0, rel=1e-4)
    assert protein.var(axis=0).sum() == pytest.approx(1.0, rel=1e-4)


def test_padded_concatenation_of_mosaic_data(tmp_path, cite_file):
    data = describe_data(write_mosaic(tmp_path / "m.h5mu", cite_file), CITE, "batch", "cell_type")
    mdata = load_data(data)
    joint = concatenated_pca(mdata)
    without_rna = ~mdata.obs_names.isin(mdata["rna"].obs_names)
    assert without_rna.sum() == 60
    assert np.all(joint[without_rna, :30] == 0)
    assert np.any(joint[without_rna, 30:] != 0)


def test_harmony_mixes_batches(cite_file):
    mdata = load_data(describe_data(cite_file, CITE, "batch", "cell_type"))
    joint = concatenated_pca(mdata)
    batches = mdata.obs["batch"].to_numpy()
    corrected = harmony(joint, batches)
    assert corrected.shape == joint.shape
    assert batch_mixing_entropy(corrected, batches) > batch_mixing_entropy(joint, batches) + 0.05
