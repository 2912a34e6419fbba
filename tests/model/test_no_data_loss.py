"""The user's data and saved models are never lost or silently changed.

Every public call of a model is made on dense, sparse and mosaic data; the object must then
hold exactly what it held before, apart from scvi-tools' registration entries and the
outputs the documentation names (``docs/bad_input.md``). A save that is interrupted must
leave the model saved before it loadable, unchanged.
"""

from __future__ import annotations

import warnings

import mudata as md
import numpy as np
import pytest
import torch

from omnivi.data import simulate_cite_seq
from omnivi.model import OmniVI

QUICK = {"max_epochs": 2, "enable_progress_bar": False}
CITE = {"rna_layer": "rna", "protein_layer": "protein"}


def _data(kind: str) -> md.MuData:
    mdata = simulate_cite_seq(n_cells=240, n_genes=40, n_proteins=8, seed=1)
    if kind == "dense":
        for mod in mdata.mod.values():
            mod.X = mod.X.toarray()
    if kind == "mosaic":  # the first 60 cells lack protein, the last 60 RNA
        with md.set_options(pull_on_update=False):
            mosaic = md.MuData(
                {"rna": mdata["rna"][:180].copy(), "protein": mdata["protein"][60:].copy()}
            )
        mosaic.obs = mdata.obs.copy()
        return mosaic
    return mdata


@pytest.mark.parametrize("kind", ["dense", "sparse", "mosaic"])
def test_public_calls_change_only_the_documented_outputs(kind, snapshot, unchanged, tmp_path):
    mdata = _data(kind)
    query = _data(kind)
    query.obs["batch"] = "a new batch"
    before, query_before = snapshot(mdata), snapshot(query)

    OmniVI.setup_mudata(mdata, batch_key="batch", labels_key="cell_type", modalities=CITE)
    model = OmniVI(mdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**QUICK)
        model.get_latent_representation()
        model.get_latent_representation(modality="rna", indices=np.arange(30, 60))
        model.get_normalized_expression(modality="protein")
        model.get_normalized_expression(modality="rna", from_modalities=["rna"], indices=[70])
        model.predict()
        model.get_novelty_scores(method="distance")
        model.get_cell_type_representations()
        model.store_latent()
        model.save(tmp_path / "model")
        loaded = OmniVI.load(tmp_path / "model", adata=mdata)
        loaded.get_latent_representation()

        prepared = OmniVI.prepare_query_mudata(query, model)
        model.predict(prepared)
        mapped = OmniVI.load_query_data(prepared, model)
        mapped.train(**QUICK)
        mapped.get_latent_representation()

    assert mdata.obsm["X_omnivi"].shape == (mdata.n_obs, model.module.n_latent)
    unchanged(before, mdata, registration_allowed=True)
    unchanged(query_before, query, registration_allowed=True)


class _Interrupted(Exception):
    """Stands for a crash (power loss, killed process) in the middle of a save."""


def test_an_interrupted_save_leaves_the_previous_model_loadable(synthetic_mdata, tmp_path):
    OmniVI.setup_mudata(synthetic_mdata, batch_key="batch", modalities=CITE)
    model = OmniVI(synthetic_mdata)
    model.train(**QUICK)
    folder = tmp_path / "model"
    model.save(folder)
    saved_latent = OmniVI.load(folder, adata=synthetic_mdata).get_latent_representation()

    model.train(**QUICK)  # the model changes; saving it again is cut short halfway
    real_save = torch.save

    def cut_short(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        with open(file, "r+b") as handle:
            handle.truncate(handle.seek(0, 2) // 2)
        raise _Interrupted

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "save", cut_short)
        with pytest.raises(_Interrupted):
            model.save(folder, overwrite=True)

    reloaded = OmniVI.load(folder, adata=synthetic_mdata)
    np.testing.assert_array_equal(reloaded.get_latent_representation(), saved_latent)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written folder left

    model.save(folder, overwrite=True)  # a save that completes replaces it
    replaced = OmniVI.load(folder, adata=synthetic_mdata).get_latent_representation()
    np.testing.assert_allclose(replaced, model.get_latent_representation(), rtol=1e-5)
