"""Mosaic MuData (cells measured in some modalities only) and cross-modal imputation.

Simulated data: batch_0 has RNA only, batch_1 protein only, batch_2 both. Real data:
``pbmc_cite_mosaic`` (p1 RNA only, p2 ADT only, p3 and p4 paired).
"""

from __future__ import annotations

import gc
import weakref

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch
from scvi import REGISTRY_KEYS
from sklearn.neighbors import KNeighborsClassifier

from omnivi._constants import MODALITY_MASK_KEY, MODALITY_REGISTRY_KEYS
from omnivi.data._mosaic import (
    MODALITY_MASK_OBSM_KEY,
    PaddedRows,
    modality_presence,
    pad_mosaic,
)
from omnivi.model import OmniCL, OmniVI

CITE = {"rna_layer": "rna", "protein_layer": "protein"}
MOSAIC_CITE = {"rna_layer": "rna", "protein_layer": "adt"}


def _mosaic(synthetic_session) -> md.MuData:
    """batch_0: RNA only; batch_1: protein only; batch_2: both (fresh objects)."""
    batch = synthetic_session.obs["batch"].astype(str)
    rna = synthetic_session["rna"][(batch != "batch_1").to_numpy()].copy()
    protein = synthetic_session["protein"][(batch != "batch_0").to_numpy()].copy()
    mdata = md.MuData({"rna": rna, "protein": protein})
    mdata.obs = mdata.obs.join(synthetic_session.obs[["batch", "cell_type"]])
    return mdata


@pytest.fixture(scope="module")
def mosaic_model(synthetic_session):
    mdata = _mosaic(synthetic_session)
    OmniVI.setup_mudata(mdata, batch_key="batch", labels_key="cell_type", modalities=CITE)
    model = OmniVI(mdata, n_hidden=64, n_latent=8)
    model.train(max_epochs=40, enable_progress_bar=False)
    return model, mdata


# ------------------------------------------------------------------------------- padding
def test_pad_mosaic_keeps_values_and_marks_what_was_measured(
    synthetic_session, snapshot, unchanged
):
    mdata = _mosaic(synthetic_session)
    before = snapshot(mdata)
    padded = pad_mosaic(mdata, {"rna": None, "protein": None})
    unchanged(before, mdata)
    presence = modality_presence(mdata, ["rna", "protein"])
    np.testing.assert_array_equal(padded.obsm[MODALITY_MASK_OBSM_KEY], presence.to_numpy())
    for mod in ("rna", "protein"):
        assert padded[mod].obs_names.equals(mdata.obs_names)
        measured = presence[mod].to_numpy()
        x = padded[mod].X.to_memory().toarray()
        np.testing.assert_array_equal(
            x[measured], mdata[mod][mdata.obs_names[measured]].X.toarray()
        )
        assert (x[~measured] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_padding_copies_no_modality_whatever_its_cell_order(synthetic_session, dtype):
    """Counts of any dtype are read as stored (scvi-tools casts each minibatch to float32)."""
    mdata = _mosaic(synthetic_session)
    for mod in ("rna", "protein"):
        mdata.mod[mod].X = sp.csr_matrix(mdata.mod[mod].X, dtype=dtype)
    padded = pad_mosaic(mdata, {"rna": None, "protein": None})
    presence = modality_presence(mdata, ["rna", "protein"])
    # MuData lists the first modality's cells first: the protein's are in another order
    assert mdata.obs_names[presence["rna"].to_numpy()].equals(mdata["rna"].obs_names)
    assert not mdata.obs_names[presence["protein"].to_numpy()].equals(mdata["protein"].obs_names)
    for mod in ("rna", "protein"):
        assert padded[mod].X.matrix is mdata[mod].X
        assert padded[mod].X.dtype == dtype


def test_integer_counts_train_as_their_float32_twin(synthetic_session):
    """Mosaic counts stored as integers give the latent of the same counts in float32."""
    latents = []
    for dtype in (np.float32, np.int64):
        mdata = _mosaic(synthetic_session)
        for mod in ("rna", "protein"):
            mdata.mod[mod].X = sp.csr_matrix(mdata.mod[mod].X, dtype=dtype)
        OmniVI.setup_mudata(mdata, batch_key="batch", modalities=CITE)
        scvi.settings.seed = 0  # same weights, minibatches and draws
        model = OmniVI(mdata, n_hidden=32, n_latent=4)
        model.train(max_epochs=3, enable_progress_bar=False)
        padded_rna = model.adata_manager.get_from_registry(MODALITY_REGISTRY_KEYS["rna"])
        assert padded_rna.dtype == dtype  # kept as stored, not copied to float32
        latents.append(model.get_latent_representation())
    np.testing.assert_allclose(latents[1], latents[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dense", [False, True])
def test_padding_places_rows_stored_in_another_order(dense):
    rng = np.random.default_rng(0)
    matrix = sp.random(6, 4, density=0.5, format="csr", dtype=np.float32, random_state=rng)
    present = np.array([True, False, True, True, False, True, True, True, False])
    source_rows = np.full(present.size, -1)
    source_rows[present] = rng.permutation(6)  # the source row of each present cell
    padded = PaddedRows(matrix.toarray() if dense else matrix, source_rows)
    expected = np.zeros((present.size, 4), dtype=np.float32)
    expected[present] = matrix.toarray()[source_rows[present]]
    np.testing.assert_array_equal(padded.to_memory().toarray(), expected)
    # minibatches ask for rows in any order, and blocks for slices; columns may be chosen
    asked = np.array([8, 0, 3, 1, 3])
    np.testing.assert_array_equal(padded[asked].toarray(), expected[asked])
    np.testing.assert_array_equal(padded[2:7].toarray(), expected[2:7])
    np.testing.assert_array_equal(padded[asked, 1:3].toarray(), expected[asked][:, 1:3])
    assert padded.shape == expected.shape
    assert padded.dtype == np.float32


def test_the_padded_copy_is_released_with_the_users_object(synthetic_session):
    mdata = _mosaic(synthetic_session)
    OmniVI.setup_mudata(mdata, batch_key="batch", modalities=CITE)
    uuid = mdata.uns["_scvi_uuid"]
    padded = weakref.ref(OmniVI._setup_adata_manager_store[uuid].adata)
    del mdata
    gc.collect()  # frees the user's object (MuData holds reference cycles), dropping the entry
    gc.collect()  # then the padded copy, a cycle itself, that only the entry held
    assert uuid not in OmniVI._setup_adata_manager_store
    assert padded() is None


# ------------------------------------------------------------------------------ training
def test_every_cell_gets_a_latent_and_the_user_object_keeps_its_data(synthetic_session, snapshot):
    mdata = _mosaic(synthetic_session)
    before = snapshot(mdata)
    OmniVI.setup_mudata(mdata, batch_key="batch", modalities=CITE)
    model = OmniVI(mdata, n_hidden=32, n_latent=4)
    model.train(max_epochs=2, enable_progress_bar=False)
    after = snapshot(mdata)
    for mod in ("rna", "protein"):  # the user's matrices and .obs are untouched
        np.testing.assert_array_equal(before["mod"][mod]["X"], after["mod"][mod]["X"])
        assert before["mod"][mod]["shape"] == after["mod"][mod]["shape"]
    assert after["obs_columns"] == before["obs_columns"]
    assert set(after["uns"]) - set(before["uns"]) == {"_scvi_uuid", "_scvi_manager_uuid"}
    latent = model.store_latent()
    assert latent.shape == (mdata.n_obs, 4)
    assert np.isfinite(latent).all()
    assert mdata.obsm["X_omnivi"].shape == (mdata.n_obs, 4)
    for key in ("reconstruction_loss_rna_train", "reconstruction_loss_protein_validation"):
        assert np.isfinite(model.history[key].to_numpy(dtype=float)).all()


def test_the_encoder_never_reads_a_modality_the_cell_lacks(mosaic_model):
    model, _ = mosaic_model
    module = model.module.eval()
    tensors = next(iter(model._make_data_loader(model.adata, batch_size=64)))
    observed = tensors[MODALITY_MASK_KEY]
    lacking_protein = observed[:, model.modalities.index("protein")] == 0
    assert lacking_protein.any()
    garbage = dict(tensors)
    protein_key = MODALITY_REGISTRY_KEYS["protein"]
    garbage[protein_key] = tensors[protein_key] + 50.0 * lacking_protein[:, None]
    with torch.inference_mode():
        clean = module.inference(**module._get_inference_input(tensors))["qzm"]
        noisy = module.inference(**module._get_inference_input(garbage))["qzm"]
    torch.testing.assert_close(clean[lacking_protein], noisy[lacking_protein])


def test_a_missing_modality_adds_nothing_to_the_loss(mosaic_model):
    model, _ = mosaic_model
    module = model.module.eval()
    tensors = next(iter(model._make_data_loader(model.adata, batch_size=64)))
    protein = model.modalities.index("protein")
    rna_only = tensors[MODALITY_MASK_KEY][:, protein] == 0
    subset = {k: v[rna_only] for k, v in tensors.items() if v is not None}
    module.zero_grad()
    _, _, losses = module(subset)
    losses.loss.backward()
    assert losses.extra_metrics["reconstruction_loss_protein"] == 0
    for parameter in module.decoders["protein"].parameters():
        assert parameter.grad is None or torch.all(parameter.grad == 0)
    assert subset[REGISTRY_KEYS.BATCH_KEY].numel() > 0


def test_cells_without_protein_are_decoded_at_the_mean_protein_depth(mosaic_model):
    model, mdata = mosaic_model
    counts = mdata["protein"].X
    depth = np.log1p(np.asarray(counts.sum(axis=1), dtype=np.float64)).mean()
    assert model.module.depth_modalities == ["protein"]
    assert model.module.log_depth_mean.item() == pytest.approx(depth, rel=1e-5)
    module = model.module.eval()
    tensors = next(iter(model._make_data_loader(model.adata, batch_size=64)))
    rna_only = tensors[MODALITY_MASK_KEY][:, model.modalities.index("protein")] == 0
    generative_input = module._get_generative_input(
        tensors, module.inference(**module._get_inference_input(tensors))
    )
    np.testing.assert_allclose(
        generative_input["size"]["protein"][rna_only].numpy(), depth, rtol=1e-5
    )


def test_imputation_predicts_a_missing_modality(mosaic_model):
    model, mdata = mosaic_model
    batch = mdata.obs["batch"].astype(str).to_numpy()
    rna_only = np.flatnonzero(batch == "batch_0")
    imputed = model.get_normalized_expression(modality="protein", indices=rna_only)
    assert imputed.shape == (len(rna_only), mdata["protein"].n_vars)
    assert imputed.index.equals(mdata.obs_names[rna_only])
    assert np.isfinite(imputed.to_numpy()).all()
    assert (imputed.to_numpy() >= 0).all()


def _perturb_batch_columns(decoder: torch.nn.Module, batch: int, n_batch: int) -> None:
    """Add noise to ``decoder``'s weights for one-hot ``batch`` (the last covariate block)."""
    for layers in decoder.px_decoder.fc_layers:
        weight = layers[0].weight
        weight[:, weight.shape[1] - n_batch + batch] += torch.randn(weight.shape[0])


def test_imputation_reads_no_weight_of_a_batch_without_the_modality(mosaic_model):
    model, mdata = mosaic_model
    batches = model.adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY)
    names = list(batches.categorical_mapping)
    measured = model.module.batch_has_modality.cpu().numpy()
    rna, protein = model.modalities.index("rna"), model.modalities.index("protein")
    assert not measured[protein, names.index("batch_0")]  # RNA only
    assert not measured[rna, names.index("batch_1")]  # protein only
    assert measured.sum() == 4
    rna_only = np.flatnonzero(mdata.obs["batch"].astype(str).to_numpy() == "batch_0")
    before = model.get_normalized_expression(modality="protein", indices=rna_only)
    saved = {k: v.clone() for k, v in model.module.state_dict().items()}
    try:
        with torch.no_grad():  # the protein decoder's weights for batch_0 never trained
            _perturb_batch_columns(
                model.module.decoders["protein"], names.index("batch_0"), len(names)
            )
        after = model.get_normalized_expression(modality="protein", indices=rna_only)
    finally:
        model.module.load_state_dict(saved)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), rtol=1e-5)


def test_from_modalities_encodes_from_the_chosen_modalities(mosaic_model):
    model, mdata = mosaic_model
    paired = np.flatnonzero(mdata.obs["batch"].astype(str).to_numpy() == "batch_2")
    from_rna = model.get_normalized_expression(
        modality="protein", indices=paired, from_modalities=["rna"]
    )
    from_both = model.get_normalized_expression(modality="protein", indices=paired)
    assert from_rna.shape == from_both.shape
    assert not np.allclose(from_rna.to_numpy(), from_both.to_numpy())


def test_encoding_cells_from_a_modality_they_lack_is_refused(mosaic_model):
    model, mdata = mosaic_model
    rna_only = np.flatnonzero(mdata.obs["batch"].astype(str).to_numpy() == "batch_0")
    with pytest.raises(ValueError, match=r"have none of \['protein'\].*indices="):
        model.get_latent_representation(indices=rna_only, modality="protein")
    with pytest.raises(ValueError, match=r"have none of \['protein'\]"):
        model.get_normalized_expression(indices=rna_only, from_modalities=["protein"])


def test_mosaic_obs_keys_must_be_global(synthetic_session, snapshot, unchanged):
    mdata = _mosaic(synthetic_session)
    mdata["rna"].obs["sample"] = "s"
    before = snapshot(mdata)
    with pytest.raises(ValueError, match=r"batch_key=\['sample'\].*global mdata.obs"):
        OmniVI.setup_mudata(mdata, batch_key="sample", modalities={**CITE, "batch_key": "rna"})
    unchanged(before, mdata)


def test_omnicl_trains_on_mosaic_data(synthetic_session):
    mdata = _mosaic(synthetic_session)
    OmniCL.setup_mudata(mdata, batch_key="batch", labels_key="cell_type", modalities=CITE)
    model = OmniCL(mdata, n_hidden=64, n_fusion_hidden=32, n_latent=8)
    model.train(max_epochs=3, enable_progress_bar=False)
    latent = model.get_latent_representation()
    assert latent.shape == (mdata.n_obs, 8)
    assert np.isfinite(latent).all()


def test_a_copy_of_mosaic_data_is_not_mistaken_for_the_registered_object(mosaic_model):
    model, mdata = mosaic_model
    assert model._registered_object(mdata) is model.adata_manager.adata
    copy = mdata.copy()
    assert model._registered_object(copy) is copy


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def pbmc_mosaic(real_file):
    """OmniVI on pbmc_cite_mosaic (p1 RNA only, p2 ADT only, p3/p4 paired), 100 epochs."""
    mdata = md.read_h5mu(real_file("pbmc_cite_mosaic.h5mu"))
    OmniVI.setup_mudata(mdata, batch_key="batch", modalities=MOSAIC_CITE)
    model = OmniVI(mdata)
    model.train(max_epochs=100, enable_progress_bar=False)
    return model, mdata


@pytest.mark.real_data
def test_pbmc_mosaic_every_cell_gets_a_latent_and_batches_meet(pbmc_mosaic):
    """p1 (RNA only) and p2 (ADT only) share no modality; the paired p3/p4 bridge them.

    kNN label transfer from one single-modality batch to the other, measured (seed 0):
    p1 -> p2 0.905, p2 -> p1 0.782; asserted > 0.65.
    """
    model, mdata = pbmc_mosaic
    latent = model.get_latent_representation()
    assert latent.shape == (1600, model.module.n_latent)
    assert np.isfinite(latent).all()
    batch = mdata.obs["batch"].astype(str).to_numpy()
    types = mdata.obs["celltype"].astype(str).to_numpy()
    for source, target in (("p1_0", "p2_0"), ("p2_0", "p1_0")):
        knn = KNeighborsClassifier(15).fit(latent[batch == source], types[batch == source])
        accuracy = (knn.predict(latent[batch == target]) == types[batch == target]).mean()
        print(f"\n{source} -> {target}: kNN label transfer {accuracy:.3f}")
        assert accuracy > 0.65


@pytest.mark.real_data
def test_pbmc_mosaic_imputes_protein_from_rna(pbmc_mosaic):
    """Protein of the paired p3 cells, imputed from their RNA alone, against the measurement.

    Median per-protein Pearson correlation (log1p), measured 0.490; asserted > 0.25.
    """
    model, mdata = pbmc_mosaic
    paired = np.flatnonzero(mdata.obs["batch"].astype(str).to_numpy() == "p3_0")
    imputed = model.get_normalized_expression(
        modality="protein", indices=paired, from_modalities=["rna"]
    )
    measured = mdata["adt"][mdata.obs_names[paired]].X.toarray()
    varying = measured.std(axis=0) > 0
    correlations = [
        np.corrcoef(np.log1p(imputed.to_numpy()[:, j]), np.log1p(measured[:, j]))[0, 1]
        for j in np.flatnonzero(varying)
    ]
    print(f"\nmedian per-protein correlation {np.median(correlations):.3f}")
    assert np.median(correlations) > 0.25


def test_atac_from_rna_and_rna_from_atac(synthetic_session):
    """RNA-only cells get accessibility, ATAC-only cells expression, both near the truth.

    The simulated accessibility probability of each region depends on the cell type; the
    imputed probabilities of the RNA-only cells follow it (measured correlation 0.804,
    asserted > 0.6; the paired cells' own reconstruction reaches about 0.82), and the imputed
    expression of the ATAC-only cells follows their hidden log-normalised counts (measured
    0.605, asserted > 0.45).
    """
    rng = np.random.default_rng(0)
    types = synthetic_session.obs["cell_type"].cat.codes.to_numpy()
    probability = rng.uniform(0.02, 0.5, (types.max() + 1, 150))[types]
    accessible = (rng.random(probability.shape) < probability).astype(np.float32)
    batch = synthetic_session.obs["batch"].astype(str).to_numpy()
    atac = ad.AnnData(
        sp.csr_matrix(accessible),
        obs=pd.DataFrame(index=synthetic_session.obs_names),
        var=pd.DataFrame(index=[f"region_{i}" for i in range(150)]),
    )
    rna = synthetic_session["rna"]
    mdata = md.MuData(
        {"rna": rna[batch != "batch_1"].copy(), "atac": atac[batch != "batch_0"].copy()}
    )
    mdata.obs = mdata.obs.join(synthetic_session.obs[["batch"]])
    OmniVI.setup_mudata(
        mdata, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac"}
    )
    model = OmniVI(mdata, n_hidden=64, n_latent=8, atac_region_fraction=1.0)
    # The depth the decoder gives RNA-only cells: fixed from the data before training, never
    # updated in a forward pass, so that every DDP process holds the same value.
    depth = np.log1p(accessible[batch != "batch_0"].sum(axis=1)).mean()
    assert model.module.depth_modalities == ["atac"]
    assert model.module.log_depth_mean.item() == pytest.approx(depth, rel=1e-6)
    model.train(max_epochs=150, enable_progress_bar=False)
    assert model.module.log_depth_mean.item() == pytest.approx(depth, rel=1e-6)
    order = mdata.obs_names.get_indexer(synthetic_session.obs_names)
    rna_only, atac_only = order[batch == "batch_0"], order[batch == "batch_1"]
    imputed_atac = model.get_normalized_expression(modality="atac", indices=rna_only)
    atac_truth = probability[batch == "batch_0"]
    atac_r = np.corrcoef(imputed_atac.to_numpy().ravel(), atac_truth.ravel())[0, 1]
    imputed_rna = model.get_normalized_expression(modality="rna", indices=atac_only)
    counts = np.asarray(rna[batch == "batch_1"].X.todense())
    truth = np.log1p(1e4 * counts / counts.sum(axis=1, keepdims=True))
    rna_r = np.corrcoef(np.log1p(imputed_rna.to_numpy()).ravel(), truth.ravel())[0, 1]
    print(f"\nATAC from RNA r={atac_r:.3f}; RNA from ATAC r={rna_r:.3f}")
    assert atac_r > 0.6
    assert rna_r > 0.45
