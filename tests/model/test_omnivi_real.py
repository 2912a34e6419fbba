"""OmniVI on real data: CITE-seq, multiome, and RNA alone; each in both latent modes.

Quality is measured as the 5-fold cross-validated kNN (k=15) accuracy of the cell-type labels
in the latent, against the same for a random Gaussian embedding of the same shape. Measured
values (scvi seeds 0 and 1, both latent modes, the training settings below: 30 epochs at batch
size 128 for the two BMMC sets, 15 epochs at 512 for MOp) and the thresholds, chosen well below
them but far above chance:

=================  ==========  ======  ==========================================
data               latent      random  asserted
=================  ==========  ======  ==========================================
bmmc_cite_small    0.59-0.62   0.10    latent >= 0.40 and >= random + 0.30
bmmc_multiome      0.47-0.53   0.12    latent >= 0.32 and >= random + 0.20
mop_rna_atac RNA   0.78-0.79   0.35    latent >= 0.60 and >= random + 0.25
=================  ==========  ======  ==========================================
"""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd
import pytest

from omnivi.model import OmniVI

pytestmark = pytest.mark.real_data

LATENT_MODES = ["normal", "deterministic"]
N_LATENT = 20


def _history(model: OmniVI, key: str) -> np.ndarray:
    return model.history[key].to_numpy(dtype=float).ravel()


def _check_quality(model, labels, knn_accuracy, random_embedding_accuracy, minimum, margin, name):
    latent = model.get_latent_representation()
    assert latent.shape == (len(labels), N_LATENT)
    assert np.isfinite(latent).all()
    ours = knn_accuracy(latent, labels)
    chance = random_embedding_accuracy(latent.shape, labels)
    print(f"\n{name}: kNN accuracy latent {ours:.3f}, random {chance:.3f}")
    assert ours >= minimum, f"{name}: kNN accuracy {ours:.3f} < {minimum}"
    assert ours >= chance + margin, f"{name}: {ours:.3f} is not {margin} above random {chance:.3f}"


# ----------------------------------------------------------------------------- CITE-seq
@pytest.fixture(scope="module", params=LATENT_MODES)
def cite(request, real_file):
    mdata = md.read_h5mu(real_file("bmmc_cite_small.h5mu"))
    OmniVI.setup_mudata(
        mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "adt"}
    )
    model = OmniVI(mdata, n_latent=N_LATENT, latent_distribution=request.param)
    model.train(max_epochs=30, batch_size=128, enable_progress_bar=False)
    return model, mdata


def test_cite_training(cite):
    model, _ = cite
    assert model.modalities == ["rna", "protein"]
    assert model.summary_stats.n_batch == 2
    for key in (
        "reconstruction_loss_rna_train",
        "reconstruction_loss_protein_validation",
        "elbo_validation",
    ):
        values = _history(model, key)
        assert len(values) == 30
        assert np.isfinite(values).all()
    # the model learns: the reconstruction of both modalities improves
    for m in ("rna", "protein"):
        values = _history(model, f"reconstruction_loss_{m}_train")
        assert values[-1] < values[0]


def test_cite_latent_separates_cell_types(cite, knn_accuracy, random_embedding_accuracy):
    model, mdata = cite
    _check_quality(
        model,
        mdata.obs["cell_type"].to_numpy(),
        knn_accuracy,
        random_embedding_accuracy,
        minimum=0.40,
        margin=0.30,
        name=f"bmmc_cite ({model.module.latent_distribution})",
    )


def test_cite_outputs(cite):
    model, mdata = cite
    protein = model.get_normalized_expression(modality="protein")
    assert isinstance(protein, pd.DataFrame)
    assert list(protein.columns) == list(mdata["adt"].var_names)
    assert (protein.to_numpy() >= 0).all()
    rna = model.get_normalized_expression(modality="rna", indices=np.arange(50))
    assert list(rna.columns) == list(mdata["rna"].var_names)
    np.testing.assert_allclose(rna.to_numpy().sum(1), 1e4, rtol=1e-3)
    target = mdata.copy()
    model.store_latent(target)
    assert target.obsm["X_omnivi"].shape == (600, N_LATENT)


def test_cite_batch_from_a_modality_obs(cite_mdata):
    """Batch read from the 'rna' modality's own .obs gives the same two batches."""
    OmniVI.setup_mudata(
        cite_mdata,
        batch_key="batch",
        modalities={"rna_layer": "rna", "protein_layer": "adt", "batch_key": "rna"},
    )
    model = OmniVI(cite_mdata)
    assert model.summary_stats.n_batch == 2


# ------------------------------------------------------------------------------ multiome
@pytest.fixture(scope="module", params=LATENT_MODES)
def multiome(request, real_file):
    mdata = md.read_h5mu(real_file("bmmc_multiome_small.h5mu"))
    OmniVI.setup_mudata(
        mdata, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac"}
    )
    model = OmniVI(mdata, n_latent=N_LATENT, latent_distribution=request.param)
    model.train(max_epochs=30, batch_size=128, enable_progress_bar=False)
    return model, mdata


def test_multiome_training(multiome):
    model, _ = multiome
    assert model.modalities == ["rna", "atac"]
    for key in (
        "reconstruction_loss_atac_train",
        "reconstruction_loss_atac_validation",
        "reconstruction_loss_rna_validation",
    ):
        values = _history(model, key)
        assert np.isfinite(values).all()
    atac = _history(model, "reconstruction_loss_atac_validation")
    assert atac[-1] < atac[0]


def test_multiome_latent_separates_cell_types(multiome, knn_accuracy, random_embedding_accuracy):
    model, mdata = multiome
    _check_quality(
        model,
        mdata.obs["cell_type"].to_numpy(),
        knn_accuracy,
        random_embedding_accuracy,
        minimum=0.32,
        margin=0.20,
        name=f"bmmc_multiome ({model.module.latent_distribution})",
    )


def test_multiome_accessibility_estimates(multiome):
    model, mdata = multiome
    accessibility = model.get_accessibility_estimates()
    assert accessibility.shape == (mdata.n_obs, mdata["atac"].n_vars)
    assert list(accessibility.columns) == list(mdata["atac"].var_names)
    assert list(accessibility.index) == list(mdata.obs_names)
    values = accessibility.to_numpy()
    assert np.isfinite(values).all()
    assert ((values >= 0) & (values <= 1)).all()
    # regions observed open more often get higher estimates
    observed = np.asarray((mdata["atac"].X > 0).mean(0)).ravel()
    assert np.corrcoef(observed, values.mean(0))[0, 1] > 0.5
    subset = model.get_accessibility_estimates(indices=[0, 1, 2], return_numpy=True)
    np.testing.assert_allclose(subset, values[:3], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------- RNA alone (MOp)
@pytest.fixture(scope="module", params=LATENT_MODES)
def mop(request, mop_rna_session):
    adata = mop_rna_session.copy()
    OmniVI.setup_anndata(adata, batch_key="sample")
    model = OmniVI(adata, n_latent=N_LATENT, latent_distribution=request.param)
    model.train(max_epochs=15, batch_size=512, enable_progress_bar=False)
    return model, adata


def test_mop_rna_latent_separates_cell_types(mop, knn_accuracy, random_embedding_accuracy):
    model, adata = mop
    assert model.modalities == ["rna"]
    assert model.summary_stats.n_batch == 12
    assert np.isfinite(_history(model, "reconstruction_loss_rna_validation")).all()
    _check_quality(
        model,
        adata.obs["cell_type"].to_numpy(),
        knn_accuracy,
        random_embedding_accuracy,
        minimum=0.60,
        margin=0.25,
        name=f"mop RNA ({model.module.latent_distribution})",
    )


def test_real_bad_input_leaves_data_untouched(multiome_mdata, snapshot, unchanged):
    before = snapshot(multiome_mdata)
    with pytest.raises(KeyError, match=r"no modality 'adt'"):
        OmniVI.setup_mudata(
            multiome_mdata,
            batch_key="batch",
            modalities={"rna_layer": "rna", "protein_layer": "adt"},
        )
    with pytest.raises(KeyError, match=r"Column 'donor' not found in mdata\['atac'\]\.obs"):
        OmniVI.setup_mudata(
            multiome_mdata,
            batch_key="donor",
            modalities={"rna_layer": "rna", "atac_layer": "atac", "batch_key": "atac"},
        )
    unchanged(before, multiome_mdata)
