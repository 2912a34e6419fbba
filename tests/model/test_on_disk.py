"""Training and outputs from an AnnData backed by its file, as from one in memory."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scvi
import torch

from omnivi.data import _validation
from omnivi.model import OmniVI


def _learned_latent(model, labels, margin, knn_accuracy, random_embedding_accuracy):
    """The latent of a model trained from disk, checked: data still on disk, loss fell, the
    latent's neighbours share labels ``margin`` above chance."""
    assert model.adata.isbacked
    for key in ("elbo_train", "elbo_validation"):
        elbo = model.history[key].to_numpy().ravel()
        assert elbo[-1] < elbo[0], key
    latent = model.get_latent_representation()
    assert knn_accuracy(latent, labels) > random_embedding_accuracy(latent.shape, labels) + margin
    return latent


def test_a_backed_anndata_trains_and_encodes_from_disk(
    synthetic_rna, tmp_path, monkeypatch, knn_accuracy, random_embedding_accuracy
):
    path = tmp_path / "rna.h5ad"
    synthetic_rna.write_h5ad(path)
    # checks read the file a few rows at a time, as they would read an atlas
    monkeypatch.setattr(_validation, "BLOCK_ROWS", 64)
    backed = ad.read_h5ad(path, backed="r")
    OmniVI.setup_anndata(backed, batch_key="batch")
    model = OmniVI(backed)
    model.train(max_epochs=30, enable_progress_bar=False)
    latent = _learned_latent(
        model, synthetic_rna.obs["cell_type"], 0.3, knn_accuracy, random_embedding_accuracy
    )

    # the same model encodes the data the same from disk and from memory
    in_memory = ad.read_h5ad(path)
    np.testing.assert_allclose(
        model.get_latent_representation(in_memory), latent, rtol=1e-5, atol=1e-6
    )


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("name", "modalities"),
    [
        ("bmmc_cite_small.h5mu", {"rna_layer": "rna", "protein_layer": "adt"}),
        ("bmmc_multiome_small.h5mu", {"rna_layer": "rna", "atac_layer": "atac"}),
    ],
)
def test_a_backed_mudata_trains_and_encodes_from_disk(
    real_file, tmp_path, monkeypatch, name, modalities, knn_accuracy, random_embedding_accuracy
):
    """Paired RNA + protein or RNA + ATAC read from its file: windows of cells for training."""
    path = tmp_path / name
    md.read_h5mu(real_file(name)).write(path)
    monkeypatch.setattr(_validation, "BLOCK_ROWS", 64)  # checks and depths read by blocks
    backed = md.read_h5mu(path, backed=True)
    OmniVI.setup_mudata(backed, batch_key="batch", modalities=modalities)
    model = OmniVI(backed)
    scvi.settings.seed = 0
    model.train(max_epochs=40, enable_progress_bar=False)
    latent = _learned_latent(
        model, backed.obs["cell_type"], 0.2, knn_accuracy, random_embedding_accuracy
    )

    # the depths the decoders start from, and the latent, are those of the data in memory
    in_memory = md.read_h5mu(path)
    OmniVI.setup_mudata(in_memory, batch_key="batch", modalities=modalities)
    torch.testing.assert_close(
        OmniVI(in_memory).module.log_depth_mean, model.module.log_depth_mean.cpu()
    )
    np.testing.assert_allclose(
        model.get_latent_representation(in_memory), latent, rtol=1e-5, atol=1e-6
    )


@pytest.mark.real_data
def test_a_backed_anndata_with_labels_annotates_and_maps_from_disk(real_file, tmp_path):
    """Labels (classifier, novelty reference) and a backed query, read from their files."""
    rna = md.read_h5mu(real_file("bmmc_cite_small.h5mu"))["rna"].copy()
    path = tmp_path / "rna.h5ad"
    rna.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    OmniVI.setup_anndata(backed, batch_key="batch", labels_key="cell_type")
    model = OmniVI(backed)
    scvi.settings.seed = 0
    model.train(max_epochs=20, enable_progress_bar=False)
    predicted = model.predict()
    assert (predicted == rna.obs["cell_type"].to_numpy()).mean() > 0.3  # 41 types

    # cells asked for out of order come in that order, from disk as from memory
    in_memory = ad.read_h5ad(path)
    np.testing.assert_array_equal(model.predict(in_memory), predicted)
    shuffled = np.random.default_rng(0).permutation(rna.n_obs)[:300]
    np.testing.assert_allclose(
        model.get_latent_representation(backed, indices=shuffled),
        model.get_latent_representation(in_memory, indices=shuffled),
        rtol=1e-5,
        atol=1e-6,
    )
    scored = np.arange(0, 600, 3)
    assert len(model.get_novelty_scores(backed, indices=scored)) == len(scored)
    # the same cells as another object (a query): the same scores from disk as from memory
    from_disk, from_memory = (
        model.get_novelty_scores(data, indices=scored)["novelty_score"]
        for data in (ad.read_h5ad(path, backed="r"), in_memory)
    )
    np.testing.assert_allclose(from_disk, from_memory)

    query = OmniVI.prepare_query_anndata(ad.read_h5ad(path, backed="r"), model)
    assert not query.isbacked  # a new object in memory
    query_model = OmniVI.load_query_data(query, model)
    query_model.train(max_epochs=2, enable_progress_bar=False)
    assert query_model.get_latent_representation().shape == (rna.n_obs, 20)


def test_checks_of_a_backed_anndata_find_bad_values_in_any_block(
    synthetic_rna, tmp_path, monkeypatch
):
    synthetic_rna.X = synthetic_rna.X.toarray()
    synthetic_rna.X[-1, 0] = 0.5  # in the last block only
    path = tmp_path / "rna.h5ad"
    synthetic_rna.write_h5ad(path)
    monkeypatch.setattr(_validation, "BLOCK_ROWS", 64)
    backed = ad.read_h5ad(path, backed="r")
    OmniVI.setup_anndata(backed, batch_key="batch")
    with pytest.raises(ValueError, match="non-integer"):
        OmniVI(backed)


# ----------------------------------------------------- a data module (TileDB-SOMA store)
@pytest.fixture
def soma_query(synthetic_rna, tmp_path):
    """A query over all cells of ``synthetic_rna`` written to a TileDB-SOMA experiment."""
    pytest.importorskip("tiledbsoma", reason="the `ondisk` extra is not installed")
    pytest.importorskip("tiledbsoma_ml", reason="the `ondisk` extra is not installed")
    import tiledbsoma.io

    uri = str(tmp_path / "soma")
    tiledbsoma.io.from_anndata(uri, synthetic_rna, measurement_name="RNA")
    with tiledbsoma.Experiment.open(uri) as experiment:
        yield experiment.axis_query("RNA")


def _datamodule(query, **kwargs):
    from scvi.dataloaders import TileDBDataModule

    return TileDBDataModule(
        query,
        layer_name="data",
        batch_column_names=["batch"],
        dataloader_kwargs={"num_workers": 0},
        **kwargs,
    )


def _row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def test_omnivi_trains_from_a_data_module_and_gives_outputs_in_its_order(
    synthetic_rna, soma_query, tmp_path, knn_accuracy, random_embedding_accuracy
):
    training = _datamodule(soma_query, batch_size=128, shuffle=True, seed=0, train_size=0.9)
    model = OmniVI(registry=training.registry)
    assert model.modalities == ["rna"]
    model.train(
        max_epochs=30, datamodule=training, check_val_every_n_epoch=1, enable_progress_bar=False
    )
    for key in ("elbo_train", "elbo_validation"):
        elbo = model.history[key].to_numpy(dtype=float).ravel()
        assert elbo[-1] < elbo[0], key

    cells = _datamodule(
        soma_query, batch_size=256, shuffle=False, batch_labels=training.batch_labels
    )
    cells.setup()
    latent = model.get_latent_representation(dataloader=cells.inference_dataloader())
    labels = synthetic_rna.obs["cell_type"]
    assert latent.shape == (synthetic_rna.n_obs, model.module.n_latent)
    assert knn_accuracy(latent, labels) > random_embedding_accuracy(latent.shape, labels) + 0.3

    # rows come in the store's order: each cell's denoised expression matches its own counts
    # better than those of other cells
    denoised = model.get_normalized_expression(
        dataloader=cells.inference_dataloader(), library_size=None, return_numpy=True
    )
    counts = np.log1p(synthetic_rna.X.toarray())
    shuffled = np.random.default_rng(0).permutation(synthetic_rna.n_obs)
    own = _row_correlation(np.log1p(denoised), counts).mean()
    others = _row_correlation(np.log1p(denoised), counts[shuffled]).mean()
    assert own > others + 0.05

    model.save(tmp_path / "model", datamodule=training)
    loaded = OmniVI.load(tmp_path / "model")
    np.testing.assert_allclose(
        loaded.get_latent_representation(dataloader=cells.inference_dataloader()),
        latent,
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_last_training_minibatch_of_one_cell_is_skipped(soma_query):
    """A data module whose training split ends in one cell trains (as drop_last would)."""
    probe = _datamodule(soma_query, batch_size=10_000, train_size=0.9, split_seed=0)
    probe.setup()
    n_train = sum(len(obs) for _, obs in probe.train_dataloader())
    cells = _datamodule(soma_query, batch_size=n_train - 1, train_size=0.9, split_seed=0)
    cells.setup()
    assert [len(obs) for _, obs in cells.train_dataloader()] == [n_train - 1, 1]
    model = OmniVI(registry=cells.registry)
    model.train(max_epochs=2, datamodule=cells, enable_progress_bar=False)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    assert "elbo_validation" not in model.history  # as scvi-tools: only when asked for


@pytest.mark.real_data
def test_the_same_seed_gives_the_same_latent_from_disk(real_file, tmp_path):
    path = tmp_path / "cite.h5mu"
    md.read_h5mu(real_file("bmmc_cite_small.h5mu")).write(path)
    latents = []
    for _ in range(2):
        backed = md.read_h5mu(path, backed=True)
        OmniVI.setup_mudata(
            backed, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "adt"}
        )
        scvi.settings.seed = 0
        model = OmniVI(backed)
        model.train(max_epochs=5, enable_progress_bar=False)
        latents.append(model.get_latent_representation())
    np.testing.assert_allclose(latents[0], latents[1], rtol=1e-5, atol=1e-6)
