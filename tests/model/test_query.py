"""Reference mapping: preparing a query, scArches surgery, and what the query model gives.

Simulated CITE-seq: the reference is batches 0-1, the query batch 2 (a batch the reference
never saw). Real data: ``pbmc5k_rna`` (RNA only) mapped onto a model of ``pbmc10k_cite``.
"""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

from omnivi.model import OmniVI

CITE = {"rna_layer": "rna", "protein_layer": "protein"}


def _split(synthetic_session) -> tuple[md.MuData, md.MuData]:
    batch = synthetic_session.obs["batch"].astype(str).to_numpy()
    reference = synthetic_session[batch != "batch_2"].copy()
    query = synthetic_session[batch == "batch_2"].copy()
    return reference, query


@pytest.fixture(scope="module")
def reference_model(synthetic_session):
    reference, _ = _split(synthetic_session)
    OmniVI.setup_mudata(reference, batch_key="batch", labels_key="cell_type", modalities=CITE)
    model = OmniVI(reference, n_hidden=64, n_latent=8, encode_covariates=True)
    model.train(max_epochs=30, enable_progress_bar=False)
    return model


def _query_rna(query: md.MuData) -> ad.AnnData:
    rna = query["rna"].copy()
    rna.obs = query.obs[["batch", "cell_type"]].copy()
    return rna


# ------------------------------------------------------------------------------ preparing
def test_prepare_query_pads_missing_genes_and_keeps_the_user_object(
    reference_model, synthetic_session, snapshot, unchanged
):
    _, query = _split(synthetic_session)
    rna = _query_rna(query)
    kept = rna.var_names[60:][::-1]  # 60 genes missing, the rest in another order
    partial = rna[:, kept].copy()
    before = snapshot(partial)
    with pytest.warns(UserWarning, match="140 of the reference's 200 features"):
        prepared = OmniVI.prepare_query_anndata(partial, reference_model)
    unchanged(before, partial)
    assert isinstance(prepared, md.MuData)
    assert list(prepared.mod) == ["rna", "protein"]
    assert prepared["rna"].var_names.equals(reference_model.adata["rna"].var_names)
    assert prepared["protein"].n_obs == 0
    x = prepared["rna"].X.toarray()
    np.testing.assert_array_equal(x[:, :60], 0)
    np.testing.assert_array_equal(x[:, 60:], rna.X.toarray()[:, 60:])


def test_prepare_query_leaves_out_modalities_the_reference_lacks(
    reference_model, synthetic_session
):
    _, query = _split(synthetic_session)
    extra = ad.AnnData(np.ones((query.n_obs, 3), dtype=np.float32), obs=query.obs[[]].copy())
    mdata = md.MuData({"rna": query["rna"].copy(), "atac": extra})
    mdata.obs = query.obs.copy()
    with pytest.warns(UserWarning, match=r"query's \['atac'\] are left out"):
        prepared = OmniVI.prepare_query_mudata(mdata, reference_model)
    assert list(prepared.mod) == ["rna", "protein"]
    assert prepared.obs["batch"].equals(mdata.obs["batch"])


def test_prepare_query_refuses_unrelated_data(reference_model, synthetic_session):
    _, query = _split(synthetic_session)
    rna = _query_rna(query)
    rna.var_names = [f"ENSG{i:011d}" for i in range(rna.n_vars)]
    with pytest.raises(ValueError, match=r"shares no feature with the reference.*identifiers"):
        OmniVI.prepare_query_anndata(rna, reference_model)
    other = md.MuData({"adt2": query["protein"].copy()})
    with pytest.raises(ValueError, match=r"none of the reference's modalities"):
        OmniVI.prepare_query_mudata(other, reference_model)


# -------------------------------------------------------------------------------- mapping
@pytest.fixture(scope="module")
def query_model(reference_model, synthetic_session):
    _, query = _split(synthetic_session)
    prepared = OmniVI.prepare_query_mudata(query, reference_model)
    model = OmniVI.load_query_data(prepared, reference_model)
    before = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    model.train(max_epochs=5, enable_progress_bar=False)
    return model, prepared, before


def test_only_what_scarches_trains_changes(query_model, reference_model):
    model, _, before = query_model
    after = model.module.state_dict()
    n_latent, n_reference_batches = 8, 2
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "query training changed nothing"
    for key in changed:
        # only first layers that read the batch, and batch-norm statistics of decoders
        assert "Layer 0" in key or "running" in key or "num_batches" in key, key
    decoder_first = "decoders.rna.px_decoder.fc_layers.Layer 0.0.weight"
    weight_before, weight_after = before[decoder_first], after[decoder_first]
    torch.testing.assert_close(weight_before[:, :n_latent], weight_after[:, :n_latent])
    reference_columns = slice(n_latent, n_latent + n_reference_batches)
    torch.testing.assert_close(
        weight_before[:, reference_columns], weight_after[:, reference_columns]
    )
    assert not torch.equal(weight_before[:, -1], weight_after[:, -1])  # the query's batch
    for key, value in model.module.classifier.state_dict().items():
        torch.testing.assert_close(value, reference_model.module.classifier.state_dict()[key])


def test_the_query_model_annotates_and_scores_the_query(query_model, synthetic_session):
    model, prepared, _ = query_model
    assert model.summary_stats.n_batch == 3
    latent = model.get_latent_representation()
    assert latent.shape == (prepared.n_obs, 8)
    soft = model.predict(soft=True)
    truth = prepared.obs["cell_type"].astype(str).to_numpy()
    assert (soft.columns[soft.to_numpy().argmax(axis=1)] == truth).mean() > 0.8
    novelty = model.get_novelty_scores()
    assert novelty.shape[0] == prepared.n_obs
    assert novelty["is_novel"].mean() < 0.3  # every query type is known


def test_an_rna_only_query_on_a_cite_seq_reference(reference_model, synthetic_session):
    _, query = _split(synthetic_session)
    rna = _query_rna(query)
    prepared = OmniVI.prepare_query_anndata(rna, reference_model)
    model = OmniVI.load_query_data(prepared, reference_model)
    model.train(max_epochs=3, enable_progress_bar=False)
    latent = model.get_latent_representation()
    assert latent.shape == (rna.n_obs, 8)
    assert np.isfinite(latent).all()
    protein = model.get_normalized_expression(modality="protein")
    assert protein.shape == (rna.n_obs, query["protein"].n_vars)
    assert np.isfinite(protein.to_numpy()).all()
    # The protein decoder's weights for the query's batch get no gradient (the query has no
    # protein): its proteins are decoded as an average reference batch, not with them.
    measured = model.module.batch_has_modality.cpu().numpy()
    assert measured[model.modalities.index("protein")].tolist() == [True, True, False]
    assert measured[model.modalities.index("rna")].all()
    with torch.no_grad():  # the last one-hot column is the query's batch
        for layers in model.module.decoders["protein"].px_decoder.fc_layers:
            layers[0].weight[:, -1] += torch.randn(layers[0].weight.shape[0])
    again = model.get_normalized_expression(modality="protein")
    np.testing.assert_allclose(again.to_numpy(), protein.to_numpy(), rtol=1e-5)
    truth = rna.obs["cell_type"].astype(str).to_numpy()
    assert (model.predict() == truth).mean() > 0.6
    novelty = model.get_novelty_scores()  # compared on RNA, the modality the query has
    assert np.isfinite(novelty["novelty_score"]).all()


# ------------------------------------------------------------------------------ real data
@pytest.mark.real_data
def test_pbmc5k_rna_onto_a_pbmc10k_cite_seq_reference(real_file):
    """Every query cell gets a latent and imputed proteins; the imputed proteins follow
    their genes' RNA in the query (pairs CD3/CD3D, CD4/CD4, CD8a/CD8A, CD14/CD14,
    CD19/CD19; measured 0.26-0.86, median 0.61; asserted median > 0.3)."""
    reference = md.read_h5mu(real_file("pbmc10k_cite.h5mu"))
    reference.obs["batch"] = "pbmc10k"
    OmniVI.setup_mudata(
        reference, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "prot"}
    )
    model = OmniVI(reference)
    model.train(max_epochs=30, enable_progress_bar=False)
    query = ad.read_h5ad(real_file("pbmc5k_rna.h5ad"))
    query.obs["batch"] = "pbmc5k"
    mapped = OmniVI.load_query_data(OmniVI.prepare_query_anndata(query, model), model)
    mapped.train(max_epochs=10, enable_progress_bar=False)
    latent = mapped.get_latent_representation()
    assert latent.shape == (query.n_obs, model.module.n_latent)
    protein = mapped.get_normalized_expression(modality="protein")
    assert np.isfinite(protein.to_numpy()).all()
    rna = pd.DataFrame(query.X.toarray(), index=query.obs_names, columns=query.var_names)
    correlations = {}
    pairs = (("CD3", "CD3D"), ("CD4", "CD4"), ("CD8a", "CD8A"), ("CD14", "CD14"), ("CD19", "CD19"))
    for prefix, gene in pairs:
        column = next(c for c in protein.columns if c.split("_")[0] == prefix)
        correlations[prefix] = np.corrcoef(np.log1p(protein[column]), np.log1p(rna[gene]))[0, 1]
    print(f"\nimputed protein vs its gene's RNA: {correlations}")
    assert np.median(list(correlations.values())) > 0.3


def test_a_saved_model_refuses_data_of_another_shape(reference_model, synthetic_session, tmp_path):
    reference_model.save(tmp_path / "reference", save_anndata=False)
    _, query = _split(synthetic_session)
    fewer_genes = md.MuData({"rna": query["rna"][:, :150].copy(), "protein": query["protein"]})
    fewer_genes.obs = query.obs.copy()
    with pytest.raises(ValueError, match="prepare_query"):
        OmniVI.load(tmp_path / "reference", adata=fewer_genes)
    prepared = OmniVI.prepare_query_mudata(fewer_genes, str(tmp_path / "reference"))
    assert prepared["rna"].n_vars == 200


def test_omnicl_annotates_a_prepared_rna_only_query(synthetic_session):
    """OmniCL reads no batch: a prepared query goes straight into predict and novelty."""
    from omnivi.model import OmniCL

    reference, query = _split(synthetic_session)
    OmniCL.setup_mudata(reference, batch_key="batch", labels_key="cell_type", modalities=CITE)
    accuracies = []
    for seed in (0, 1, 2):  # one small fit varies a lot with the seed
        scvi.settings.seed = seed
        model = OmniCL(reference, n_hidden=64, n_fusion_hidden=32, n_latent=8)
        model.train(max_epochs=40, batch_size=64, enable_progress_bar=False)
        prepared = OmniCL.prepare_query_anndata(_query_rna(query), model)
        truth = prepared.obs["cell_type"].astype(str).to_numpy()
        accuracies.append((model.predict(prepared) == truth).mean())
    assert prepared["protein"].n_obs == 0
    # Measured 0.46, 0.86 and 0.89 (seeds 0-2); the largest type is 28% of the cells.
    assert np.mean(accuracies) > 0.6
    novelty = model.get_novelty_scores(prepared)
    assert len(novelty) == prepared.n_obs
    assert np.isfinite(novelty["novelty_score"]).all()
    query_model = OmniCL.load_query_data(prepared, model)
    np.testing.assert_array_equal(query_model.predict(), model.predict(prepared))
    with pytest.raises(RuntimeError, match="nothing to adapt"):
        query_model.train(max_epochs=1)


# ------------------------------------------------------------- query labels and copies
def test_unknown_query_labels_are_unlabeled_not_new_classes(reference_model, synthetic_session):
    """A query labelled "unknown" (as omnivi advises) keeps the reference's label set."""
    _, query = _split(synthetic_session)
    query.obs["cell_type"] = "unknown"
    query["rna"].obs["cell_type"] = "unknown"
    n_outputs = reference_model.module.classifier.layers[-1].out_features
    model = OmniVI.load_query_data(
        OmniVI.prepare_query_mudata(query, reference_model), reference_model
    )
    assert model.module.classifier.layers[-1].out_features == n_outputs
    assert list(model.cell_types) == list(reference_model.cell_types)
    codes = model._registered_codes()
    assert (codes == model.unlabeled_code).all()
    model.train(max_epochs=2, enable_progress_bar=False)
    assert set(model.predict()) <= set(reference_model.cell_types)
    # and the reference model scores such a query directly, without growing either
    direct = reference_model.predict(query)
    assert set(direct) <= set(reference_model.cell_types)
    assert list(reference_model.cell_types) == list(model.cell_types)


def test_a_copy_of_a_scored_query_is_scored_too(reference_model, synthetic_session):
    """``query[:100].copy()`` of a query in a batch the reference never saw."""
    _, query = _split(synthetic_session)
    first = reference_model.get_novelty_scores(query)
    subset = query[:100].copy()  # carries the scored query's registration entries
    latent = reference_model.get_latent_representation(subset)
    assert latent.shape == (100, 8)
    np.testing.assert_allclose(
        latent, reference_model.get_latent_representation(query)[:100], atol=1e-5
    )
    assert len(reference_model.predict(subset)) == 100
    scores = reference_model.get_novelty_scores(subset)
    assert scores.index.equals(first.index[:100])


def test_an_unprepared_query_is_refused_with_the_fix(reference_model, synthetic_session):
    """A scvi-tools habit: prepare_query_* in place, then pass the original object."""
    _, query = _split(synthetic_session)
    rna_only = md.MuData({"rna": query["rna"].copy()})
    rna_only.obs = query.obs.copy()
    with pytest.raises(ValueError, match=r"no modality \['protein'\].*prepare_query_mudata"):
        OmniVI.load_query_data(rna_only, reference_model)
    with pytest.raises(ValueError, match="prepare_query_anndata"):
        OmniVI.load_query_data(_query_rna(query), reference_model)
