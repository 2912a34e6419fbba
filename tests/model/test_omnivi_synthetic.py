"""OmniVI on simulated CITE-seq data: training, outputs, save/load, and bad input."""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scvi.train import AdversarialTrainingPlan

from omnivi.data import simulate_cite_seq
from omnivi.model import OmniTrainingPlan, OmniVI

CITE = {"rna_layer": "rna", "protein_layer": "protein"}
N_LATENT = 8


def fit(model: OmniVI, epochs: int = 2, **kwargs) -> OmniVI:
    model.train(max_epochs=epochs, enable_progress_bar=False, **kwargs)
    return model


def history(model: OmniVI, key: str) -> np.ndarray:
    """One column of ``model.history`` as floats (scvi-tools stores them as objects)."""
    return model.history[key].to_numpy(dtype=float).ravel()


def cite_model(mdata, batch_key="batch", **model_kwargs) -> OmniVI:
    OmniVI.setup_mudata(mdata, batch_key=batch_key, modalities=CITE)
    model_kwargs.setdefault("n_latent", N_LATENT)
    model_kwargs.setdefault("n_hidden", 64)
    return OmniVI(mdata, **model_kwargs)


def log1p_normalised(x) -> np.ndarray:
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    return np.log1p(x / x.sum(1, keepdims=True) * 1e4).astype(np.float32)


def with_atac(mdata: md.MuData, n_regions: int = 150, seed: int = 0) -> md.MuData:
    """Add a binary-ish 'atac' modality whose accessibility depends on cell type."""
    rng = np.random.default_rng(seed)
    types = mdata.obs["cell_type"].cat.codes.to_numpy()
    p_type = rng.uniform(0.02, 0.4, (types.max() + 1, n_regions))
    counts = (rng.random((mdata.n_obs, n_regions)) < p_type[types]) * rng.integers(
        1, 3, (mdata.n_obs, n_regions)
    )
    atac = ad.AnnData(
        sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame(index=mdata.obs_names),
        var=pd.DataFrame(index=[f"region_{i}" for i in range(n_regions)]),
    )
    out = md.MuData({"rna": mdata["rna"].copy(), "protein": mdata["protein"].copy(), "atac": atac})
    out.obs = out.obs.join(mdata.obs[["batch", "cell_type"]])
    return out


# ------------------------------------------------------------------ shared trained model
@pytest.fixture(scope="module")
def trained(synthetic_session):
    """A VAE trained on RNA + protein for 3 epochs, with modality dropout; shared, read-only."""
    mdata = synthetic_session.copy()
    model = fit(cite_model(mdata, modality_dropout=0.3), epochs=3)
    return model, mdata


# ------------------------------------------------------------------------- training
HISTORY_KEYS = [
    "reconstruction_loss_rna_train",
    "reconstruction_loss_rna_validation",
    "reconstruction_loss_protein_train",
    "reconstruction_loss_protein_validation",
    "elbo_validation",
    "elbo_train",
]


@pytest.mark.parametrize("latent_distribution", ["normal", "deterministic"])
def test_train_rna_protein(synthetic_mdata, latent_distribution):
    model = fit(cite_model(synthetic_mdata, latent_distribution=latent_distribution), epochs=4)
    assert model.is_trained_
    assert model.modalities == ["rna", "protein"]
    for key in HISTORY_KEYS:
        assert key in model.history, key
        values = history(model, key)
        assert len(values) == 4
        assert np.isfinite(values).all()
    assert not any("atac" in key for key in model.history)
    rna = history(model, "reconstruction_loss_rna_train")
    assert rna[-1] < rna[0]  # learning happens
    latent = model.get_latent_representation()
    assert latent.shape == (synthetic_mdata.n_obs, N_LATENT)
    assert np.isfinite(latent).all()
    mean, var = model.get_latent_representation(return_dist=True)
    np.testing.assert_allclose(mean, latent, rtol=1e-5, atol=1e-6)
    if latent_distribution == "deterministic":
        assert np.count_nonzero(var) == 0
        np.testing.assert_array_equal(history(model, "kl_local_train"), 0)
        # no posterior to sample from: give_mean=False returns the mean
        np.testing.assert_allclose(
            model.get_latent_representation(give_mean=False), latent, atol=1e-6
        )
    else:
        assert (var > 0).all()
        sample = model.get_latent_representation(give_mean=False)
        assert sample.shape == latent.shape
        assert not np.allclose(sample, latent)


@pytest.mark.parametrize("latent_distribution", ["normal", "deterministic"])
def test_train_rna_only_with_setup_anndata(synthetic_rna, latent_distribution):
    OmniVI.setup_anndata(synthetic_rna, batch_key="batch", labels_key="cell_type")
    model = fit(
        OmniVI(synthetic_rna, n_latent=N_LATENT, latent_distribution=latent_distribution), epochs=3
    )
    assert model.modalities == ["rna"]
    assert model.summary_stats.n_batch == 3
    for key in (
        "reconstruction_loss_rna_train",
        "reconstruction_loss_rna_validation",
        "elbo_validation",
    ):
        assert key in model.history
    assert "reconstruction_loss_protein_train" not in model.history
    latent = model.get_latent_representation()
    assert latent.shape == (synthetic_rna.n_obs, N_LATENT)
    # one modality: the single-modality latent is the joint latent, with no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        np.testing.assert_allclose(
            model.get_latent_representation(modality="rna"), latent, atol=1e-6
        )
    expression = model.get_normalized_expression()
    assert list(expression.columns) == list(synthetic_rna.var_names)
    assert (expression.to_numpy() >= 0).all()


def test_train_rna_only_from_layer(synthetic_rna):
    synthetic_rna.layers["counts"] = synthetic_rna.X.copy()
    synthetic_rna.X = sp.csr_matrix(log1p_normalised(synthetic_rna.X))
    OmniVI.setup_anndata(synthetic_rna, layer="counts", batch_key="batch")
    model = fit(OmniVI(synthetic_rna, n_latent=N_LATENT))
    assert np.isfinite(model.get_latent_representation()).all()


@pytest.mark.parametrize("gene_likelihood", ["nb", "zinb", "normal"])
def test_gene_likelihoods(synthetic_mdata, gene_likelihood):
    rna_layer = None
    if gene_likelihood == "normal":
        synthetic_mdata["rna"].layers["lognorm"] = log1p_normalised(synthetic_mdata["rna"].X)
        rna_layer = "lognorm"
    OmniVI.setup_mudata(synthetic_mdata, rna_layer=rna_layer, batch_key="batch", modalities=CITE)
    model = fit(OmniVI(synthetic_mdata, n_latent=N_LATENT, gene_likelihood=gene_likelihood))
    assert model.module.likelihoods["rna"] == gene_likelihood
    assert np.isfinite(history(model, "reconstruction_loss_rna_validation")).all()
    assert np.isfinite(model.get_latent_representation()).all()
    expression = model.get_normalized_expression(modality="rna")
    assert expression.shape == (synthetic_mdata.n_obs, synthetic_mdata["rna"].n_vars)
    assert np.isfinite(expression.to_numpy()).all()
    if gene_likelihood != "normal":
        assert (expression.to_numpy() >= 0).all()


@pytest.mark.parametrize("protein_likelihood", ["nbmixture", "nb", "normal"])
def test_protein_likelihoods(synthetic_mdata, protein_likelihood):
    protein_layer = None
    if protein_likelihood == "normal":
        synthetic_mdata["protein"].layers["log1p"] = np.log1p(
            synthetic_mdata["protein"].X.toarray()
        )
        protein_layer = "log1p"
    OmniVI.setup_mudata(
        synthetic_mdata, protein_layer=protein_layer, batch_key="batch", modalities=CITE
    )
    model = fit(OmniVI(synthetic_mdata, n_latent=N_LATENT, protein_likelihood=protein_likelihood))
    assert model.module.likelihoods["protein"] == protein_likelihood
    assert np.isfinite(history(model, "reconstruction_loss_protein_validation")).all()
    protein = model.get_normalized_expression(modality="protein")
    assert list(protein.columns) == list(synthetic_mdata["protein"].var_names)
    assert np.isfinite(protein.to_numpy()).all()
    if protein_likelihood != "normal":
        assert (protein.to_numpy() >= 0).all()


def test_rna_protein_atac(synthetic_session):
    mdata = with_atac(synthetic_session)
    OmniVI.setup_mudata(
        mdata,
        batch_key="batch",
        modalities={"rna_layer": "rna", "protein_layer": "protein", "atac_layer": "atac"},
    )
    model = fit(OmniVI(mdata, n_latent=N_LATENT, modality_weights={"atac": 0.5}), epochs=3)
    assert model.modalities == ["rna", "protein", "atac"]
    assert "reconstruction_loss_atac_validation" in model.history
    assert model.module.modality_weights == {"rna": 1.0, "protein": 1.0, "atac": 0.5}
    accessibility = model.get_accessibility_estimates()
    assert list(accessibility.columns) == list(mdata["atac"].var_names)
    assert list(accessibility.index) == list(mdata.obs_names)
    values = accessibility.to_numpy()
    assert ((values >= 0) & (values <= 1)).all()

    # a few regions by name, and a sparse result above a threshold, built batch by batch
    regions = list(mdata["atac"].var_names[[5, 1]])
    chosen = model.get_accessibility_estimates(regions=regions, batch_size=7)
    np.testing.assert_allclose(chosen.to_numpy(), values[:, [5, 1]], rtol=1e-5)
    cut = float(np.median(values))
    sparse_result = model.get_accessibility_estimates(threshold=cut, batch_size=7)
    assert isinstance(sparse_result.dtypes.iloc[0], pd.SparseDtype)
    expected = np.where(values >= cut, values, 0)
    np.testing.assert_allclose(sparse_result.sparse.to_dense().to_numpy(), expected, rtol=1e-5)
    matrix = model.get_accessibility_estimates(threshold=cut, return_numpy=True)
    assert sp.issparse(matrix)
    assert matrix.nnz == int((values >= cut).sum())
    with pytest.raises(KeyError, match="no feature"):
        model.get_accessibility_estimates(regions=["not a region"])


def test_early_stopping(synthetic_mdata):
    model = cite_model(synthetic_mdata)
    # An improvement of 1e6 is never reached: training stops after `patience` epochs.
    fit(
        model,
        epochs=20,
        early_stopping=True,
        early_stopping_patience=1,
        early_stopping_min_delta=1e6,
    )
    assert model.is_trained_
    assert len(model.history["elbo_validation"]) < 20

    plain = fit(cite_model(synthetic_mdata.copy()), epochs=3, early_stopping=True)
    assert len(plain.history["elbo_validation"]) == 3


def _final_lr(model: OmniVI) -> float:
    return model.trainer.optimizers[0].param_groups[0]["lr"]


def test_learning_rate_falls_when_the_validation_loss_plateaus(synthetic_mdata):
    model = cite_model(synthetic_mdata)
    # An improvement of 1e6 never comes: after the first epoch, every second epoch is a
    # plateau of `lr_patience=1` epochs, and the rate is multiplied by 0.6.
    fit(model, epochs=6, plan_kwargs={"lr_patience": 1, "lr_threshold": 1e6})
    assert model.trainer.lightning_module.reduce_lr_on_plateau
    assert _final_lr(model) == pytest.approx(4e-3 * 0.6**2)


@pytest.mark.parametrize(
    "options",
    [
        {"reduce_lr_on_plateau": False},
        {"train_size": 1.0},  # no validation cells
        {"check_val_every_n_epoch": 2},
    ],
)
def test_learning_rate_stays_without_a_validation_loss_every_epoch(synthetic_mdata, options):
    model = cite_model(synthetic_mdata)
    fit(model, epochs=6, plan_kwargs={"lr_patience": 1, "lr_threshold": 1e6}, **options)
    assert not model.trainer.lightning_module.reduce_lr_on_plateau
    assert _final_lr(model) == 4e-3


def test_adversarial_batch_mixing(synthetic_mdata):
    model = cite_model(synthetic_mdata)
    fit(model, epochs=3, adversarial_batch_mixing=True)
    assert issubclass(model._training_plan_cls, AdversarialTrainingPlan)
    plan = model.trainer.lightning_module
    assert isinstance(plan, AdversarialTrainingPlan)
    assert isinstance(plan.adversarial_classifier, torch.nn.Module)
    assert np.isfinite(history(model, "elbo_validation")).all()
    assert np.isfinite(model.get_latent_representation()).all()
    # a later plain training goes back to the default plan
    fit(model, epochs=1)
    assert model._training_plan_cls is OmniTrainingPlan
    assert not isinstance(model.trainer.lightning_module, AdversarialTrainingPlan)


def _training_flags(model: OmniVI) -> list[bool]:
    """Record ``module.training`` at every forward pass of the fusion encoder."""
    flags: list[bool] = []
    model.module.fusion.register_forward_pre_hook(
        lambda module, args: flags.append(module.training)
    )
    return flags


def test_second_train_call_trains_in_training_mode(synthetic_mdata):
    """Continuing training must run its training steps in training mode.

    Training mode is what makes the VAE sample its latent, dropout and batch norm act, and
    modality dropout and ATAC region subsampling happen. After a first ``train()`` the module
    is left in eval mode; a second ``train()`` (continued training, or a query model after
    ``load_query_data``) must switch it back.
    """
    model = cite_model(synthetic_mdata)
    flags = _training_flags(model)
    fit(model, epochs=1)
    assert any(flags), "first training never ran in training mode"
    assert not model.module.training  # outputs are computed in eval mode afterwards
    flags.clear()
    fit(model, epochs=1)
    assert flags
    assert any(flags), "the second train() call ran every training step in eval mode"


def test_reference_mapping_with_a_new_batch(synthetic_session):
    reference = synthetic_session[synthetic_session.obs["batch"] != "batch_2"].copy()
    query = synthetic_session[synthetic_session.obs["batch"] == "batch_2"].copy()
    OmniVI.setup_mudata(reference, batch_key="batch", modalities=CITE)
    model = fit(OmniVI(reference, n_latent=N_LATENT, encode_covariates=True))
    query_model = OmniVI.load_query_data(query, model)
    assert query_model.summary_stats.n_batch == 3
    fit(query_model, epochs=2, plan_kwargs={"weight_decay": 0.0})
    latent = query_model.get_latent_representation()
    assert latent.shape == (query.n_obs, N_LATENT)
    assert np.isfinite(latent).all()


def test_plan_kwargs_and_custom_optimizer(synthetic_mdata):
    model = cite_model(synthetic_mdata)
    fit(model, epochs=2, lr=5e-3, plan_kwargs={"n_epochs_kl_warmup": 1, "weight_decay": 0.0})
    assert model.trainer.lightning_module.lr == 5e-3
    model2 = fit(cite_model(synthetic_mdata.copy()), epochs=2, plan_kwargs={"optimizer": "AdamW"})
    assert np.isfinite(model2.get_latent_representation()).all()


# ------------------------------------------------------------------------- outputs
def test_store_latent(trained):
    model, _ = trained
    target = model.adata.copy()
    latent = model.store_latent(target)
    assert target.obsm["X_omnivi"].shape == (target.n_obs, N_LATENT)
    np.testing.assert_allclose(target.obsm["X_omnivi"], latent)
    np.testing.assert_allclose(latent, model.get_latent_representation(), rtol=1e-5, atol=1e-6)
    model.store_latent(target, key="X_other")
    assert "X_other" in target.obsm


def test_store_latent_on_training_data(synthetic_mdata):
    model = fit(cite_model(synthetic_mdata))
    model.store_latent()
    assert synthetic_mdata.obsm["X_omnivi"].shape == (synthetic_mdata.n_obs, N_LATENT)
    np.testing.assert_allclose(
        synthetic_mdata.obsm["X_omnivi"], model.get_latent_representation(), rtol=1e-5, atol=1e-6
    )


def test_latent_on_a_fresh_copy_of_the_data(trained):
    model, _ = trained
    fresh = simulate_cite_seq(n_cells=600, n_genes=200, n_proteins=20, seed=0)
    np.testing.assert_allclose(
        model.get_latent_representation(fresh),
        model.get_latent_representation(),
        rtol=1e-4,
        atol=1e-5,
    )


def test_latent_indices(trained):
    model, _ = trained
    full = model.get_latent_representation()
    part = model.get_latent_representation(indices=[10, 3, 5])
    np.testing.assert_allclose(part, full[[10, 3, 5]], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("modality", ["rna", "protein"])
def test_normalized_expression(trained, modality):
    model, mdata = trained
    values = model.get_normalized_expression(modality=modality)
    assert isinstance(values, pd.DataFrame)
    assert list(values.columns) == list(mdata[modality].var_names)
    assert list(values.index) == list(mdata.obs_names)
    assert np.isfinite(values.to_numpy()).all()
    assert (values.to_numpy() >= 0).all()
    array = model.get_normalized_expression(modality=modality, return_numpy=True)
    assert isinstance(array, np.ndarray)
    np.testing.assert_allclose(array, values.to_numpy(), rtol=1e-5)
    subset = model.get_normalized_expression(modality=modality, indices=[7, 2])
    assert list(subset.index) == [mdata.obs_names[7], mdata.obs_names[2]]
    np.testing.assert_allclose(subset.to_numpy(), values.to_numpy()[[7, 2]], rtol=1e-4)


def test_normalized_expression_library_size(trained):
    model, mdata = trained
    scaled = model.get_normalized_expression(library_size=1e4).to_numpy()
    np.testing.assert_allclose(scaled.sum(1), 1e4, rtol=1e-3)
    observed = model.get_normalized_expression(library_size=None).to_numpy()
    library = np.asarray(mdata["rna"].X.sum(1)).ravel()
    np.testing.assert_allclose(observed.sum(1), library, rtol=1e-3)


def test_outputs_reject_unknown_modality(trained):
    model, _ = trained
    with pytest.raises(ValueError, match=r"Modality 'atac' is not part of this model"):
        model.get_normalized_expression(modality="atac")
    with pytest.raises(ValueError, match=r"Modality 'atac' is not part of this model"):
        model.get_accessibility_estimates()
    with pytest.raises(ValueError, match=r"not part of this model"):
        model.get_latent_representation(modality="adt")


def test_single_modality_latent_with_modality_dropout(trained):
    model, mdata = trained
    joint = model.get_latent_representation()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_rna = model.get_latent_representation(modality="rna")
        from_protein = model.get_latent_representation(modality="protein")
    assert not [w for w in caught if "modality_dropout" in str(w.message)]
    for latent in (from_rna, from_protein):
        assert latent.shape == (mdata.n_obs, N_LATENT)
        assert np.isfinite(latent).all()
        assert not np.allclose(latent, joint)
    assert not np.allclose(from_rna, from_protein)


def test_single_modality_latent_warns_without_modality_dropout(synthetic_mdata):
    model = fit(cite_model(synthetic_mdata, modality_dropout=0.0))
    with pytest.warns(UserWarning, match=r"modality_dropout=0"):
        latent = model.get_latent_representation(modality="rna")
    assert latent.shape == (synthetic_mdata.n_obs, N_LATENT)


def test_untrained_model_refuses_outputs(synthetic_mdata):
    model = cite_model(synthetic_mdata)
    with pytest.raises(RuntimeError, match="untrained"):
        model.get_latent_representation()


# ------------------------------------------------------------------------ save / load
@pytest.mark.parametrize("latent_distribution", ["normal", "deterministic"])
def test_save_load_round_trip(synthetic_mdata, tmp_path, latent_distribution):
    model = fit(
        cite_model(synthetic_mdata, latent_distribution=latent_distribution, modality_dropout=0.2)
    )
    before = model.get_latent_representation()
    expression = model.get_normalized_expression(modality="protein")
    folder = tmp_path / "omnivi_model"
    model.save(str(folder), save_anndata=False, overwrite=True)
    model.save(str(folder), save_anndata=False, overwrite=True)  # overwrite works
    loaded = OmniVI.load(str(folder), adata=synthetic_mdata)
    assert loaded.is_trained_
    assert loaded.modalities == model.modalities
    assert loaded.module.latent_distribution == latent_distribution
    assert loaded.module.modality_dropout == 0.2
    assert loaded.module.likelihoods == model.module.likelihoods
    np.testing.assert_allclose(loaded.get_latent_representation(), before, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        loaded.get_normalized_expression(modality="protein").to_numpy(),
        expression.to_numpy(),
        rtol=1e-5,
    )


# ------------------------------------------------------------------------ covariates
def test_covariates_in_global_obs(synthetic_mdata):
    rng = np.random.default_rng(0)
    synthetic_mdata.obs["donor"] = pd.Categorical(rng.choice(["d1", "d2"], synthetic_mdata.n_obs))
    synthetic_mdata.obs["percent_mito"] = rng.uniform(0, 1, synthetic_mdata.n_obs)
    OmniVI.setup_mudata(
        synthetic_mdata,
        batch_key="batch",
        labels_key="cell_type",
        categorical_covariate_keys=["donor"],
        continuous_covariate_keys=["percent_mito"],
        modalities=CITE,
    )
    model = fit(OmniVI(synthetic_mdata, n_latent=N_LATENT))
    assert model.summary_stats.n_extra_categorical_covs == 1
    assert model.summary_stats.n_extra_continuous_covs == 1
    # the labels, and the unlabeled category that a query's unknown labels are coded as
    assert model.summary_stats.n_labels == synthetic_mdata.obs["cell_type"].nunique() + 1
    assert len(model.cell_types) == synthetic_mdata.obs["cell_type"].nunique()
    latent = model.get_latent_representation()
    expression = model.get_normalized_expression().to_numpy()
    assert np.isfinite(latent).all()
    changed = synthetic_mdata.copy()
    changed.obs["percent_mito"] = changed.obs["percent_mito"] + 5.0
    changed.obs["donor"] = changed.obs["donor"].map({"d1": "d2", "d2": "d1"}).astype("category")
    # by default only the decoders see covariates: the latent ignores them, expression not
    np.testing.assert_allclose(model.get_latent_representation(changed), latent, atol=1e-5)
    assert not np.allclose(
        model.get_normalized_expression(changed).to_numpy(), expression, rtol=1e-3
    )

    # encode_covariates=True: they reach the encoders too
    encoding = fit(OmniVI(synthetic_mdata, n_latent=N_LATENT, encode_covariates=True))
    assert not np.allclose(
        encoding.get_latent_representation(changed),
        encoding.get_latent_representation(),
        atol=1e-4,
    )


def test_covariates_in_a_modality_obs(synthetic_mdata):
    rng = np.random.default_rng(1)
    synthetic_mdata["rna"].obs["lane"] = pd.Categorical(
        rng.choice(["a", "b", "c"], synthetic_mdata.n_obs)
    )
    synthetic_mdata["rna"].obs["rna_batch"] = synthetic_mdata.obs["batch"].to_numpy()
    synthetic_mdata["protein"].obs["depth"] = np.log1p(
        np.asarray(synthetic_mdata["protein"].X.sum(1)).ravel()
    )
    OmniVI.setup_mudata(
        synthetic_mdata,
        batch_key="rna_batch",
        categorical_covariate_keys=["lane"],
        continuous_covariate_keys=["depth"],
        modalities={
            **CITE,
            "batch_key": "rna",
            "categorical_covariate_keys": "rna",
            "continuous_covariate_keys": "protein",
        },
    )
    model = fit(OmniVI(synthetic_mdata, n_latent=N_LATENT))
    assert model.summary_stats.n_batch == 3
    assert model.summary_stats.n_extra_categorical_covs == 1
    assert np.isfinite(model.get_latent_representation()).all()


def test_anndata_covariates(synthetic_rna):
    synthetic_rna.obs["donor"] = pd.Categorical(np.arange(synthetic_rna.n_obs) % 2)
    synthetic_rna.obs["score"] = np.linspace(0, 1, synthetic_rna.n_obs)
    OmniVI.setup_anndata(
        synthetic_rna,
        batch_key="batch",
        categorical_covariate_keys=["donor"],
        continuous_covariate_keys=["score"],
    )
    model = fit(OmniVI(synthetic_rna, n_latent=N_LATENT, encode_covariates=False))
    assert model.summary_stats.n_extra_continuous_covs == 1
    assert np.isfinite(model.get_latent_representation()).all()


def test_dense_matrices(synthetic_mdata):
    for mod in ("rna", "protein"):
        synthetic_mdata[mod].X = synthetic_mdata[mod].X.toarray()
    model = fit(cite_model(synthetic_mdata))
    assert np.isfinite(model.get_latent_representation()).all()


# ---------------------------------------------------------------- cell order / pairing
def test_modalities_with_cells_in_different_order_are_refused(synthetic_session):
    """A modality storing its cells in another order is refused, never silently mispaired.

    scvi-tools reads each modality's rows as stored, so row i of one modality would meet
    row i of another: a different cell. The error says how to reorder.
    """
    original = synthetic_session
    order = np.random.default_rng(0).permutation(original.n_obs)
    mdata = md.MuData(
        {"rna": original["rna"].copy(), "protein": original["protein"][order].copy()}
    )
    assert set(mdata["protein"].obs_names) == set(mdata.obs_names)
    with pytest.raises(ValueError, match=r"another order.*\[mdata\.obs_names\]"):
        OmniVI.setup_mudata(mdata, modalities=CITE)
    assert "_scvi_uuid" not in mdata.uns


# ----------------------------------------------------------------------- bad input
def _failing_setup(obj, snapshot, unchanged, error, match, **kwargs):
    before = snapshot(obj)
    setup = OmniVI.setup_mudata if isinstance(obj, md.MuData) else OmniVI.setup_anndata
    with pytest.raises(error, match=match):
        setup(obj, **kwargs)
    unchanged(before, obj)
    assert "_scvi_uuid" not in obj.uns
    assert not any(c.startswith("_scvi") for c in obj.obs.columns)


def test_bad_modality_name(synthetic_mdata, snapshot, unchanged):
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"no modality 'adt'",
        batch_key="batch",
        modalities={"rna_layer": "rna", "protein_layer": "adt"},
    )


def test_missing_layer(synthetic_mdata, synthetic_rna, snapshot, unchanged):
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"Layer 'counts' not found",
        rna_layer="counts",
        batch_key="batch",
        modalities=CITE,
    )
    _failing_setup(
        synthetic_rna, snapshot, unchanged, KeyError, r"Layer 'counts' not found", layer="counts"
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("modality", ["rna", "protein"])
def test_nan_and_inf(synthetic_mdata, snapshot, unchanged, bad, modality):
    synthetic_mdata[modality].X.data[3] = bad
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        ValueError,
        r"NaN or infinite",
        batch_key="batch",
        modalities=CITE,
    )


def test_nan_in_anndata(synthetic_rna, snapshot, unchanged):
    synthetic_rna.X.data[0] = np.nan
    _failing_setup(
        synthetic_rna, snapshot, unchanged, ValueError, r"NaN or infinite", batch_key="batch"
    )


def test_nan_in_layer(synthetic_mdata, snapshot, unchanged):
    layer = synthetic_mdata["rna"].X.toarray()
    layer[0, 0] = np.nan
    synthetic_mdata["rna"].layers["counts"] = layer
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        ValueError,
        r"modality 'rna' layer 'counts'.*NaN",
        rna_layer="counts",
        modalities=CITE,
    )


def _matrices(mdata):
    return {m: mdata[m].X.toarray().copy() for m in mdata.mod}


@pytest.mark.parametrize(
    ("modality", "likelihood_kwargs"),
    [
        ("rna", {"gene_likelihood": "nb"}),
        ("rna", {"gene_likelihood": "zinb"}),
        ("protein", {"protein_likelihood": "nbmixture"}),
        ("protein", {"protein_likelihood": "nb"}),
    ],
)
def test_negative_values_under_count_likelihood(synthetic_mdata, modality, likelihood_kwargs):
    synthetic_mdata[modality].X.data[5] = -2.0
    before = _matrices(synthetic_mdata)
    OmniVI.setup_mudata(synthetic_mdata, batch_key="batch", modalities=CITE)
    with pytest.raises(
        ValueError,
        match=rf"The {modality} data contains negative values.*likelihood models counts",
    ):
        OmniVI(synthetic_mdata, **likelihood_kwargs)
    for mod, matrix in _matrices(synthetic_mdata).items():
        np.testing.assert_array_equal(matrix, before[mod])


@pytest.mark.parametrize("modality", ["rna", "protein"])
def test_non_integer_values_under_count_likelihood_suggest_normal(synthetic_mdata, modality):
    synthetic_mdata[modality].X = synthetic_mdata[modality].X * 0.37
    before = _matrices(synthetic_mdata)
    OmniVI.setup_mudata(synthetic_mdata, batch_key="batch", modalities=CITE)
    with pytest.raises(
        ValueError, match=rf"The {modality} data contains non-integer values.*'normal' likelihood"
    ):
        OmniVI(synthetic_mdata)
    for mod, matrix in _matrices(synthetic_mdata).items():
        np.testing.assert_array_equal(matrix, before[mod])


def test_non_integer_values_in_anndata(synthetic_rna):
    synthetic_rna.X = sp.csr_matrix(log1p_normalised(synthetic_rna.X))
    before = synthetic_rna.X.toarray().copy()
    OmniVI.setup_anndata(synthetic_rna)
    with pytest.raises(ValueError, match=r"non-integer values.*'normal'"):
        OmniVI(synthetic_rna, gene_likelihood="zinb")
    np.testing.assert_array_equal(synthetic_rna.X.toarray(), before)


def test_negative_accessibility(synthetic_session):
    mdata = with_atac(synthetic_session)
    mdata["atac"].X.data[0] = -1.0
    before = _matrices(mdata)
    OmniVI.setup_mudata(mdata, modalities={"rna_layer": "rna", "atac_layer": "atac"})
    with pytest.raises(ValueError, match=r"The atac data contains negative values"):
        OmniVI(mdata)
    for mod, matrix in _matrices(mdata).items():
        np.testing.assert_array_equal(matrix, before[mod])


def test_missing_batch_column(synthetic_mdata, synthetic_rna, snapshot, unchanged):
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'sample' not found in mdata\.obs",
        batch_key="sample",
        modalities=CITE,
    )
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'batch' not found in mdata\['rna'\]\.obs",
        batch_key="batch",
        modalities={**CITE, "batch_key": "rna"},
    )
    _failing_setup(
        synthetic_rna,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'sample' not found in adata\.obs",
        batch_key="sample",
    )


def test_missing_label_column(synthetic_mdata, synthetic_rna, snapshot, unchanged):
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'celltype' not found",
        batch_key="batch",
        labels_key="celltype",
        modalities=CITE,
    )
    _failing_setup(
        synthetic_rna,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'celltype' not found",
        labels_key="celltype",
    )


def test_missing_covariate_columns(synthetic_mdata, snapshot, unchanged):
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'donor' not found",
        categorical_covariate_keys=["donor"],
        modalities=CITE,
    )
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        KeyError,
        r"Column 'mito' not found",
        continuous_covariate_keys=["mito"],
        modalities=CITE,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modalities": {}},
        {"modalities": None},
        {"batch_key": "batch"},
        {"batch_key": "batch", "modalities": {"batch_key": "rna"}},
        {"modalities": {"rna_layer": None}},
    ],
)
def test_no_modality_given(synthetic_mdata, snapshot, unchanged, kwargs):
    _failing_setup(
        synthetic_mdata, snapshot, unchanged, ValueError, r"No modality given", **kwargs
    )


@pytest.mark.parametrize(
    ("modalities", "bad"),
    [
        ({"rna_layer": "rna", "protein": "protein"}, "protein"),
        ({"rna": "rna"}, "rna"),
        ({"rna_layer": "rna", "batch": "rna"}, "batch"),
    ],
)
def test_unknown_key_in_modalities(synthetic_mdata, snapshot, unchanged, modalities, bad):
    _failing_setup(
        synthetic_mdata,
        snapshot,
        unchanged,
        ValueError,
        rf"Unknown key\(s\) \['{bad}'\] in `modalities`",
        batch_key="batch",
        modalities=modalities,
    )


def test_unknown_likelihood(synthetic_mdata):
    OmniVI.setup_mudata(synthetic_mdata, modalities=CITE)
    with pytest.raises(ValueError, match=r"Likelihood 'poisson' is not available for rna"):
        OmniVI(synthetic_mdata, gene_likelihood="poisson")
    with pytest.raises(ValueError, match=r"latent_distribution must be"):
        OmniVI(synthetic_mdata, latent_distribution="ln")
