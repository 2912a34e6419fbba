"""One fit of one method, in a process of its own: ``python -m omnivi.benchmark._worker``.

Its peak memory is then its own. It writes ``PREFIX.npz`` (the embedding and its cells) and
``PREFIX.json`` (status, seconds, memory, the training record, or the error).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Read from ``VmHWM`` in ``/proc/self/status``: on Linux ``getrusage``'s ``ru_maxrss``
    survives ``fork`` + ``exec``, so a worker would report its parent's peak whenever that is
    larger. ``ru_maxrss`` is the fallback where there is no ``/proc``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quiet_libraries() -> None:
    """Silence the per-fit chatter of Lightning, scvi-tools and the data libraries."""
    import scvi

    scvi.settings.verbosity = logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for message in (
        "does not have many workers",  # Lightning: single-process data loading is the setting
        "smaller than the logging interval",  # Lightning, on small data sets
        "The number of training batches",  # Lightning, on small data sets
        "lr scheduler dict contains the key",  # Lightning, on TOTALVI's manual optimisation
        "Initializing zero-element tensors",  # MULTIVI's unused protein layers
        "Cannot join columns with the same name",  # mudata
    ):
        warnings.filterwarnings("ignore", message=f".*{message}.*")
    warnings.filterwarnings("ignore", module="anndata")
    warnings.filterwarnings("ignore", module="mudata")


def run(
    data_json: Path,
    method_key: str,
    seed: int,
    prefix: Path,
    cap: int | None,
    speed_epochs: int | None,
    threads: int | None,
) -> dict:
    """Fit ``method_key`` on the described data; write and return its record."""
    quiet_libraries()
    import scvi
    import torch

    from omnivi.benchmark._data import BenchmarkData, load_data
    from omnivi.benchmark._methods import METHODS, SPEED_SETTINGS, FitContext

    if threads is not None:
        torch.set_num_threads(threads)
    method = METHODS[method_key]
    data = BenchmarkData.from_json(data_json.read_text())
    mdata = load_data(data)
    baseline = peak_rss_mib()
    scvi.settings.seed = seed
    overrides = {} if speed_epochs is None else {**SPEED_SETTINGS, "max_epochs": speed_epochs}
    context = FitContext(
        label=f"{method.name}, seed {seed}",
        seed=seed,
        workdir=prefix.parent,
        cap=cap,
        overrides=overrides,
    )
    start = time.perf_counter()
    embedding, obs_names, training = method.fit(mdata, data, context)
    seconds = time.perf_counter() - start
    np.savez(
        prefix.with_suffix(".npz"),
        embedding=np.asarray(embedding, dtype=np.float32),
        obs_names=np.asarray(obs_names, dtype=str),
    )
    return {
        "status": "ok",
        "seconds": seconds,
        "rss_baseline_mib": baseline,
        "rss_peak_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
        "n_dims": int(np.shape(embedding)[1]),
        "training": training,
    }


def main(argv: list[str] | None = None) -> int:
    """Run one fit; exit 1 (with the error in the JSON) if it fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_json", type=Path)
    parser.add_argument("method")
    parser.add_argument("seed", type=int)
    parser.add_argument("prefix", type=Path)
    parser.add_argument("--cap", type=int, default=None)
    parser.add_argument("--speed-epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        record = run(
            args.data_json,
            args.method,
            args.seed,
            args.prefix,
            args.cap,
            args.speed_epochs,
            args.threads,
        )
    except Exception as error:  # reported in the table; the other methods go on
        traceback.print_exc()
        record = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
    args.prefix.with_suffix(".json").write_text(json.dumps(record, indent=2))
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
