"""The methods a benchmark compares, each fitted the way its documentation says.

Every neural method is built with its constructor's defaults and trained with a plain
``train()``: its own epochs, early-stopping rule, batch size and learning rate apply. The only
exceptions are the run's seed, a cap on epochs where the caller sets one (the report says so),
and the fixed batch size and epochs of the separate speed comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from mudata import MuData

from omnivi.benchmark._classic import concatenated_pca, harmony, rna_pca
from omnivi.benchmark._data import BenchmarkData
from omnivi.benchmark._training import train_model

Family = Literal["classic", "scvi-tools", "omnivi"]

#: Label value no cell has: SCANVI is given every cell's label.
UNLABELED = "_omnivi_benchmark_unlabeled"

#: ``contrastive_weight`` of the supervised OmniVI, as the documentation recommends.
CONTRASTIVE_WEIGHT = 100.0


@dataclass(frozen=True)
class FitContext:
    """What one fit needs besides the data.

    Parameters
    ----------
    label
        Name of the fit in progress lines.
    seed
        The run's seed (already set in ``scvi.settings.seed``).
    workdir
        Folder shared by the run's fits (SCANVI reads the SCVI model saved there).
    cap
        Most epochs to train, if the caller caps this method; ``None`` for its default.
    overrides
        Arguments for ``train()`` of the speed comparison; empty otherwise.
    """

    label: str
    seed: int
    workdir: Path
    cap: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def train(self, model, curves: tuple[str, ...], **kwargs) -> dict[str, Any]:
        """Train ``model`` (see :func:`~omnivi.benchmark._training.train_model`)."""
        return train_model(model, self.label, curves, self.cap, **kwargs, **self.overrides)


#: What a fit returns: the embedding, the names of its cells, and its training record.
FitResult = tuple[np.ndarray, pd.Index, dict[str, Any] | None]


@dataclass(frozen=True)
class Method:
    """One method of the benchmark.

    Parameters
    ----------
    key
        Name on the command line (``--methods``).
    name
        Name in tables and figures.
    family
        ``"classic"``, ``"scvi-tools"`` or ``"omnivi"``.
    fit
        ``fit(mdata, data, context) -> (embedding, cell names, training record or None)``.
    supervised
        Whether it reads the cell-type labels.
    needs
        Modalities it reads; the data must have them all.
    multimodal
        Needs at least two modalities (a concatenation).
    mosaic
        ``"no"``: needs every cell in every modality; ``"yes"``: takes mosaic data too;
        ``"only"``: meant for mosaic data.
    after
        Key of the method whose trained model it starts from (SCANVI: SCVI).
    """

    key: str
    name: str
    family: Family
    fit: Callable[[MuData, BenchmarkData, FitContext], FitResult]
    supervised: bool = False
    needs: frozenset[str] = frozenset({"rna"})
    multimodal: bool = False
    mosaic: Literal["no", "yes", "only"] = "no"
    after: str | None = None

    def unavailable(self, data: BenchmarkData) -> str | None:
        """Why the method cannot run on ``data``; ``None`` if it can."""
        missing = sorted(self.needs - set(data.modalities))
        if missing:
            return f"needs {' and '.join(sorted(self.needs))}; the data lacks {missing}"
        if self.multimodal and len(data.modalities) < 2:
            return "needs at least two modalities"
        if data.mosaic and self.mosaic == "no":
            return "needs every cell in every modality (the data is mosaic)"
        if not data.mosaic and self.mosaic == "only":
            return "is the baseline of mosaic data (every cell here has every modality)"
        return None


# ---------------------------------------------------------------------------- classic
def _batches(mdata: MuData, data: BenchmarkData) -> np.ndarray:
    return mdata.obs[data.batch_key].to_numpy()


def fit_pca(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """PCA of log-normalised, scaled RNA."""
    return rna_pca(mdata["rna"], context.seed), mdata["rna"].obs_names, None


def fit_harmony_pca(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """Harmony on the RNA PCA."""
    pca = rna_pca(mdata["rna"], context.seed)
    batches = mdata["rna"].obs[data.batch_key].to_numpy()
    return harmony(pca, batches, context.seed), mdata["rna"].obs_names, None


def fit_concatenated_pca(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """Per-modality PCA / LSI, equally weighted, side by side (zero-padded in mosaic data)."""
    return concatenated_pca(mdata, seed=context.seed), mdata.obs_names, None


def fit_harmony_concatenated(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """Harmony on the concatenated per-modality PCA."""
    joint = concatenated_pca(mdata, seed=context.seed)
    return harmony(joint, _batches(mdata, data), context.seed), mdata.obs_names, None


# ------------------------------------------------------------------------- scvi-tools
_ELBO = ("elbo_validation", "elbo_train")


def _scvi_model_dir(context: FitContext) -> Path:
    return context.workdir / f"scvi_seed{context.seed}"


def fit_scvi(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """scvi-tools' SCVI on the RNA counts; the model is saved for SCANVI."""
    import scvi

    rna = mdata["rna"].copy()
    scvi.model.SCVI.setup_anndata(rna, batch_key=data.batch_key)
    model = scvi.model.SCVI(rna)
    training = context.train(model, _ELBO)
    model.save(_scvi_model_dir(context), overwrite=True)
    return model.get_latent_representation(), rna.obs_names, training


def fit_scanvi(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """scvi-tools' SCANVI, started from this seed's SCVI model, every cell labelled."""
    import scvi
    from scvi.model._utils import get_max_epochs_heuristic

    rna = mdata["rna"].copy()
    reference = scvi.model.SCVI.load(_scvi_model_dir(context), adata=rna)
    model = scvi.model.SCANVI.from_scvi_model(
        reference, unlabeled_category=UNLABELED, labels_key=data.label_key
    )
    # SCANVI.train's rule for a model pre-trained by SCVI: a third of the heuristic, 2-10.
    default = min(10, max(2, round(get_max_epochs_heuristic(rna.n_obs) / 3)))
    training = context.train(model, _ELBO, default_epochs=default)
    return model.get_latent_representation(), rna.obs_names, training


def fit_totalvi(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """scvi-tools' TOTALVI on RNA and protein counts."""
    import scvi

    cite = MuData({"rna": mdata["rna"].copy(), "protein": mdata["protein"].copy()})
    scvi.model.TOTALVI.setup_mudata(
        cite,
        batch_key=data.batch_key,
        modalities={"rna_layer": "rna", "protein_layer": "protein", "batch_key": "rna"},
    )
    model = scvi.model.TOTALVI(cite)
    training = context.train(model, _ELBO)
    return model.get_latent_representation(), cite.obs_names, training


def fit_multivi(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """scvi-tools' MULTIVI on RNA and ATAC counts (a MuData with RNA first)."""
    import scvi

    multiome = MuData({"rna": mdata["rna"].copy(), "atac": mdata["atac"].copy()})
    scvi.model.MULTIVI.setup_mudata(
        multiome,
        batch_key=data.batch_key,
        modalities={"rna_layer": "rna", "atac_layer": "atac", "batch_key": "rna"},
    )
    model = scvi.model.MULTIVI(multiome)
    curves = ("reconstruction_loss_validation", "reconstruction_loss_train")
    training = context.train(model, curves)
    return model.get_latent_representation(), multiome.obs_names, training


# ----------------------------------------------------------------------------- omnivi
def _omnivi_data(model_cls, mdata: MuData, data: BenchmarkData, labels: bool):
    """Set up ``mdata`` (or its RNA alone, with ``setup_anndata``) for an omnivi model."""
    label_key = data.label_key if labels else None
    if list(mdata.mod) == ["rna"]:
        rna = mdata["rna"].copy()
        model_cls.setup_anndata(rna, batch_key=data.batch_key, labels_key=label_key)
        return rna
    mdata = mdata.copy()
    model_cls.setup_mudata(
        mdata,
        batch_key=data.batch_key,
        labels_key=label_key,
        modalities={f"{m}_layer": m for m in mdata.mod},
    )
    return mdata


def _fit_omnivi(
    mdata: MuData, data: BenchmarkData, context: FitContext, labels: bool = False, **options
) -> FitResult:
    from omnivi.model import OmniVI

    registered = _omnivi_data(OmniVI, mdata, data, labels)
    model = OmniVI(registered, **options)
    training = context.train(model, _ELBO)
    return model.get_latent_representation(), registered.obs_names, training


def fit_omnivi(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """OmniVI at its defaults (a VAE, no labels)."""
    return _fit_omnivi(mdata, data, context)


def fit_omnivi_ae(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """OmniVI as a deterministic autoencoder."""
    return _fit_omnivi(mdata, data, context, latent_distribution="deterministic")


def fit_omnivi_contrastive(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """OmniVI with the contrastive objectives on the labels."""
    return _fit_omnivi(mdata, data, context, labels=True, contrastive_weight=CONTRASTIVE_WEIGHT)


def fit_omnicl(mdata: MuData, data: BenchmarkData, context: FitContext) -> FitResult:
    """Fit the encoder-only contrastive OmniCL on the labels."""
    from omnivi.model import OmniCL

    registered = _omnivi_data(OmniCL, mdata, data, labels=True)
    model = OmniCL(registered)
    training = context.train(model, ("validation_loss", "train_loss"))
    return model.get_latent_representation(), registered.obs_names, training


METHODS: dict[str, Method] = {
    method.key: method
    for method in (
        Method("pca", "PCA (RNA)", "classic", fit_pca),
        Method("harmony_pca", "Harmony (RNA PCA)", "classic", fit_harmony_pca),
        Method(
            "concat_pca",
            "concat-PCA",
            "classic",
            fit_concatenated_pca,
            needs=frozenset(),
            multimodal=True,
        ),
        Method(
            "harmony_concat_pca",
            "Harmony (concat-PCA)",
            "classic",
            fit_harmony_concatenated,
            needs=frozenset(),
            multimodal=True,
        ),
        Method(
            "padded_pca",
            "padded concat-PCA",
            "classic",
            fit_concatenated_pca,
            needs=frozenset(),
            mosaic="only",
        ),
        Method(
            "harmony_padded_pca",
            "Harmony (padded concat-PCA)",
            "classic",
            fit_harmony_concatenated,
            needs=frozenset(),
            mosaic="only",
        ),
        Method("scvi", "SCVI", "scvi-tools", fit_scvi),
        Method("scanvi", "SCANVI", "scvi-tools", fit_scanvi, supervised=True, after="scvi"),
        Method(
            "totalvi",
            "TOTALVI",
            "scvi-tools",
            fit_totalvi,
            needs=frozenset({"rna", "protein"}),
        ),
        Method("multivi", "MULTIVI", "scvi-tools", fit_multivi, needs=frozenset({"rna", "atac"})),
        Method("omnivi", "OmniVI", "omnivi", fit_omnivi, needs=frozenset(), mosaic="yes"),
        Method(
            "omnivi_ae",
            "OmniVI (AE)",
            "omnivi",
            fit_omnivi_ae,
            needs=frozenset(),
            mosaic="yes",
        ),
        Method(
            "omnivi_contrastive",
            "OmniVI (contrastive)",
            "omnivi",
            fit_omnivi_contrastive,
            supervised=True,
            needs=frozenset(),
            mosaic="yes",
        ),
        Method(
            "omnicl",
            "OmniCL",
            "omnivi",
            fit_omnicl,
            supervised=True,
            needs=frozenset(),
            mosaic="yes",
        ),
    )
}

#: The unintegrated embedding scib-metrics compares with (principal component regression).
BASELINE = {False: "pca", True: "padded_pca"}

#: scvi-tools peers of OmniVI in the speed comparison, with OmniVI's target speed ratio.
SPEED_PEERS: dict[str, float | None] = {"totalvi": 1.5, "multivi": 3.0, "scvi": None}

#: Batch size and early stopping of the speed comparison, the same for both models.
SPEED_SETTINGS = {"batch_size": 256, "early_stopping": False}
