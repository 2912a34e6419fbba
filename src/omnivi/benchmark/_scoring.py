"""Scoring embeddings with scib-metrics, and the facts of the machine they were made on."""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

#: Weights of scib-metrics' total score.
BATCH_WEIGHT, BIO_WEIGHT = 0.4, 0.6


def scib_scores(
    obs: pd.DataFrame,
    embeddings: dict[str, np.ndarray],
    batch_key: str,
    label_key: str,
    unintegrated: str,
) -> dict[str, dict[str, float]]:
    """scib-metrics of each embedding, not min-max scaled, in one ``Benchmarker`` run.

    Default bio-conservation and batch-correction metrics; total = 0.4 batch + 0.6 bio.

    Parameters
    ----------
    obs
        ``.obs`` of the cells (batch and label columns), in the embeddings' row order.
    embeddings
        Name -> cells x dimensions; ``unintegrated`` must be one of them.
    batch_key, label_key
        Columns of ``obs``.
    unintegrated
        Name of the embedding the others are compared with by principal component
        regression (the data before integration).

    Returns
    -------
    Name -> every metric and the aggregates (``Batch correction``, ``Bio conservation``,
    ``Total``).
    """
    import scib_metrics
    from scib_metrics.benchmark import Benchmarker

    scib_metrics.settings.verbosity = logging.WARNING
    for name in ("scib_metrics", "jax"):
        logging.getLogger(name).setLevel(logging.WARNING)
    scored = ad.AnnData(obs=obs[list(dict.fromkeys((batch_key, label_key)))].copy())
    keys = {name: f"X_emb{i}" for i, name in enumerate(embeddings)}
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
    with warnings.catch_warnings():
        # an embedding with more batch variance than the unintegrated one scores 0 (expected)
        warnings.filterwarnings("ignore", message=".*PCR comparison score is negative.*")
        bench.benchmark()
    table = bench.get_results(min_max_scale=False).drop(index="Metric Type").astype(float)
    return {name: table.loc[key].to_dict() for name, key in keys.items()}


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def commit() -> str | None:
    """Return the git commit of the omnivi source tree, if it is a checkout."""
    import subprocess

    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip() or None


def source_digest() -> str:
    """Return a short hash of omnivi's Python source, the code every omnivi fit runs.

    Unlike the commit it changes with uncommitted edits and not with commits that leave the
    package alone (documentation, benchmark scripts), so fits can be reused across both.
    """
    import hashlib

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def machine_info() -> dict[str, Any]:
    """CPU, cores, GPU, library versions, omnivi's commit and source hash, date of the run."""
    import torch

    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        **{
            package: _version(package)
            for package in ("omnivi", "torch", "scvi-tools", "scib-metrics", "harmonypy")
        },
        "omnivi commit": commit(),
        "omnivi source": source_digest(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
