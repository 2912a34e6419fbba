"""Training and outputs from an AnnData backed by its file, as from one in memory."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from omnivi.data import _validation
from omnivi.model import OmniVI


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
    assert backed.isbacked
    elbo = model.history["elbo_train"].to_numpy().ravel()
    assert elbo[-1] < elbo[0]
    latent = model.get_latent_representation()
    labels = synthetic_rna.obs["cell_type"]
    assert knn_accuracy(latent, labels) > random_embedding_accuracy(latent.shape, labels) + 0.3

    # the same model encodes the data the same from disk and from memory
    in_memory = ad.read_h5ad(path)
    np.testing.assert_allclose(
        model.get_latent_representation(in_memory), latent, rtol=1e-5, atol=1e-6
    )


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
