"""The end-to-end job behind the command line: set up, train, embed, plot, score."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from mudata import MuData

from omnivi import pl, tl
from omnivi._constants import LATENT_OBSM_KEY, LAYER_ARGS, MODALITIES
from omnivi.model import OmniVI

logger = logging.getLogger("omnivi")

#: Modality names in a MuData that :func:`guess_modalities` recognises.
KNOWN_NAMES = {
    "rna": ("rna", "gex", "gene expression"),
    "protein": ("protein", "prot", "adt", "antibody capture"),
    "atac": ("atac", "peaks", "chromatin"),
}


def guess_modalities(mdata: MuData) -> dict[str, str]:
    """Map omnivi modalities to the MuData's modality names by common naming conventions.

    Parameters
    ----------
    mdata
        A MuData whose modalities are called e.g. ``rna``/``gex``, ``adt``/``prot``,
        ``atac``/``peaks``.
    """
    found = {
        modality: name
        for name in mdata.mod
        for modality, aliases in KNOWN_NAMES.items()
        if name.lower() in aliases
    }
    if not found:
        raise ValueError(
            f"Could not tell which of the MuData's modalities {list(mdata.mod)} are RNA, "
            "protein or ATAC. Name them, e.g. --modalities rna=gex,protein=adt."
        )
    return found


def _obs_owner(mdata: MuData, key: str | None, modality_names: list[str]) -> str | None:
    """Name of the modality whose ``.obs`` holds ``key``; ``None`` if the global ``.obs`` does."""
    if key is None or key in mdata.obs.columns:
        return None
    for name in modality_names:
        if key in mdata[name].obs.columns:
            return name
    raise KeyError(f"Column {key!r} is neither in mdata.obs nor in any modality's .obs.")


def integrate(
    mdata: MuData,
    modalities: dict[str, str],
    batch_key: str | None = None,
    labels_key: str | None = None,
    max_epochs: int | None = None,
    **model_kwargs,
) -> OmniVI:
    """Set up, train OmniVI and write the latent to ``mdata.obsm["X_omnivi"]``.

    Parameters
    ----------
    mdata
        The data; every cell must be present in each modality used.
    modalities
        omnivi modality (``"rna"``, ``"protein"``, ``"atac"``) to name in ``mdata``.
    batch_key, labels_key
        Columns of ``mdata.obs`` or of a modality's ``.obs``.
    max_epochs
        Most training epochs (training stops early when the validation loss stalls);
        ``None`` uses scvi-tools' heuristic.
    **model_kwargs
        Passed to :class:`~omnivi.model.OmniVI`.
    """
    unknown = set(modalities) - set(MODALITIES)
    if unknown:
        raise ValueError(f"Unknown modality {sorted(unknown)}; choose among {MODALITIES}.")
    names = list(modalities.values())
    mapping = {LAYER_ARGS[m]: name for m, name in modalities.items()}
    for arg, key in (("batch_key", batch_key), ("labels_key", labels_key)):
        owner = _obs_owner(mdata, key, names)
        if owner is not None:
            mapping[arg] = owner
    OmniVI.setup_mudata(mdata, batch_key=batch_key, labels_key=labels_key, modalities=mapping)
    model = OmniVI(mdata, **model_kwargs)
    logger.info("%s", model._model_summary_string)
    model.train(max_epochs=max_epochs, early_stopping=True)
    model.store_latent()
    return model


def _obs_column(mdata: MuData, key: str, modality_names: list[str]) -> np.ndarray:
    owner = _obs_owner(mdata, key, modality_names)
    return (mdata.obs[key] if owner is None else mdata[owner].obs[key]).to_numpy()


def report(
    model: OmniVI,
    mdata: MuData,
    out_dir: Path,
    batch_key: str | None,
    labels_key: str | None,
    extra_metrics: dict | None = None,
) -> dict:
    """Compute a UMAP of the latent, write the figures and a metrics file into ``out_dir``.

    Writes ``umap.png`` (coloured by cell type and batch), ``loss.png`` and ``metrics.json``;
    stores the UMAP in ``mdata.obsm["X_umap"]``.

    Returns
    -------
    The metrics written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    latent = mdata.obsm[LATENT_OBSM_KEY]
    names = list(mdata.mod)
    obs = mdata.obs[[]].copy()
    color = [k for k in (labels_key, batch_key) if k is not None]
    for key in color:
        obs[key] = _obs_column(mdata, key, names)
    mdata.obsm["X_umap"] = tl.umap(latent)
    if color:
        pl.embedding(mdata.obsm["X_umap"], obs, color, title="OmniVI latent").savefig(
            out_dir / "umap.png", dpi=120, bbox_inches="tight"
        )
    pl.loss_curves(model.history).savefig(out_dir / "loss.png", dpi=120, bbox_inches="tight")

    metrics = {
        "n_cells": int(mdata.n_obs),
        "modalities": model.modalities,
        "epochs": len(model.history["elbo_train"]),
        "final_validation_loss": float(model.history["elbo_validation"].iloc[-1, 0]),
        **(extra_metrics or {}),
    }
    if labels_key is not None:
        metrics["knn_label_accuracy"] = tl.knn_label_accuracy(latent, obs[labels_key])
    if batch_key is not None and obs[batch_key].nunique() > 1:
        metrics["batch_mixing_entropy"] = tl.batch_mixing_entropy(latent, obs[batch_key])
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
