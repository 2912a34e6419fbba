"""Training is reproducible, resumable, and survives odd but valid shapes of input."""

from __future__ import annotations

import warnings

import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp
import scvi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import ModelCheckpoint

from omnivi.model import OmniVI

CITE = {"rna_layer": "rna", "protein_layer": "protein"}


def _fit(mdata: md.MuData, seed: int, **train) -> OmniVI:
    scvi.settings.seed = seed
    data = mdata.copy()
    OmniVI.setup_mudata(data, batch_key="batch", modalities=CITE)
    model = OmniVI(data)
    model.train(enable_progress_bar=False, **train)
    return model


def test_the_same_seed_gives_the_same_latent(synthetic_mdata):
    first = _fit(synthetic_mdata, seed=3, max_epochs=3).get_latent_representation()
    second = _fit(synthetic_mdata, seed=3, max_epochs=3).get_latent_representation()
    other = _fit(synthetic_mdata, seed=4, max_epochs=3).get_latent_representation()
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_training_resumes_from_a_lightning_checkpoint_to_the_same_result(
    synthetic_mdata, tmp_path
):
    straight = _fit(synthetic_mdata, seed=0, max_epochs=4)

    # Lightning checkpoints need scvi-tools' checkpointing on, which also saves model folders
    # into its logging folder
    scvi.settings.logging_dir = tmp_path / "scvi"
    checkpoints = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    _fit(
        synthetic_mdata,
        seed=0,
        max_epochs=2,
        enable_checkpointing=True,
        callbacks=[checkpoints],
    )
    # a new session built as the first (same seed, so the same split of the cells) continues
    # from the checkpoint: weights, optimizer, epoch and random state come from it
    resumed = _fit(synthetic_mdata, seed=0, max_epochs=4, ckpt_path=str(tmp_path / "last.ckpt"))
    np.testing.assert_allclose(
        resumed.get_latent_representation(), straight.get_latent_representation(), atol=1e-5
    )
    assert len(resumed.history["elbo_train"]) == 2  # epochs 3 and 4 only


@st.composite
def small_cite_data(draw) -> md.MuData:
    """Random small CITE-seq counts: shapes, sparsity, batches, cells lacking a modality."""
    n_cells = draw(st.integers(3, 40))
    n_genes = draw(st.integers(1, 12))
    n_proteins = draw(st.integers(1, 6))
    n_batches = draw(st.integers(1, 3))
    sparse = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(n_cells)]

    def counts(n_features: int, rate: float):
        values = rng.poisson(rate, size=(n_cells, n_features)).astype(np.float32)
        return sp.csr_matrix(values) if sparse else values

    import anndata as ad

    rna = ad.AnnData(counts(n_genes, draw(st.sampled_from([0.05, 1.0, 20.0]))))
    protein = ad.AnnData(counts(n_proteins, draw(st.sampled_from([0.5, 50.0]))))
    rna.obs_names = protein.obs_names = names
    rna.var_names = [f"g{i}" for i in range(n_genes)]
    protein.var_names = [f"p{i}" for i in range(n_proteins)]
    lacking = draw(st.sampled_from(["none", "rna", "protein"]))
    if lacking != "none" and n_cells >= 6:  # a third of the cells lack one modality
        cut = n_cells // 3
        if lacking == "rna":
            rna = rna[cut:].copy()
        else:
            protein = protein[cut:].copy()
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": rna, "protein": protein})
    mdata.obs["batch"] = [f"b{i % n_batches}" for i in range(mdata.n_obs)]
    return mdata


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mdata=small_cite_data())
def test_setup_and_a_training_epoch_work_on_random_small_data(mdata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        OmniVI.setup_mudata(mdata, batch_key="batch", modalities=CITE)
        model = OmniVI(mdata, n_latent=3, n_hidden=16)
        model.train(max_epochs=1, batch_size=16, enable_progress_bar=False)
        latent = model.get_latent_representation()
    assert latent.shape == (mdata.n_obs, 3)
    assert np.isfinite(latent).all()


def test_random_small_data_strategy_covers_mosaic_and_sparse():
    """The strategy above does draw the cases it is meant to (not only the easy ones)."""
    seen = set()

    @settings(max_examples=60, deadline=None, database=None)
    @given(mdata=small_cite_data())
    def record(mdata):
        mosaic = mdata["rna"].n_obs < mdata.n_obs or mdata["protein"].n_obs < mdata.n_obs
        seen.add(("mosaic", mosaic))
        seen.add(("sparse", sp.issparse(mdata["rna"].X)))

    record()
    assert seen == {("mosaic", True), ("mosaic", False), ("sparse", True), ("sparse", False)}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
