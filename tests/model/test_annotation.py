"""Contrastive training, classifier, novelty and cell-type representations on simulated data.

Both ways of using the contrastive objectives are covered: ``OmniVI(contrastive_weight=...)``
and the encoder-only ``OmniCL``.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from omnivi.model import OmniCL, OmniVI
from omnivi.model._label_geometry import inverse_frequency_weights

CITE = {"rna_layer": "rna", "protein_layer": "protein"}
TERMS = ("cell_type", "batch", "centroid", "total")


def _rna(mdata) -> ad.AnnData:
    """A fresh AnnData of the simulated RNA, as a user would build it (no scvi set-up)."""
    rna = mdata["rna"]
    return ad.AnnData(
        rna.X.copy(),
        obs=mdata.obs[["batch", "cell_type"]].copy(),
        var=pd.DataFrame(index=rna.var_names.copy()),
    )


@pytest.fixture(scope="module")
def omnicl(synthetic_session):
    adata = _rna(synthetic_session)
    OmniCL.setup_anndata(adata, batch_key="batch", labels_key="cell_type")
    model = OmniCL(adata, n_hidden=256, n_fusion_hidden=128, n_latent=32)
    model.train(max_epochs=15, enable_progress_bar=False)
    return model, adata


@pytest.fixture(scope="module")
def contrastive_omnivi(synthetic_session):
    mdata = synthetic_session.copy()
    OmniVI.setup_mudata(mdata, batch_key="batch", labels_key="cell_type", modalities=CITE)
    model = OmniVI(mdata, n_hidden=64, n_latent=8, contrastive_weight=20.0)
    model.train(max_epochs=15, enable_progress_bar=False)
    return model, mdata


@pytest.mark.parametrize("which", ["omnicl", "contrastive_omnivi"])
def test_each_contrastive_term_is_logged_for_train_and_validation(which, request):
    model, _ = request.getfixturevalue(which)
    for term in TERMS:
        for split in ("train", "validation"):
            values = model.history[f"contrastive_{term}_{split}"].to_numpy(dtype=float)
            assert np.isfinite(values).all()
    total = model.history["contrastive_total_train"].to_numpy(dtype=float).ravel()
    assert total[-1] < total[0]


@pytest.mark.parametrize("which", ["omnicl", "contrastive_omnivi"])
def test_predict_labels_and_probabilities(which, request):
    model, data = request.getfixturevalue(which)
    truth = data.obs["cell_type"].to_numpy()
    predicted = model.predict()
    assert predicted.shape == (data.n_obs,)
    assert (predicted == truth).mean() > 0.9  # the simulated types are well separated
    soft = model.predict(soft=True)
    assert list(soft.columns) == list(model.cell_types)
    assert soft.index.equals(data.obs_names)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(soft.columns[soft.to_numpy().argmax(1)], predicted)


def test_omnicl_history_has_its_losses_and_no_elbo(omnicl):
    from omnivi import pl

    model, _ = omnicl
    assert not [key for key in model.history if key.startswith(("elbo", "kl_", "reconstruction"))]
    for split in ("train", "validation"):
        np.testing.assert_allclose(
            model.history[f"{split}_loss"].to_numpy(dtype=float),
            model.history[f"contrastive_total_{split}"].to_numpy(dtype=float),
            rtol=1e-4,
        )
    figure = pl.loss_curves(model.history)
    assert [ax.get_title() for ax in figure.axes] == ["contrastive_total"]


def test_omnicl_temperature_stays_in_range(omnicl):
    model, _ = omnicl
    temperature = model.history["temperature_train"].to_numpy(dtype=float)
    assert ((temperature >= 0.1) & (temperature <= 2.0)).all()


@pytest.mark.parametrize("method", ["centroid", "median", "medoid"])
def test_cell_type_representations(omnicl, method):
    model, adata = omnicl
    vectors = model.get_cell_type_representations(method)
    assert sorted(vectors.columns) == sorted(adata.obs["cell_type"].unique())
    assert vectors.shape[0] == 32
    embedding = model.get_latent_representation()
    rare = embedding[adata.obs["cell_type"].to_numpy() == "rare"]
    if method == "centroid":
        np.testing.assert_allclose(vectors["rare"], rare.mean(0), rtol=1e-5, atol=1e-6)
    elif method == "medoid":  # an actual cell of that type
        assert np.isclose(rare, vectors["rare"].to_numpy()).all(axis=1).any()


def test_unknown_representation_method(omnicl):
    with pytest.raises(ValueError, match="centroid"):
        omnicl[0].get_cell_type_representations("mode")


def test_query_with_unseen_labels_gets_predictions_and_novelty(omnicl, synthetic_session):
    """A query whose label column names a type the model never saw; only .obs columns asked
    for are written."""
    model, _ = omnicl
    query = _rna(synthetic_session)
    query.obs["cell_type"] = query.obs["cell_type"].cat.add_categories("never_seen")
    query.obs.loc[query.obs_names[:5], "cell_type"] = "never_seen"
    x_before = query.X.copy()
    novelty = model.get_novelty_scores(query)
    assert list(novelty.columns) == ["novelty_score", "is_novel", "predicted_label"]
    assert novelty.index.equals(query.obs_names)
    assert set(novelty["predicted_label"]) <= set(model.cell_types)
    assert not any(c.startswith("omnivi_") for c in query.obs)
    model.get_novelty_scores(query, write_to_obs=True)
    assert {"omnivi_novelty_score", "omnivi_is_novel", "omnivi_predicted_label"} <= set(query.obs)
    assert (query.X != x_before).nnz == 0


def test_query_without_the_label_column_is_refused_with_a_fix(omnicl, synthetic_session):
    query = _rna(synthetic_session)
    query.obs = query.obs[["batch"]]
    with pytest.raises(KeyError, match=r"query.obs\['cell_type'\] = 'unknown'"):
        omnicl[0].predict(query)


def _left_out_type_model(adata: ad.AnnData, in_reference: np.ndarray) -> OmniCL:
    """OmniCL trained on the cells ``in_reference``, less those of ``type_3``."""
    reference = adata[in_reference & (adata.obs["cell_type"] != "type_3").to_numpy()].copy()
    reference.obs["cell_type"] = reference.obs["cell_type"].cat.remove_unused_categories()
    OmniCL.setup_anndata(reference, batch_key="batch", labels_key="cell_type")
    model = OmniCL(reference, n_hidden=256, n_fusion_hidden=128, n_latent=32)
    model.train(max_epochs=15, enable_progress_bar=False)
    return model


def test_mixing_novelty_warns_when_batches_do_not_mix(synthetic_session):
    """Train on two batches without one type; score the third batch, which has every type.

    The simulation's batch effects are so strong that in the input space even the two
    training batches' cells of one type do not mix (most score above 0.8 against each other):
    the score still ranks the left-out type first, but no threshold keeps known cells at 5%,
    so none is called novel, and a warning says why.
    """
    adata = _rna(synthetic_session)
    query_batch = (adata.obs["batch"] == adata.obs["batch"].cat.categories[0]).to_numpy()
    model = _left_out_type_model(adata, ~query_batch)
    query = adata[query_batch].copy()
    held_out = (query.obs["cell_type"] == "type_3").to_numpy()
    with pytest.warns(UserWarning, match="cells of known types do not mix"):
        novelty = model.get_novelty_scores(query, method="mixing")
    assert roc_auc_score(held_out, novelty["novelty_score"]) > 0.9
    assert novelty.loc[~held_out, "is_novel"].mean() <= 0.05


def test_novelty_calls_flag_a_type_left_out_of_training(synthetic_session):
    """Train on half the cells without one type; score the other half, which has every type."""
    adata = _rna(synthetic_session)
    in_reference = np.random.default_rng(0).random(adata.n_obs) < 0.5
    model = _left_out_type_model(adata, in_reference)
    query = adata[~in_reference].copy()
    held_out = (query.obs["cell_type"] == "type_3").to_numpy()
    for method in ("mixing", "distance"):
        novelty = model.get_novelty_scores(query, method=method)
        # Both thresholds target 5% of known-type cells; the distance's is set on the ~20
        # validation cells of this small simulation, so its rate varies more.
        assert novelty.loc[~held_out, "is_novel"].mean() < 0.25
        if method == "mixing":  # the distance in the embedding is the weaker score
            assert roc_auc_score(held_out, novelty["novelty_score"]) > 0.9
            assert novelty.loc[held_out, "is_novel"].mean() > 0.5
        summary = model.novelty_summary(novelty)
        assert summary["n_cells"] == query.n_obs
        assert summary["n_novel"] == int(novelty["is_novel"].sum())
        assert summary["method"] == method
        assert summary["threshold"] == novelty.attrs["threshold"]
        # the distance in the learned embedding does not see this type (AUROC about 0.5)
        assert summary["contains_novel_cells"] == (method == "mixing")
    with pytest.raises(ValueError, match="mixing"):
        model.get_novelty_scores(query, method="entropy")


def test_unlabeled_cells_take_part_in_reconstruction_only(synthetic_session):
    mdata = synthetic_session.copy()
    labels = mdata.obs["cell_type"].astype(str).to_numpy()
    labels[::3] = "unknown"
    mdata.obs["partial"] = pd.Categorical(labels)
    OmniVI.setup_mudata(
        mdata,
        batch_key="batch",
        labels_key="partial",
        unlabeled_category="unknown",
        modalities=CITE,
    )
    model = OmniVI(mdata, n_hidden=32, n_latent=8, contrastive_weight=10.0)
    assert "unknown" not in model.cell_types
    model.train(max_epochs=3, enable_progress_bar=False)
    assert "unknown" not in set(model.predict())
    assert "unknown" not in model.predict(soft=True).columns
    assert "unknown" not in model.get_cell_type_representations().columns
    statistics = model.trainer.lightning_module.loss_kwargs  # what every step was given
    weights = statistics["class_weights"].cpu().numpy()
    assert weights[model.unlabeled_code] == 0.0
    # the class weights and centroid geometry come from the training cells alone
    codes = model._registered_codes()
    train, validation = model.train_indices, model.validation_indices
    np.testing.assert_allclose(
        weights, inverse_frequency_weights(codes[train], len(weights), model.unlabeled_code)
    )
    assert not np.allclose(
        weights, inverse_frequency_weights(codes, len(weights), model.unlabeled_code)
    )
    assert len(validation) > 0
    assert statistics["reference_distances"].shape == (len(weights), len(weights))


def test_contrastive_weight_needs_labels(synthetic_mdata):
    OmniVI.setup_mudata(synthetic_mdata, batch_key="batch", modalities=CITE)
    with pytest.raises(ValueError, match="labels_key"):
        OmniVI(synthetic_mdata, contrastive_weight=1.0)
    OmniCL.setup_mudata(synthetic_mdata, batch_key="batch", modalities=CITE)
    with pytest.raises(ValueError, match="labels_key"):
        OmniCL(synthetic_mdata)


def test_unlabeled_category_without_labels_key(synthetic_rna):
    with pytest.raises(ValueError, match="labels_key"):
        OmniCL.setup_anndata(synthetic_rna, unlabeled_category="unknown")


def test_annotation_of_an_unsupervised_model_is_refused(synthetic_mdata):
    OmniVI.setup_mudata(synthetic_mdata, batch_key="batch", modalities=CITE)
    model = OmniVI(synthetic_mdata, n_hidden=32, n_latent=4)
    model.train(max_epochs=1, enable_progress_bar=False)
    assert model.module.classifier is None
    with pytest.raises(ValueError, match="labels_key"):
        model.predict()


def test_omnicl_save_load_round_trip(omnicl, tmp_path):
    model, adata = omnicl
    model.save(tmp_path / "model", save_anndata=False)
    loaded = OmniCL.load(tmp_path / "model", adata=adata)
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), model.get_latent_representation()
    )
    np.testing.assert_array_equal(loaded.predict(), model.predict())
    assert loaded.novelty_thresholds_ == model.novelty_thresholds_


def test_omnicl_refuses_negative_input(synthetic_rna):
    synthetic_rna.X = synthetic_rna.X.toarray() - 1.0
    OmniCL.setup_anndata(synthetic_rna, batch_key="batch", labels_key="cell_type")
    with pytest.raises(ValueError, match=r"negative values.*input_transform='identity'"):
        OmniCL(synthetic_rna)


def test_omnicl_stores_the_unit_length_latent_its_classifier_reads(omnicl):
    model, adata = omnicl
    stored = model.store_latent(adata)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, rtol=1e-5)
    raw = model.get_latent_representation(adata, normalize=False)
    np.testing.assert_allclose(stored, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_the_classifier_trains_apart_from_the_module(omnicl):
    """It takes no part in the module's training (so DDP finds no unused parameter)."""
    model, _ = omnicl
    assert not any(p.requires_grad for p in model.module.classifier.parameters())
    assert any(p.requires_grad for p in model.module.encoders.parameters())
