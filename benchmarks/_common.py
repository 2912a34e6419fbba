"""Helpers shared by the benchmark scripts: quiet logging, machine facts, scib-metrics."""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import warnings
from typing import Any

import numpy as np


def quiet_libraries() -> None:
    """Silence per-fit chatter of Lightning, scvi-tools and the data libraries."""
    import scvi

    scvi.settings.verbosity = logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", module="anndata")
    warnings.filterwarnings("ignore", module="mudata")


def machine_info() -> dict[str, Any]:
    """Library versions, core count and date."""
    import scvi
    import torch

    import omnivi

    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scvi-tools": scvi.__version__,
        "omnivi": omnivi.__version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def scib_table(
    obs,
    embeddings: dict[str, np.ndarray],
    batch_key: str,
    label_key: str,
    unintegrated: str,
) -> dict[str, dict[str, float]]:
    """scib-metrics of each embedding, unscaled, with ``unintegrated`` as the baseline.

    Parameters
    ----------
    obs
        ``.obs`` of the cells (batch and label columns).
    embeddings
        Name -> cells x dimensions; ``unintegrated`` must be one of them.
    batch_key, label_key
        Columns of ``obs``.
    unintegrated
        Name of the embedding scib-metrics compares the others with (principal component
        regression).

    Returns
    -------
    Name -> every metric and the aggregates (``Batch correction``, ``Bio conservation``,
    ``Total``).
    """
    import anndata as ad
    import scib_metrics
    from scib_metrics.benchmark import Benchmarker

    scib_metrics.settings.verbosity = logging.WARNING
    scored = ad.AnnData(obs=obs[[batch_key, label_key]].copy())
    keys = {name: f"X_{name.replace(' ', '_')}" for name in embeddings}
    for name, embedding in embeddings.items():
        scored.obsm[keys[name]] = np.asarray(embedding, dtype=np.float32)
    bench = Benchmarker(
        scored,
        batch_key=batch_key,
        label_key=label_key,
        embedding_obsm_keys=list(keys.values()),
        pre_integrated_embedding_obsm_key=keys[unintegrated],
        n_jobs=os.cpu_count() or 1,
        progress_bar=False,
    )
    bench.benchmark()
    table = bench.get_results(min_max_scale=False).drop(index="Metric Type").astype(float)
    return {name: table.loc[key].to_dict() for name, key in keys.items()}
