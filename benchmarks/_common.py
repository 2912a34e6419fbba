"""Helpers shared by the benchmark scripts: quiet logging, machine facts, scib-metrics."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def quiet_libraries() -> None:
    """Silence the per-fit chatter of Lightning, scvi-tools, scib-metrics and the data
    libraries."""
    import scvi

    scvi.settings.verbosity = logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for message in (
        "does not have many workers",  # Lightning: single-process data loading is the setting
        "smaller than the logging interval",  # Lightning, on small data sets
        "lr scheduler dict contains the key",  # Lightning, on TOTALVI's manual optimisation
        "PCR comparison score is negative",  # scib-metrics: clipped to 0, expected for PCA
        "Initializing zero-element tensors",  # MULTIVI's unused protein layers
    ):
        warnings.filterwarnings("ignore", message=f".*{message}.*")
    warnings.filterwarnings("ignore", module="anndata")
    warnings.filterwarnings("ignore", module="mudata")


def _cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU, core and thread counts, library versions and date."""
    import scib_metrics
    import scvi
    import torch

    import omnivi

    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scvi-tools": scvi.__version__,
        "scib-metrics": scib_metrics.__version__,
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


def command_line(
    name: str,
    description: str,
    run: Callable[[argparse.Namespace], dict],
    report: Callable[[dict], str],
    argv: list[str] | None = None,
) -> None:
    """Parse a benchmark's options, run it, write ``<name>.json`` and ``<name>.md``.

    Options: ``--quick`` (few epochs; output to a temporary folder), ``--out-dir`` (default
    ``benchmarks/results``), ``--data-dir`` (folder of the data sets).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="few epochs, temp output folder")
    parser.add_argument("--out-dir", default=None, help="default benchmarks/results")
    parser.add_argument("--data-dir", default=None, help="folder of the data sets")
    args = parser.parse_args(argv)
    quick_dir = Path(tempfile.gettempdir()) / f"omnivi-{name}-quick"
    default_dir = Path(__file__).resolve().parent / "results"
    out_dir = Path(args.out_dir or (quick_dir if args.quick else default_dir))
    results = run(args)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, default=float))
    text = report(results)
    (out_dir / f"{name}.md").write_text(text)
    print(text)
