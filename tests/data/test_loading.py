"""Sparse training minibatches (SparseInputDataSplitter) on real multiome data."""

from __future__ import annotations

import mudata as md
import numpy as np
import pytest
import scvi
import torch
from scipy import sparse

from omnivi._constants import MODALITY_REGISTRY_KEYS
from omnivi.data import SparseInputDataSplitter
from omnivi.model import OmniVI

pytestmark = pytest.mark.real_data

ATAC, RNA = MODALITY_REGISTRY_KEYS["atac"], MODALITY_REGISTRY_KEYS["rna"]


@pytest.fixture
def multiome(real_file) -> md.MuData:
    mdata = md.read_h5mu(real_file("bmmc_multiome_small.h5mu"))
    assert sparse.issparse(mdata["atac"].X)
    assert sparse.issparse(mdata["rna"].X)
    OmniVI.setup_mudata(
        mdata, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac"}
    )
    return mdata


def _first_batch(model: OmniVI, **kwargs) -> dict[str, torch.Tensor]:
    splitter = SparseInputDataSplitter(model.adata_manager, batch_size=64, **kwargs)
    splitter.setup()
    torch.manual_seed(0)  # the same shuffled cells for every splitter
    batch = next(iter(splitter.train_dataloader()))
    return splitter.on_after_batch_transfer(batch, 0), splitter.train_idx


def test_atac_stays_sparse_and_the_rest_is_made_dense(multiome):
    model = OmniVI(multiome)
    scvi.settings.seed = 0
    batch, train_idx = _first_batch(model, keep_sparse=[ATAC], load_sparse_tensor=True)
    assert batch[ATAC].layout is torch.sparse_csr
    assert batch[RNA].layout is torch.strided
    scvi.settings.seed = 0
    dense, dense_idx = _first_batch(model, keep_sparse=[ATAC], load_sparse_tensor=False)
    np.testing.assert_array_equal(train_idx, dense_idx)
    assert dense[ATAC].layout is torch.strided
    for key in (ATAC, RNA):
        torch.testing.assert_close(batch[key].to_dense(), dense[key])
    # the cells are the AnnData's: each minibatch row is one cell's ATAC counts
    rows = multiome["atac"].X.toarray()
    matches = (rows[None, :, :] == dense[ATAC].numpy()[:, None, :]).all(axis=2)
    assert matches.any(axis=1).all()


def test_training_from_sparse_minibatches_matches_dense(multiome):
    """Same seed, sparse or host-densified minibatches: the same trained latent."""
    latents = []
    for load_sparse_tensor in (True, False):
        scvi.settings.seed = 0
        model = OmniVI(multiome, n_latent=10)
        model.train(max_epochs=3, load_sparse_tensor=load_sparse_tensor, enable_progress_bar=False)
        latents.append(model.get_latent_representation())
        assert np.isfinite(model.history["elbo_validation"].to_numpy(dtype=float)).all()
    np.testing.assert_allclose(latents[0], latents[1], rtol=1e-3, atol=1e-4)


def test_outputs_read_atac_sparse_and_equal_those_of_dense_minibatches(multiome):
    """Latents, accessibility and the ELBO from sparse ATAC minibatches (the default)."""
    scvi.settings.seed = 0
    model = OmniVI(multiome, n_latent=10)
    model.train(max_epochs=2, enable_progress_bar=False)
    first = next(iter(model._make_data_loader(multiome)))
    assert first[ATAC].layout is torch.sparse_csr
    assert first[RNA].layout is torch.strided
    dense = model._make_data_loader(multiome, load_sparse_tensor=False)
    assert next(iter(dense))[ATAC].layout is torch.strided
    module = model.module.eval()
    with torch.no_grad():
        latent = torch.cat(
            [module.inference(**module._get_inference_input(t))["qzm"] for t in dense]
        )
    np.testing.assert_allclose(model.get_latent_representation(), latent.numpy(), atol=1e-6)
    accessibility = model.get_accessibility_estimates(indices=np.arange(50), return_numpy=True)
    assert accessibility.shape == (50, multiome["atac"].n_vars)
    assert ((accessibility > 0) & (accessibility < 1)).all()
    torch.testing.assert_close(
        torch.as_tensor(model.get_elbo()), torch.as_tensor(model.get_elbo(dataloader=dense))
    )
