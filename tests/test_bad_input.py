"""The rows of the bad-input table of the documentation (``docs/bad_input.md``), one each.

Each case builds one kind of bad input from small simulated data, makes the public call a
user would make, and checks that it ends in the documented error, whose message names the
problem and the fix, or in the documented behaviour. ``doc`` is the row's first cell in the
table; a test checks that the table's rows and the cases are the same.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp
import scvi
import torch
from lightning.pytorch.callbacks import Callback

from omnivi.cli import main as cli
from omnivi.data import simulate_cite_seq
from omnivi.model import OmniCL, OmniVI
from omnivi.model._saved import MODEL_FILE

DOCS = Path(__file__).resolve().parents[1] / "docs" / "bad_input.md"
QUICK = {"max_epochs": 1, "enable_progress_bar": False}


# ---------------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def source() -> md.MuData:
    return simulate_cite_seq(n_cells=150, n_genes=40, n_proteins=8, seed=0)


class Env:
    """Fresh copies of the data, a trained model and its saved folder, for one case."""

    def __init__(self, source: md.MuData, trained, tmp_path: Path):
        self.source = source
        self._trained = trained
        self.tmp = tmp_path

    def rna(self) -> ad.AnnData:
        """RNA counts (sparse) with batch and cell_type in ``.obs``."""
        adata = self.source["rna"].copy()
        adata.obs = adata.obs.join(self.source.obs[["batch", "cell_type"]])
        return adata

    def cite(self) -> md.MuData:
        return self.source.copy()

    def with_x(self, x) -> ad.AnnData:
        """The RNA AnnData with ``.X`` replaced by ``x``."""
        adata = self.rna()
        adata.X = x
        return adata

    def dense(self) -> np.ndarray:
        return self.rna().X.toarray().astype(np.float32)

    @property
    def model(self) -> OmniVI:
        """An OmniVI trained (one epoch) on the RNA, with labels."""
        return self._trained()[0]

    @property
    def saved(self) -> Path:
        """Folder of that model, saved; copy it before damaging it."""
        return self._trained()[1]

    @property
    def cite_model(self) -> OmniVI:
        """An OmniVI trained (one epoch) on RNA + protein, with labels."""
        return self._trained("cite")[0]

    def datamodule(self, batch_size: int = 64):
        """scvi-tools' TileDBDataModule over the RNA written to a TileDB-SOMA store."""
        pytest.importorskip("tiledbsoma", reason="the `ondisk` extra is not installed")
        pytest.importorskip("tiledbsoma_ml", reason="the `ondisk` extra is not installed")
        import tiledbsoma.io
        from scvi.dataloaders import TileDBDataModule

        uri = str(self.tmp / "soma")
        tiledbsoma.io.from_anndata(uri, self.rna(), measurement_name="RNA")
        query = tiledbsoma.Experiment.open(uri).axis_query("RNA")
        return TileDBDataModule(
            query,
            layer_name="data",
            batch_column_names=["batch"],
            train_size=0.9,
            batch_size=batch_size,
            dataloader_kwargs={"num_workers": 0},
        )

    def datamodule_model(self):
        """An OmniVI trained (one epoch) from :meth:`datamodule`, and the module."""
        cells = self.datamodule()
        model = OmniVI(registry=cells.registry)
        model.train(datamodule=cells, **QUICK)
        return model, cells


@pytest.fixture(scope="module")
def trained(source, tmp_path_factory):
    """``trained(kind)``: a model trained once per module on ``"rna"`` or ``"cite"``."""
    cache = {}

    def get(kind: str = "rna"):
        if kind not in cache:
            if kind == "rna":
                data = source["rna"].copy()
                data.obs = data.obs.join(source.obs[["batch", "cell_type"]])
                OmniVI.setup_anndata(data, batch_key="batch", labels_key="cell_type")
            else:
                data = source.copy()
                OmniVI.setup_mudata(
                    data,
                    batch_key="batch",
                    labels_key="cell_type",
                    modalities={"rna_layer": "rna", "protein_layer": "protein"},
                )
            model = OmniVI(data)
            model.train(**QUICK)
            folder = tmp_path_factory.mktemp("saved") / "model"
            model.save(folder)
            cache[kind] = (model, folder)
        return cache[kind]

    return get


@pytest.fixture
def env(source, trained, tmp_path) -> Env:
    return Env(source, trained, tmp_path)


def setup_rna(adata: ad.AnnData, **kwargs) -> OmniVI:
    OmniVI.setup_anndata(adata, batch_key="batch", **kwargs)
    return OmniVI(adata)


def setup_cite(mdata: md.MuData) -> OmniVI:
    OmniVI.setup_mudata(
        mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "protein"}
    )
    return OmniVI(mdata)


def copy_saved(env: Env) -> Path:
    folder = env.tmp / "copy"
    folder.mkdir()
    for file in env.saved.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    return folder


def _one_cell_minibatches(env: Env):
    cells = env.datamodule(batch_size=1)
    OmniVI(registry=cells.registry).train(datamodule=cells, **QUICK)


def _dataloader_and_data(env: Env):
    model, cells = env.datamodule_model()
    return model.get_latent_representation(env.rna(), dataloader=cells.inference_dataloader())


def _save_without_datamodule(env: Env):
    model, _ = env.datamodule_model()
    try:
        model.save(env.tmp / "model")
    finally:
        assert not (env.tmp / "model").exists()


# ------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One row of the table.

    Parameters
    ----------
    doc
        The row's first cell in ``docs/bad_input.md``.
    run
        Makes the bad call; ``run(env)``.
    error
        The exception expected, or ``None`` for a documented behaviour that ``run`` checks.
    match
        Regular expression the message must match: the problem and the fix.
    """

    doc: str
    run: Callable[[Env], object]
    error: type[BaseException] | None
    match: str = ""


def _nan_column(env: Env, column: str) -> ad.AnnData:
    adata = env.rna()
    values = adata.obs[column].astype(object)
    values.iloc[0] = np.nan
    adata.obs[column] = values.astype("category")
    return adata


def _continuous_nan(env: Env) -> None:
    adata = env.rna()
    adata.obs["depth"] = np.arange(adata.n_obs, dtype=float)
    adata.obs.iloc[3, adata.obs.columns.get_loc("depth")] = np.nan
    OmniVI.setup_anndata(adata, batch_key="batch", continuous_covariate_keys=["depth"])


def _backed_anndata_trains_from_disk(env: Env) -> None:
    path = env.tmp / "rna.h5ad"
    env.rna().write_h5ad(path)
    adata = ad.read_h5ad(path, backed="r")
    model = setup_rna(adata)
    model.train(**QUICK)
    assert model.get_latent_representation().shape == (adata.n_obs, 20)
    assert adata.isbacked  # read a minibatch at a time, never loaded whole


def _backed_mudata_trains_from_disk(env: Env) -> None:
    path = env.tmp / "cite.h5mu"
    env.cite().write(path)
    mdata = md.read_h5mu(path, backed=True)
    model = setup_cite(mdata)
    model.train(**QUICK)
    assert model.get_latent_representation().shape == (mdata.n_obs, 20)
    assert mdata.isbacked


def _backed_mosaic_mudata(env: Env) -> None:
    mdata = env.cite()
    with md.set_options(pull_on_update=False):
        mosaic = md.MuData({"rna": mdata["rna"][:100].copy(), "protein": mdata["protein"]})
    path = env.tmp / "mosaic.h5mu"
    mosaic.write(path)
    setup_cite(md.read_h5mu(path, backed=True))


def _renamed_protein(env: Env) -> None:
    mdata = env.cite()
    protein = mdata["protein"].copy()
    protein.obs_names = [f"{name}-1" for name in protein.obs_names]
    with md.set_options(pull_on_update=False):
        renamed = md.MuData({"rna": mdata["rna"], "protein": protein})
    renamed.obs["batch"] = "b0"
    setup_cite(renamed)


def _wrong_order(env: Env) -> None:
    mdata = env.cite()
    mdata.mod["protein"] = mdata["protein"][::-1].copy()
    setup_cite(mdata)


def _duplicate_in_modality(env: Env) -> None:
    mdata = env.cite()
    names = list(mdata["rna"].obs_names)
    names[1] = names[0]
    mdata["rna"].obs_names = names
    setup_cite(mdata)


def _empty_modality(env: Env) -> None:
    mdata = env.cite()
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": mdata["rna"], "protein": mdata["protein"][:, :0].copy()})
    mdata.obs["batch"] = "b0"
    setup_cite(mdata)


def _train(adata: ad.AnnData, **kwargs) -> None:
    setup_rna(adata).train(**{**QUICK, **kwargs})


class _PoisonAfterFirstEpoch(Callback):
    """Sets a decoder weight to NaN after the first epoch, as a diverging step would."""

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            with torch.no_grad():
                next(pl_module.module.decoders.parameters()).fill_(float("nan"))


def _nan_loss(env: Env) -> None:
    setup_rna(env.rna()).train(
        max_epochs=3, enable_progress_bar=False, callbacks=[_PoisonAfterFirstEpoch()]
    )


def _other_class(env: Env) -> None:
    adata = env.rna()
    scvi.model.SCVI.setup_anndata(adata, batch_key="batch")
    other = scvi.model.SCVI(adata)
    other.save(env.tmp / "scvi")
    OmniVI.load(env.tmp / "scvi", adata=env.rna())


def _other_version(env: Env) -> None:
    """A model saved by an omnivi whose module named a parameter differently."""
    folder = copy_saved(env)
    saved = torch.load(folder / MODEL_FILE, weights_only=False)
    saved["attr_dict"]["omnivi_version_"] = "0.0.9"
    state = saved["model_state_dict"]
    state["fusion.joint.weight"] = state.pop("fusion.mean_encoder.weight")
    torch.save(saved, folder / MODEL_FILE)
    OmniVI.load(folder, adata=env.rna())


def _damaged(env: Env, keep: float) -> None:
    folder = copy_saved(env)
    data = (folder / MODEL_FILE).read_bytes()
    (folder / MODEL_FILE).write_bytes(data[: int(len(data) * keep)] if keep else b"garbage")
    OmniVI.load(folder, adata=env.rna())


def _new_labels_are_unlabeled(env: Env) -> None:
    query = env.rna()
    query.obs["cell_type"] = query.obs["cell_type"].astype(str)
    query.obs.iloc[:10, query.obs.columns.get_loc("cell_type")] = "a type never seen"
    query.obs["batch"] = "new batch"
    predicted = env.model.predict(query)
    assert len(predicted) == query.n_obs
    assert "a type never seen" not in set(predicted)
    assert list(env.model.cell_types) == sorted(env.source.obs["cell_type"].unique())


def _cli(env: Env, path: Path) -> None:
    cli(["fit", str(path), "--out", str(env.tmp / "out.h5mu")])


def _cli_not_mudata(env: Env) -> None:
    path = env.tmp / "cells.h5ad"
    env.rna().write_h5ad(path)
    _cli(env, path)


def _cli_truncated(env: Env) -> None:
    path = env.tmp / "cells.h5mu"
    env.cite().write(path)
    path.write_bytes(path.read_bytes()[:2000])
    _cli(env, path)


def _cli_other_file(env: Env) -> None:
    path = env.tmp / "cells.csv"
    path.write_text("a,b\n1,2\n")
    _cli(env, path)


def _omnicl_without_labels(env: Env) -> None:
    adata = env.rna()
    OmniCL.setup_anndata(adata, batch_key="batch")
    OmniCL(adata)


def _empty_x(env: Env) -> None:
    adata = env.rna()
    adata.layers["counts"] = adata.X
    adata.X = None
    setup_rna(adata)


def _mosaic_obs_in_modality(env: Env) -> None:
    mdata = env.cite()
    with md.set_options(pull_on_update=False):
        mosaic = md.MuData({"rna": mdata["rna"][:100].copy(), "protein": mdata["protein"]})
    mosaic.mod["rna"].obs["sample"] = "s1"
    OmniVI.setup_mudata(
        mosaic,
        batch_key="sample",
        modalities={"rna_layer": "rna", "protein_layer": "protein", "batch_key": "rna"},
    )


def _renamed_genes(env: Env):
    query = env.rna()
    query.var_names = [f"ENSG{i:05d}" for i in range(query.n_vars)]
    return OmniVI.prepare_query_anndata(query, env.model)


def _fewer_genes(env: Env) -> None:
    with pytest.warns(UserWarning, match="missing ones are set to zero"):
        query = OmniVI.prepare_query_anndata(env.rna()[:, :20].copy(), env.model)
    assert list(query.var_names) == list(env.rna().var_names)
    assert query[:, 20:].X.sum() == 0  # the genes the query lacks are zero


def _extra_modality(env: Env) -> None:
    query = env.cite()
    query.mod["atac"] = ad.AnnData(sp.csr_matrix((query.n_obs, 5)), obs=query["rna"].obs)
    with pytest.warns(UserWarning, match=r"\['atac'\] are left out"):
        prepared = OmniVI.prepare_query_mudata(query, env.cite_model)
    assert list(prepared.mod) == ["rna", "protein"]


def _no_shared_modality(env: Env):
    with md.set_options(pull_on_update=False):
        query = md.MuData({"gex": env.rna()})
    return OmniVI.prepare_query_mudata(query, env.cite_model)


def _rna_onto_protein_reference(env: Env):
    with md.set_options(pull_on_update=False):
        protein = md.MuData({"protein": env.cite()["protein"]})
    protein.obs = env.cite().obs
    OmniVI.setup_mudata(protein, batch_key="batch", modalities={"protein_layer": "protein"})
    reference = OmniVI(protein)
    return OmniVI.prepare_query_anndata(env.rna(), reference)


def _new_batches_are_mapped(env: Env) -> None:
    query = env.rna()
    query.obs["batch"] = "a new batch"
    prepared = OmniVI.prepare_query_anndata(query, env.model)
    mapped = OmniVI.load_query_data(prepared, env.model)
    mapped.train(**QUICK)
    assert mapped.get_latent_representation().shape == (query.n_obs, 20)
    assert "a new batch" in mapped.adata_manager.get_state_registry("batch").categorical_mapping


def _no_label_column(env: Env):
    query = env.rna()
    del query.obs["cell_type"]
    return env.model.predict(query)


def _query_of_one_rare_type(env: Env):
    """25 copies of the reference's few cells of its rarest type."""
    rna = env.rna()
    rare = rna[rna.obs["cell_type"] == "rare"]
    query = ad.concat([rare] * (25 // rare.n_obs + 1))[:25].copy()
    query.obs_names = [f"q{i}" for i in range(query.n_obs)]
    return env.model.get_novelty_scores(query)


def _one_batch_reference(env: Env) -> None:
    adata = env.rna()
    adata.obs["batch"] = "the only batch"
    OmniVI.setup_anndata(adata, batch_key="batch", labels_key="cell_type")
    model = OmniVI(adata)
    model.train(**QUICK)
    query = env.rna()[:60].copy()
    query.obs["batch"] = "a new batch"
    with pytest.warns(UserWarning, match="knows no batch effect"):
        scores = model.get_novelty_scores(query)
    assert len(scores) == 60


def _mosaic_query_without_shared_modality(env: Env):
    cite = env.cite()
    with md.set_options(pull_on_update=False):
        query = md.MuData(
            {"rna": cite["rna"][:30].copy(), "protein": cite["protein"][30:60].copy()}
        )
    query.obs = cite.obs.iloc[:60].copy()
    prepared = OmniVI.prepare_query_mudata(query, env.cite_model)
    return env.cite_model.get_novelty_scores(prepared)


def _one_modality_latent_without_dropout(env: Env) -> None:
    mdata = env.cite()
    OmniVI.setup_mudata(
        mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "protein"}
    )
    model = OmniVI(mdata, modality_dropout=0.0)
    model.train(**QUICK)
    with pytest.warns(UserWarning, match="modality_dropout=0"):
        model.get_latent_representation(modality="rna")


def _encode_from_missing_modality(env: Env):
    cite = env.cite()
    with md.set_options(pull_on_update=False):
        query = md.MuData({"rna": cite["rna"][:40].copy(), "protein": cite["protein"]})
    query.obs = cite.obs.copy()
    prepared = OmniVI.prepare_query_mudata(query, env.cite_model)
    return env.cite_model.get_latent_representation(prepared, modality="rna")


CASES = [
    # setting up the data
    Case("no cells", lambda e: setup_rna(e.rna()[:0].copy()), ValueError, "has no cells"),
    Case("no features", lambda e: setup_rna(e.rna()[:, :0].copy()), ValueError, "no features"),
    Case("a modality without features", _empty_modality, ValueError, "no features"),
    Case("a view (`adata[mask]`)", lambda e: setup_rna(e.rna()[:50]), ValueError, r"\.copy\(\)"),
    Case("a backed AnnData (`backed='r'`)", _backed_anndata_trains_from_disk, None),
    Case("a backed MuData (`backed=True`)", _backed_mudata_trains_from_disk, None),
    Case(
        "a backed mosaic MuData",
        _backed_mosaic_mudata,
        ValueError,
        r"mosaic MuData.*backed.*mudata\.read_h5mu\(path\)",
    ),
    Case(
        "NaN values",
        lambda e: setup_rna(e.with_x(np.where(e.dense() > 3, np.nan, e.dense()))),
        ValueError,
        "NaN or infinite.*impute",
    ),
    Case(
        "infinite values",
        lambda e: setup_rna(e.with_x(np.where(e.dense() > 3, np.inf, e.dense()))),
        ValueError,
        "NaN or infinite.*impute",
    ),
    Case(
        "negative values under a count likelihood",
        lambda e: setup_rna(e.with_x(e.dense() - 1)),
        ValueError,
        "negative values.*raw counts.*'normal'",
    ),
    Case(
        "normalised (non-integer) values under a count likelihood",
        lambda e: setup_rna(e.with_x(np.log1p(e.dense()))),
        ValueError,
        "non-integer.*raw counts.*'normal'",
    ),
    Case(
        "duplicate cell names",
        lambda e: setup_rna(e.with_x(e.dense())[[0, 0, *range(1, 100)]].copy()),
        ValueError,
        r"duplicate cell names.*obs_names_make_unique",
    ),
    Case(
        "duplicate cell names in a modality",
        _duplicate_in_modality,
        ValueError,
        r"duplicate cell names.*obs_names_make_unique",
    ),
    Case(
        "modalities whose cell names do not match",
        _renamed_protein,
        ValueError,
        "No cell is in more than one.*obs_names match",
    ),
    Case(
        "a modality storing its cells in another order than the MuData",
        _wrong_order,
        ValueError,
        "another order.*Reorder",
    ),
    Case(
        "a batch or label column with missing values",
        lambda e: setup_rna(_nan_column(e, "batch")),
        ValueError,
        r"obs\['batch'\] has no value for 1 cell",
    ),
    Case(
        "a continuous covariate with missing values",
        _continuous_nan,
        ValueError,
        r"obs\['depth'\] has 1 missing",
    ),
    Case(
        "a batch, label or covariate column that does not exist",
        lambda e: OmniVI.setup_anndata(e.rna(), batch_key="sample"),
        KeyError,
        "'sample' not found.*available columns",
    ),
    Case(
        "a missing layer",
        lambda e: OmniVI.setup_anndata(e.rna(), layer="counts"),
        KeyError,
        "Layer 'counts' not found.*None to use",
    ),
    Case(
        "`contrastive_weight > 0`, or `OmniCL`, without labels",
        _omnicl_without_labels,
        ValueError,
        "labels_key",
    ),
    Case(
        "a modality name not in the MuData",
        lambda e: OmniVI.setup_mudata(e.cite(), modalities={"rna_layer": "gex"}),
        KeyError,
        r"no modality 'gex'; it has \['rna', 'protein'\]",
    ),
    Case(
        "an unknown key in `modalities`",
        lambda e: OmniVI.setup_mudata(e.cite(), modalities={"rna": "rna"}),
        ValueError,
        r"Unknown key.*valid keys.*modalities=\{'rna_layer'",
    ),
    Case(
        "no modality named",
        lambda e: OmniVI.setup_mudata(e.cite(), batch_key="batch"),
        ValueError,
        r"No modality given.*modalities=\{",
    ),
    Case("an empty `.X`", _empty_x, ValueError, r"`\.X` is empty.*layer"),
    Case(
        "`unlabeled_category` without `labels_key`",
        lambda e: OmniVI.setup_anndata(e.rna(), unlabeled_category="unknown"),
        ValueError,
        "without a labels_key",
    ),
    Case(
        "mosaic data whose `.obs` keys are read from one modality's `.obs`",
        _mosaic_obs_in_modality,
        ValueError,
        r"global mdata\.obs.*mdata.obs\['sample'\] =",
    ),
    # training
    Case(
        "fewer than 3 cells",
        lambda e: _train(e.rna()[:2].copy()),
        ValueError,
        "at least 3 cells",
    ),
    Case(
        "early stopping without validation cells",
        lambda e: _train(e.rna(), early_stopping=True, train_size=1.0),
        ValueError,
        "early_stopping needs validation cells.*train_size",
    ),
    Case(
        "a training loss that becomes NaN or infinite",
        _nan_loss,
        FloatingPointError,
        r"stopped at epoch 2.*learning rate.*lr=",
    ),
    # outputs
    Case(
        "data with other features than the model's",
        lambda e: e.model.get_latent_representation(e.rna()[:, :30].copy()),
        ValueError,
        "30 features, not the model's 40.*prepare_query",
    ),
    Case(
        "a modality the model does not have",
        lambda e: e.model.get_normalized_expression(modality="protein"),
        ValueError,
        r"not part of this model; it has \['rna'\]",
    ),
    Case(
        "`predict`, novelty or representations on a model without labels",
        lambda e: setup_rna(e.rna()).predict(),
        ValueError,
        "labels_key",
    ),
    Case(
        "a mixing-novelty query of fewer than 20 cells",
        lambda e: e.model.get_novelty_scores(e.rna()[:10].copy()),
        ValueError,
        "method='distance'",
    ),
    # mapping a query onto a reference
    Case(
        "a query sharing no feature with the reference",
        _renamed_genes,
        ValueError,
        "shares no feature.*same feature identifiers",
    ),
    Case("a query lacking some features", _fewer_genes, None),
    Case("a query modality the reference does not model", _extra_modality, None),
    Case(
        "a query with none of the reference's modalities",
        _no_shared_modality,
        ValueError,
        r"none of the reference's modalities.*Name its modalities",
    ),
    Case(
        "an AnnData query for a reference without RNA",
        _rna_onto_protein_reference,
        ValueError,
        "models no RNA.*prepare_query_mudata",
    ),
    Case(
        "a query not prepared (`load_query_data` on the raw query)",
        lambda e: OmniVI.load_query_data(e.rna()[:, 5:].copy(), e.model),
        ValueError,
        "prepare_query",
    ),
    Case("a query with new batches", _new_batches_are_mapped, None),
    Case("a query with labels the reference lacks", _new_labels_are_unlabeled, None),
    Case(
        "a query without the label column",
        _no_label_column,
        KeyError,
        r"no 'cell_type' column.*= 'unknown'",
    ),
    # annotation and novelty
    Case(
        "too few reference cells of the query's types",
        _query_of_one_rare_type,
        ValueError,
        "too few of them.*method='distance'",
    ),
    Case(
        "a reference with one training batch (mixing novelty)",
        _one_batch_reference,
        None,
    ),
    Case(
        "mixing novelty of all the training data",
        lambda e: e.model.get_novelty_scores(),
        ValueError,
        "not scored themselves.*indices=.*method='distance'",
    ),
    Case(
        "query cells sharing no measured modality (mixing novelty)",
        _mosaic_query_without_shared_modality,
        ValueError,
        "No modality is measured in every cell.*method='distance'",
    ),
    Case(
        "a one-modality latent of a model trained with `modality_dropout=0`",
        _one_modality_latent_without_dropout,
        None,
    ),
    Case(
        "encoding cells from a modality they lack (`modality=`, `from_modalities=`)",
        _encode_from_missing_modality,
        ValueError,
        "have none of.*nothing to encode them from",
    ),
    # saving and loading
    Case(
        "saving into a folder that holds a model",
        lambda e: e.model.save(e.saved),
        ValueError,
        "already exists.*overwrite=True",
    ),
    Case(
        "a folder without a saved model",
        lambda e: OmniVI.load(e.tmp / "nothing", adata=e.rna()),
        FileNotFoundError,
        "No saved model.*does not exist.*model.save",
    ),
    Case(
        "a damaged `model.pt`",
        lambda e: _damaged(e, keep=0),
        ValueError,
        "could not be read.*damaged or incomplete.*Save the model again",
    ),
    Case(
        "a truncated `model.pt` (a copy cut short)",
        lambda e: _damaged(e, keep=0.5),
        ValueError,
        "could not be read.*damaged or incomplete",
    ),
    Case(
        "a model saved by another class",
        _other_class,
        ValueError,
        r"saved by SCVI, not OmniVI.*SCVI\.load",
    ),
    Case(
        "a model saved by another omnivi version, whose model differs",
        _other_version,
        ValueError,
        r"saved by omnivi 0\.0\.9.*version that saved it",
    ),
    # data modules (data on disk)
    Case(
        "`OmniVI()` with neither data nor a registry",
        lambda e: OmniVI(),
        ValueError,
        "needs data: pass an AnnData",
    ),
    Case(
        "labels or `contrastive_weight > 0` with a data module's registry",
        lambda e: OmniVI(registry=e.datamodule().registry, contrastive_weight=100),
        ValueError,
        "not from a data module",
    ),
    Case(
        "`train()` of a data-module model without `datamodule=`",
        lambda e: OmniVI(registry=e.datamodule().registry).train(**QUICK),
        ValueError,
        r"train\(datamodule=datamodule\)",
    ),
    Case(
        "a data module whose minibatches hold one cell (`TileDBDataModule`'s default)",
        _one_cell_minibatches,
        ValueError,
        r"single cell.*batch_size=256",
    ),
    Case(
        "outputs of a data-module model without `dataloader=`",
        lambda e: e.datamodule_model()[0].get_latent_representation(),
        ValueError,
        r"dataloader=datamodule\.inference_dataloader",
    ),
    Case(
        "`dataloader=` and data together",
        _dataloader_and_data,
        ValueError,
        "not both",
    ),
    Case(
        "`save` of a data-module model without `datamodule=`",
        _save_without_datamodule,
        ValueError,
        "datamodule=datamodule",
    ),
    # the command line
    Case(
        "`omnivi fit` on a file that is not `.h5mu` / `.h5ad`",
        lambda e: _cli_other_file(e),
        SystemExit,
        "neither an .h5mu",
    ),
    Case(
        "`omnivi fit` on an AnnData",
        _cli_not_mudata,
        SystemExit,
        "reads a MuData",
    ),
    Case(
        "`omnivi fit` on a truncated file",
        _cli_truncated,
        SystemExit,
        "Could not read",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.doc for c in CASES])
def test_bad_input_gets_the_documented_answer(case, env, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.error is None:
            case.run(env)
            return
        with pytest.raises(case.error) as raised:
            case.run(env)
    # the command line prints its error instead of a traceback, and exits with status 2
    message = capsys.readouterr().err if case.error is SystemExit else str(raised.value)
    if case.error is SystemExit:
        assert raised.value.code == 2
    assert re.search(case.match, message, flags=re.DOTALL), message


def _documented_rows() -> list[str]:
    """First cells of the rows of the page's bad-input tables (header ``| input | ...``)."""
    rows, in_table = [], False
    for line in DOCS.read_text().splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        first = line.split("|")[1].strip()
        if first == "input":
            in_table = True
        elif in_table and not first.startswith("---"):
            rows.append(first)
    return rows


def test_the_documented_table_and_the_cases_are_the_same_rows():
    rows = _documented_rows()
    cases = [case.doc for case in CASES]
    assert len(rows) >= 25
    assert sorted(rows) == sorted(cases), (
        f"documented, no case: {sorted(set(rows) - set(cases))}; "
        f"case, not documented: {sorted(set(cases) - set(rows))}"
    )


def test_failed_setup_leaves_the_data_as_it_was(env, snapshot, unchanged):
    adata = env.with_x(np.where(env.dense() > 3, np.nan, env.dense()))
    before = snapshot(adata)
    with pytest.raises(ValueError, match="NaN"):
        setup_rna(adata)
    unchanged(before, adata)
