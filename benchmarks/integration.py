"""Benchmark OmniVI against scvi-tools' peers: training speed, memory, convergence, scib score.

Three tasks, each fitting OmniVI (its defaults) and one scvi-tools peer (its defaults) on the
same cells, at batch size 256, with the same early stopping:

- ``mop_multiome``: ``mop_rna_atac`` (RNA + ATAC), OmniVI against ``scvi.model.MULTIVI``;
- ``mop_rna``: the RNA of ``mop_rna_atac`` alone, OmniVI against ``scvi.model.SCVI``;
- ``bmmc_cite``: ``bmmc_cite_small`` (RNA + protein), OmniVI against ``scvi.model.TOTALVI``.

Each fit runs in its own subprocess (``--worker TASK MODEL``) so that its peak memory is its
own. The parent then scores all latents of a task, plus an unintegrated PCA of the RNA, in one
``scib_metrics`` Benchmarker, prints side-by-side tables with the targets, and writes
``integration.json`` and ``integration.md``.

Usage::

    . .venv/bin/activate
    python benchmarks/integration.py                      # full run, writes benchmarks/results/
    python benchmarks/integration.py --quick              # 3-epoch smoke test, to a temp dir
    python benchmarks/integration.py --tasks bmmc_cite --max-epochs 50

Small data sets train in seconds, so one fit's speed and score are at the mercy of noise
(other processes, the random split). Such a task lists several seeds: each model is fitted
once per seed, the models taking turns, and the task reports the median speed and the mean
scib-metrics scores over seeds, with the per-seed figures beside them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_info, quiet_libraries, scib_table

BATCH_SIZE = 256
DEFAULT_MAX_EPOCHS = 100
QUICK_MAX_EPOCHS = 3
PATIENCE = 10
MONITOR = "elbo_validation"
TRAIN_SIZE = 0.9
SEEDS = (0,)
N_PCS = 50
PCA_KEY = "X_pca"
OMNIVI = "OmniVI"
ROOT = Path(__file__).resolve().parent
DEFAULT_OUT_DIR = ROOT / "results"


# --------------------------------------------------------------------------- specifications
@dataclass(frozen=True)
class Fit:
    """How one model is set up on one task.

    Parameters
    ----------
    model
        Display name, e.g. ``"MULTIVI"``.
    model_cls
        Dotted path of the model class, imported only by the worker that fits it.
    modalities
        Modalities of the data set the model sees, in the order the MuData is rebuilt with
        (MULTIVI needs RNA before ATAC). One modality means ``setup_anndata`` on it.
    modality_map
        The ``modalities`` argument of ``setup_mudata`` (unused for ``setup_anndata``).
    """

    model: str
    model_cls: str
    modalities: tuple[str, ...]
    modality_map: dict[str, str] = field(default_factory=dict)

    @property
    def uses_mudata(self) -> bool:
        """Whether the model is set up with ``setup_mudata`` (else ``setup_anndata``)."""
        return len(self.modalities) > 1


@dataclass(frozen=True)
class Task:
    """One comparison: a data set, OmniVI and one peer, and the targets OmniVI must meet.

    Parameters
    ----------
    name
        Task name, as given to ``--tasks``.
    dataset
        Data set name for :func:`omnivi.data.read_dataset`.
    batch_key, label_key
        ``.obs`` columns of batches and cell types (read from the RNA modality).
    fits
        OmniVI first, then its peer.
    min_speed_ratio
        Target: OmniVI's training cells/s divided by the peer's must be at least this.
    dense_modalities
        Modalities converted to dense arrays before setup, for both models alike (TOTALVI
        refuses sparse protein counts).
    profile
        Whether the OmniVI worker also profiles a few training steps.
    max_epochs
        Epoch cap of every fit (early stopping usually ends a fit sooner).
    seeds
        One fit of each model per seed; speed and scores are aggregated over seeds.
    """

    name: str
    dataset: str
    batch_key: str
    label_key: str
    fits: tuple[Fit, Fit]
    min_speed_ratio: float
    dense_modalities: tuple[str, ...] = ()
    profile: bool = False
    max_epochs: int = DEFAULT_MAX_EPOCHS
    seeds: tuple[int, ...] = SEEDS

    @property
    def peer(self) -> Fit:
        """The scvi-tools model OmniVI is compared with."""
        return self.fits[1]

    def fit(self, model: str) -> Fit:
        """The fit of the model named ``model``."""
        for candidate in self.fits:
            if candidate.model == model:
                return candidate
        raise KeyError(f"Task {self.name!r} has no model {model!r}.")


_MULTIOME = {"rna_layer": "rna", "atac_layer": "atac", "batch_key": "rna"}
_CITE = {"rna_layer": "rna", "protein_layer": "adt", "batch_key": "rna"}

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "mop_multiome",
            "mop_rna_atac",
            "sample",
            "cell_type",
            fits=(
                Fit(OMNIVI, "omnivi.model.OmniVI", ("rna", "atac"), _MULTIOME),
                Fit("MULTIVI", "scvi.model.MULTIVI", ("rna", "atac"), _MULTIOME),
            ),
            min_speed_ratio=3.0,
            profile=True,
        ),
        Task(
            "mop_rna",
            "mop_rna_atac",
            "sample",
            "cell_type",
            fits=(
                Fit(OMNIVI, "omnivi.model.OmniVI", ("rna",)),
                Fit("SCVI", "scvi.model.SCVI", ("rna",)),
            ),
            min_speed_ratio=0.8,
        ),
        Task(
            "bmmc_cite",
            "bmmc_cite_small",
            "batch",
            "cell_type",
            fits=(
                Fit(OMNIVI, "omnivi.model.OmniVI", ("rna", "adt"), _CITE),
                Fit("TOTALVI", "scvi.model.TOTALVI", ("rna", "adt"), _CITE),
            ),
            min_speed_ratio=1.5,
            dense_modalities=("adt",),
            max_epochs=400,
            seeds=(0, 1, 2, 3, 4),
        ),
    )
}


# ------------------------------------------------------------------------------ utilities
def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Read from ``VmHWM`` in ``/proc/self/status``: on Linux ``getrusage``'s ``ru_maxrss``
    survives ``fork`` + ``exec``, so a worker would report its parent's peak (the parent
    holds the scib-metrics state of earlier tasks) whenever that is larger than its own.
    ``ru_maxrss`` is the fallback where there is no ``/proc``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_object(path: str) -> Any:
    """Import ``package.module.Name``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def load_fit_data(task: Task, fit: Fit, data_dir: str | None):
    """Read the task's data set and shape it as ``fit`` needs it.

    Returns a MuData rebuilt with ``fit.modalities`` in that order, or for a single modality
    that modality's AnnData. ``task.dense_modalities`` are made dense.
    """
    import mudata as md
    from scipy import sparse

    from omnivi.data import read_dataset

    mdata = read_dataset(task.dataset, data_dir)
    mods = {name: mdata[name] for name in fit.modalities}
    for name in task.dense_modalities:
        if name in mods and sparse.issparse(mods[name].X):
            mods[name].X = mods[name].X.toarray()
    if not fit.uses_mudata:
        return mods[fit.modalities[0]]
    return md.MuData(mods)


def build_model(fit: Fit, task: Task, data):
    """Register ``data`` with the model class of ``fit`` and return a new model."""
    model_cls = import_object(fit.model_cls)
    if fit.uses_mudata:
        model_cls.setup_mudata(data, batch_key=task.batch_key, modalities=dict(fit.modality_map))
    else:
        model_cls.setup_anndata(data, batch_key=task.batch_key)
    return model_cls(data)


def epoch_timer():
    """A Lightning callback recording the wall-clock start and end of every training epoch.

    An epoch's end comes after its validation pass, so the durations include validation.
    """
    from lightning.pytorch.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self):
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.starts.append(time.perf_counter())

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.ends.append(time.perf_counter())

    return EpochTimer()


def train_kwargs(max_epochs: int, callbacks: list | None = None) -> dict[str, Any]:
    """Training options shared by every model.

    Early stopping is given as a callback rather than through ``early_stopping=True``:
    MULTIVI's ``train`` fixes its own monitor and patience (reconstruction loss, 50), and this
    way every model stops by the same rule (``elbo_validation``, patience 10).
    """
    from scvi.train._callbacks import LoudEarlyStopping

    stopper = LoudEarlyStopping(
        monitor=MONITOR, patience=PATIENCE, mode="min", min_delta=0.0, warmup_epochs=0
    )
    return {
        "max_epochs": max_epochs,
        "batch_size": BATCH_SIZE,
        "train_size": TRAIN_SIZE,
        "check_val_every_n_epoch": 1,
        "early_stopping": False,
        "callbacks": [stopper, *(callbacks or [])],
        "enable_progress_bar": False,
    }


def convergence(history: dict) -> tuple[int, int | None]:
    """Epochs run and the (1-based) epoch of the lowest validation ELBO."""
    epochs_run = len(history["elbo_train"])
    validation = history.get(MONITOR)
    if validation is None or len(validation) == 0:
        return epochs_run, None
    return epochs_run, int(np.argmin(validation.to_numpy().ravel())) + 1


# ------------------------------------------------------------------------------ profiling
@contextmanager
def instrumented(targets: dict[str, tuple[Any, str]], seconds: dict[str, float]) -> Iterator[None]:
    """Time (and label for ``torch.profiler``) calls of the given methods.

    ``targets`` maps a label to ``(object, method name)``; each call of that method adds its
    wall time to ``seconds[label]``. The wrappers are instance attributes, removed on exit.
    """
    from torch.profiler import record_function

    def wrap(label: str, method: Callable) -> Callable:
        def timed(*args, **kwargs):
            with record_function(label):
                start = time.perf_counter()
                result = method(*args, **kwargs)
                seconds[label] += time.perf_counter() - start
            return result

        return timed

    for label, (obj, name) in targets.items():
        setattr(obj, name, wrap(label, getattr(obj, name)))
    try:
        yield
    finally:
        for obj, name in targets.values():
            delattr(obj, name)


def _batches(model) -> Iterator[dict]:
    """Endless shuffled training minibatches of ``model``'s training cells."""
    while True:
        yield from model._make_data_loader(
            adata=model.adata, indices=model.train_indices, batch_size=BATCH_SIZE, shuffle=True
        )


def _module_targets(module) -> dict[str, tuple[Any, str]]:
    """Sub-modules of an OmniVAE worth timing: encoders, fusion, decoders, and the loss."""
    targets = {f"encoder {m}": (module.encoders[m], "forward") for m in module.modalities}
    targets["fusion"] = (module.fusion, "forward")
    targets.update({f"decoder {m}": (module.decoders[m], "forward") for m in module.modalities})
    targets["loss (log-likelihoods, KL)"] = (module, "loss")
    return targets


def _output_width(decoder) -> int:
    """Number of features a decoder outputs (the width of its last linear layer)."""
    from torch import nn

    return [layer for layer in decoder.modules() if isinstance(layer, nn.Linear)][-1].out_features


def profile_omnivi(model, n_timed: int, n_profiled: int) -> dict[str, Any]:
    """Split an OmniVI training step into its parts, and list the costliest operators.

    Runs after training, on the training cells, with OmniVI's own optimiser (fused Adam):
    ``n_timed`` steps timed by phase (batch loading, forward with its sub-modules, backward,
    optimiser) and then ``n_profiled`` steps under ``torch.profiler``.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from omnivi.model._omnivi import fused_adam

    module = model.module
    module.train()
    optimizer = fused_adam(1e-3, 1e-6)(module.parameters())
    batches = _batches(model)
    phases: dict[str, float] = defaultdict(float)
    parts: dict[str, float] = defaultdict(float)

    def step() -> None:
        start = time.perf_counter()
        with record_function("load batch"):
            tensors = next(batches)
        loaded = time.perf_counter()
        with record_function("forward"):
            loss = module(tensors, loss_kwargs={"kl_weight": 1.0})[2].loss
        forwarded = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with record_function("backward"):
            loss.backward()
        backwarded = time.perf_counter()
        with record_function("optimizer"):
            optimizer.step()
        done = time.perf_counter()
        for phase, seconds in zip(  # noqa: B905 (both of length 4)
            ("load batch", "forward", "backward", "optimizer"),
            (loaded - start, forwarded - loaded, backwarded - forwarded, done - backwarded),
        ):
            phases[phase] += seconds

    with instrumented(_module_targets(module), parts):
        for _ in range(2):  # warm-up
            step()
        phases.clear()
        parts.clear()
        for _ in range(n_timed):
            step()
        step_ms = {k: 1e3 * v / n_timed for k, v in phases.items()}
        part_ms = {k: 1e3 * v / n_timed for k, v in parts.items()}
        part_ms["other"] = step_ms["forward"] - sum(part_ms.values())
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(n_profiled):
                step()
    averages = prof.key_averages(group_by_input_shape=True)
    total_self = sum(e.self_cpu_time_total for e in averages) or 1.0
    top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    module.eval()
    widths = {m: _output_width(module.decoders[m]) for m in module.modalities}
    if "atac" in widths:
        widths["atac, sampled per step"] = max(
            int(widths["atac"] * module.atac_region_fraction), 1
        )
    return {
        "feature_widths": widths,
        "n_timed_steps": n_timed,
        "n_profiled_steps": n_profiled,
        "torch_threads": torch.get_num_threads(),
        "step_ms": step_ms,
        "forward_parts_ms": part_ms,
        "top_operators": [
            {
                "name": e.key,
                "input_shapes": str(e.input_shapes),
                "calls": e.count,
                "self_cpu_ms": e.self_cpu_time_total / 1e3,
                "self_cpu_share": e.self_cpu_time_total / total_self,
            }
            for e in top
        ],
        "table": averages.table(
            sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40
        ),
    }


# --------------------------------------------------------------------------------- worker
def run_worker(
    task: Task,
    model_name: str,
    max_epochs: int,
    seed: int,
    out: Path,
    data_dir: str | None,
    profile_steps: tuple[int, int],
) -> None:
    """Fit one model on one task with one seed; save its latent (``out``) and figures.

    The figures go to ``out`` with suffix ``.json``. Only the first seed's OmniVI fit of a
    task with ``profile`` is profiled.
    """
    quiet_libraries()
    import scvi
    import torch

    fit = task.fit(model_name)
    data = load_fit_data(task, fit, data_dir)
    rss_baseline = peak_rss_mib()
    scvi.settings.seed = seed
    model = build_model(fit, task, data)

    timer = epoch_timer()
    start = time.perf_counter()
    model.train(**train_kwargs(max_epochs, [timer]))
    train_seconds = time.perf_counter() - start
    rss_peak = peak_rss_mib()
    epoch_durations = np.subtract(timer.ends, timer.starts)
    epoch_seconds = float(np.median(epoch_durations))

    epochs_run, best_epoch = convergence(model.history)
    n_train = len(model.train_indices)
    figures: dict[str, Any] = {
        "task": task.name,
        "model": model_name,
        "seed": seed,
        "n_cells": int(data.n_obs),
        "n_train_cells": n_train,
        "max_epochs": max_epochs,
        "train_seconds": train_seconds,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "stopped_early": epochs_run < max_epochs,
        "cells_per_second": n_train * epochs_run / train_seconds,
        "setup_seconds": timer.starts[0] - start,
        "median_epoch_seconds": epoch_seconds,
        "epoch_seconds": [round(float(x), 4) for x in epoch_durations],
        "steady_cells_per_second": n_train / epoch_seconds,
        "rss_baseline_mib": rss_baseline,
        "rss_peak_mib": rss_peak,
        "torch_threads": torch.get_num_threads(),
    }
    latent = model.get_latent_representation()
    np.savez(out, latent=latent, obs_names=np.asarray(data.obs_names, dtype=str))
    if task.profile and model_name == OMNIVI and seed == task.seeds[0]:
        profile = profile_omnivi(model, *profile_steps)
        n_batches = math.ceil(n_train / BATCH_SIZE)
        profile["steps_per_epoch"] = n_batches
        profile["measured_epoch_s"] = epoch_seconds
        profile["step_phases_epoch_s"] = n_batches * sum(profile["step_ms"].values()) / 1e3
        figures["profile"] = profile
    out.with_suffix(".json").write_text(json.dumps(figures, indent=2))
    print(
        f"  {task.name}/{model_name}: {figures['cells_per_second']:.0f} cells/s, "
        f"{epochs_run} epochs in {train_seconds:.1f} s, peak RSS {rss_peak:.0f} MiB",
        flush=True,
    )


def epoch_cap(task: Task, args: argparse.Namespace) -> int:
    """The task's epoch cap, unless the command line sets one (``--max-epochs``, ``--quick``)."""
    if args.max_epochs is not None:
        return args.max_epochs
    return QUICK_MAX_EPOCHS if args.quick else task.max_epochs


def spawn_worker(
    task: Task, model: str, seed: int, args: argparse.Namespace, workdir: Path
) -> tuple[dict, Path]:
    """Run one fit in a fresh Python process; return its figures and the latent's path."""
    out = workdir / f"{task.name}_{model}_s{seed}.npz"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        task.name,
        model,
        "--out",
        str(out),
        "--max-epochs",
        str(epoch_cap(task, args)),
        "--seed",
        str(seed),
    ]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.quick:
        command.append("--quick")
    subprocess.run(command, check=True)
    return json.loads(out.with_suffix(".json").read_text()), out


# ------------------------------------------------------------------------------ scoring
def scoring_adata(task: Task, data_dir: str | None):
    """The task's cells with batch and label, and an unintegrated PCA of log-normalised RNA."""
    import scanpy as sc

    from omnivi.data import read_dataset

    rna = read_dataset(task.dataset, data_dir)["rna"]
    adata = rna.copy()
    adata.obs = adata.obs[[task.batch_key, task.label_key]].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.tl.pca(adata, n_comps=N_PCS, svd_solver="arpack", random_state=0)
    return adata


def scib_scores(task: Task, latents: dict[str, Path], data_dir: str | None) -> dict[str, dict]:
    """Score every latent of a task, and the PCA baseline, in one scib-metrics Benchmarker.

    ``latents`` maps an embedding name (a model and seed) to its saved latent. Returns, per
    embedding name (and ``"PCA"``), every metric and the aggregates
    ``Batch correction``, ``Bio conservation`` and ``Total`` (not min-max scaled).
    """
    adata = scoring_adata(task, data_dir)
    embeddings = {}
    for name, path in latents.items():
        saved = np.load(path)
        order = adata.obs_names.get_indexer(saved["obs_names"])
        if (order < 0).any() or len(np.unique(order)) != adata.n_obs:
            raise ValueError(
                f"{name}'s latent does not cover the cells of {task.dataset} once each."
            )
        latent = np.empty((adata.n_obs, saved["latent"].shape[1]), dtype=np.float32)
        latent[order] = saved["latent"]
        embeddings[name] = latent
    embeddings["PCA"] = adata.obsm[PCA_KEY]
    return scib_table(adata.obs, embeddings, task.batch_key, task.label_key, "PCA")


def embedding_name(model: str, seed: int) -> str:
    """Name of one fit's latent among a task's embeddings."""
    return f"{model}_s{seed}"


_MEDIAN_FIGURES = (
    "cells_per_second",
    "steady_cells_per_second",
    "median_epoch_seconds",
    "setup_seconds",
    "train_seconds",
    "rss_baseline_mib",
    "rss_peak_mib",
    "epochs_run",
)


def aggregate(fits: list[dict], scores: list[dict]) -> dict:
    """One model's figures over its seeds: medians of measurements, means of scib scores.

    ``fits`` are the workers' figures, ``scores`` the scib results of the same fits. The
    per-seed speed, epochs and scib total are kept under ``"per_seed"``.
    """
    result = {k: v for k, v in fits[0].items() if k not in ("seed", "epoch_seconds")}
    for key in _MEDIAN_FIGURES:
        result[key] = float(np.median([fit[key] for fit in fits]))
    result["epochs_run"] = int(result["epochs_run"])
    best = [fit["best_epoch"] for fit in fits if fit["best_epoch"] is not None]
    result["best_epoch"] = int(np.median(best)) if best else None
    result["stopped_early"] = all(fit["stopped_early"] for fit in fits)
    result["scib"] = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    result["per_seed"] = [
        {
            "seed": fit["seed"],
            "cells_per_second": fit["cells_per_second"],
            "epochs_run": fit["epochs_run"],
            "stopped_early": fit["stopped_early"],
            "scib_total": score["Total"],
        }
        for fit, score in zip(fits, scores, strict=True)
    ]
    return result


# ------------------------------------------------------------------------------ reporting
def targets(task: Task, result: dict) -> list[dict[str, Any]]:
    """The task's targets: speed ratio over the peer, and scib total no lower than the peer's."""
    models = result["models"]
    omni, peer = models[OMNIVI], models[task.peer.model]
    ratio = omni["cells_per_second"] / peer["cells_per_second"]
    return [
        {
            "target": f"speed OmniVI/{task.peer.model} >= {task.min_speed_ratio:g}x",
            "value": round(ratio, 3),
            "passed": ratio >= task.min_speed_ratio,
        },
        {
            "target": f"scib total OmniVI >= {task.peer.model}",
            "value": f"{omni['scib']['Total']:.4f} vs {peer['scib']['Total']:.4f}",
            "passed": omni["scib"]["Total"] >= peer["scib"]["Total"],
        },
    ]


COLUMNS = (
    "model",
    "train cells/s",
    "OmniVI/peer",
    "steady cells/s",
    "baseline RSS MiB",
    "peak RSS MiB",
    "epochs run",
    "best epoch",
    "train s",
    "scib batch",
    "scib bio",
    "scib total",
)


def task_rows(task: Task, result: dict) -> list[list[str]]:
    """One table row per model (and the PCA baseline, which has only scores)."""
    models = result["models"]
    peer_speed = models[task.peer.model]["cells_per_second"]
    rows = []
    for name in [*models, "PCA"]:
        fig = models.get(name, {})
        scib = result["scib"][name]
        speed = fig.get("cells_per_second")
        rows.append(
            [
                name if name != "PCA" else "PCA (unintegrated)",
                f"{speed:,.0f}" if speed else "",
                f"{speed / peer_speed:.2f}x" if speed and name == OMNIVI else "",
                f"{fig['steady_cells_per_second']:,.0f}" if fig else "",
                f"{fig['rss_baseline_mib']:,.0f}" if fig else "",
                f"{fig['rss_peak_mib']:,.0f}" if fig else "",
                f"{fig['epochs_run']}{'' if fig['stopped_early'] else ' (cap)'}" if fig else "",
                str(fig.get("best_epoch", "")) if fig else "",
                f"{fig['train_seconds']:.1f}" if fig else "",
                f"{scib['Batch correction']:.3f}",
                f"{scib['Bio conservation']:.3f}",
                f"{scib['Total']:.3f}",
            ]
        )
    return rows


def text_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def profile_summary(profile: dict) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Sentences on what dominates OmniVI's step, and tables of phases and top operators."""
    step_ms, parts_ms = profile["step_ms"], profile["forward_parts_ms"]
    total = sum(step_ms.values())
    phase_rows = [
        [k, f"{v:.2f}", f"{100 * v / total:.0f}%"]
        for k, v in sorted(step_ms.items(), key=lambda kv: -kv[1])
    ]
    phase_rows += [
        [f"forward: {k}", f"{v:.2f}", f"{100 * v / total:.0f}%"]
        for k, v in sorted(parts_ms.items(), key=lambda kv: -kv[1])
    ]
    op_rows = [
        [
            o["name"],
            o["input_shapes"],
            str(o["calls"]),
            f"{o['self_cpu_ms']:.1f}",
            f"{100 * o['self_cpu_share']:.1f}%",
        ]
        for o in profile["top_operators"][:10]
    ]
    top_phase = max(step_ms, key=step_ms.get)
    top_part = max(parts_ms, key=parts_ms.get)
    top_op = profile["top_operators"][0]
    lines = [
        f"One training step (batch {BATCH_SIZE}) takes {total:.1f} ms: "
        f"{top_phase} is the largest phase ({100 * step_ms[top_phase] / total:.0f}%); "
        f"within the forward pass, {top_part} costs most "
        f"({100 * parts_ms[top_part] / total:.0f}% of the step).",
        f"Costliest operator by self CPU time: {top_op['name']} {top_op['input_shapes']} "
        f"({100 * top_op['self_cpu_share']:.0f}% of self CPU time over "
        f"{profile['n_profiled_steps']} steps). Feature widths, to read the shapes: "
        + ", ".join(f"{k} {v}" for k, v in profile["feature_widths"].items())
        + ".",
        f"{profile['steps_per_epoch']} steps x {total:.1f} ms = "
        f"{profile['step_phases_epoch_s']:.2f} s per epoch, against a median "
        f"{profile['measured_epoch_s']:.2f} s per epoch in training; "
        "the difference is the validation pass and Lightning's per-step bookkeeping.",
    ]
    return lines, phase_rows, op_rows


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's shared training settings (epoch caps and seeds are per task)."""
    return {
        "batch_size": BATCH_SIZE,
        "early_stopping": f"{MONITOR}, patience {PATIENCE}",
        "train_size": TRAIN_SIZE,
        "quick": args.quick,
    }


def seed_rows(result: dict) -> list[list[str]]:
    """One row per model and seed: speed, epochs and scib total of that fit."""
    return [
        [
            model,
            str(run["seed"]),
            f"{run['cells_per_second']:,.0f}",
            f"{run['epochs_run']}{'' if run['stopped_early'] else ' (cap)'}",
            f"{run['scib_total']:.3f}",
        ]
        for model, figures in result["models"].items()
        for run in figures["per_seed"]
    ]


SEED_COLUMNS = ("model", "seed", "train cells/s", "epochs run", "scib total")


def print_task(task: Task, result: dict) -> None:
    """Print one task's side-by-side table, its targets and (if any) OmniVI's profile."""
    print(
        f"\n=== {task.name}: {task.dataset}, {result['n_cells']:,} cells, OmniVI vs "
        f"{task.peer.model} (batch: {task.batch_key}, label: {task.label_key}) ==="
    )
    print(text_table(COLUMNS, task_rows(task, result)))
    if len(result["seeds"]) > 1:
        print("\nPer seed (the table above: median speed, mean scores):")
        print(text_table(SEED_COLUMNS, seed_rows(result)))
    for t in result["targets"]:
        print(f"  [{'PASS' if t['passed'] else 'FAIL'}] {t['target']}: {t['value']}")
    profile = result["models"][OMNIVI].get("profile")
    if profile:
        lines, phase_rows, _ = profile_summary(profile)
        print("\nWhere OmniVI's training time goes:")
        print(text_table(("phase", "ms/step", "share"), phase_rows))
        print("\n".join(lines))
        print(f"\nTop operators by self CPU time ({profile['n_profiled_steps']} steps):")
        print(profile["table"])


def markdown_report(results: dict) -> str:
    """The whole run as markdown: machine, settings, one section per task."""
    machine, conf = results["machine"], results["settings"]
    omp = f", OMP_NUM_THREADS={machine['OMP_NUM_THREADS']}" if machine["OMP_NUM_THREADS"] else ""
    out = ["# OmniVI integration benchmark", ""]
    if conf["quick"]:
        out += ["**Quick smoke run (3 epochs): not a benchmark result.**", ""]
    out += [
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['torch_threads']} torch "
        f"threads{omp}); Python {machine['python']}, torch {machine['torch']}, scvi-tools "
        f"{machine['scvi-tools']}, scib-metrics {machine['scib-metrics']}, omnivi "
        f"{machine['omnivi']}; {machine['date']}; "
        f"total wall time {results['wall_seconds'] / 60:.1f} min.",
        "",
        f"Every model at its defaults except: batch size {conf['batch_size']}, the task's "
        f"epoch cap, early stopping on {conf['early_stopping']}, train size "
        f"{conf['train_size']}, the task's seeds (with several, the models take turns and the "
        "table gives the median speed and memory and the mean scores). Train cells/s = "
        "training cells x epochs run / seconds in `train()` (set-up and validation passes "
        "included); steady cells/s = training cells / median epoch time (validation "
        "included, set-up not); "
        "`(cap)` marks a fit stopped by the epoch cap, not by early stopping. Peak RSS = "
        "peak resident memory (`VmHWM`) of the model's own process after training; baseline = "
        "the same after loading the data, before the model is built. scib-metrics: default "
        "metrics, not min-max scaled (total = 0.4 batch + 0.6 bio).",
    ]
    for name, result in results["tasks"].items():
        task = TASKS[name]
        out += [
            "",
            f"## {name}: OmniVI vs {task.peer.model}",
            "",
            f"`{task.dataset}`, {result['n_cells']:,} cells; batch `{task.batch_key}`, "
            f"label `{task.label_key}`; at most {result['max_epochs']} epochs; seeds "
            f"{', '.join(map(str, result['seeds']))}; scib scoring "
            f"{result['scib_seconds']:.0f} s.",
            "",
            markdown_table(COLUMNS, task_rows(task, result)),
            "",
        ]
        if len(result["seeds"]) > 1:
            out += ["Per seed:", "", markdown_table(SEED_COLUMNS, seed_rows(result)), ""]
        out += [
            f"- {'PASS' if t['passed'] else 'FAIL'}: {t['target']} ({t['value']})"
            for t in result["targets"]
        ]
        profile = result["models"][OMNIVI].get("profile")
        if profile:
            lines, phase_rows, op_rows = profile_summary(profile)
            out += [
                "",
                "### Where OmniVI's training time goes",
                "",
                *lines,
                "",
                markdown_table(("phase", "ms/step", "share of step"), phase_rows),
                "",
                markdown_table(
                    ("operator", "input shapes", "calls", "self CPU ms", "share"), op_rows
                ),
            ]
    return "\n".join(out) + "\n"


def run_benchmark(args: argparse.Namespace) -> dict:
    """Fit every model of the chosen tasks in subprocesses, score, print and write results."""
    quiet_libraries()
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine_info(), "settings": settings(args), "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="omnivi-bench-") as tmp:
        for name in args.tasks:
            task = TASKS[name]
            models = [f.model for f in task.fits]
            print(f"\n--- {name}: fitting {', '.join(models)}, seeds {task.seeds}", flush=True)
            fits: dict[str, list[dict]] = {model: [] for model in models}
            latents = {}
            for seed in task.seeds:  # models take turns, so that drifting load hits both
                for model in models:
                    figures, latent = spawn_worker(task, model, seed, args, Path(tmp))
                    fits[model].append(figures)
                    latents[embedding_name(model, seed)] = latent
            print(f"--- {name}: scib-metrics", flush=True)
            scored = time.perf_counter()
            scib = scib_scores(task, latents, args.data_dir)
            result = {
                "dataset": task.dataset,
                "n_cells": fits[OMNIVI][0]["n_cells"],
                "batch_key": task.batch_key,
                "label_key": task.label_key,
                "max_epochs": epoch_cap(task, args),
                "seeds": list(task.seeds),
                "scib_seconds": time.perf_counter() - scored,
            }
            result["models"] = {
                model: aggregate(fits[model], [scib[embedding_name(model, s)] for s in task.seeds])
                for model in models
            }
            result["scib"] = {model: result["models"][model]["scib"] for model in models}
            result["scib"]["PCA"] = scib["PCA"]
            result["targets"] = targets(task, result)
            results["tasks"][name] = result
            print_task(task, result)
    results["wall_seconds"] = time.perf_counter() - started
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "integration.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / "integration.md").write_text(markdown_report(results))
    print(
        f"\nWrote {out_dir / 'integration.json'} and {out_dir / 'integration.md'} "
        f"({results['wall_seconds'] / 60:.1f} min in all)."
    )
    return results


# ---------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--worker`` is internal (one fit, run by the parent)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=list(TASKS),
        default=list(TASKS),
        help="tasks to run (default: all)",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="epoch cap of every task (default: the task's own, "
        f"{DEFAULT_MAX_EPOCHS} unless it says otherwise; {QUICK_MAX_EPOCHS} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_MAX_EPOCHS} epochs, results to a temp folder",
    )
    parser.add_argument(
        "--out-dir",
        default=None,
        help=f"where to write integration.json/.md (default {DEFAULT_OUT_DIR}; "
        "a temp folder with --quick)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder of the data sets (default: omnivi.data.find_data_dir())",
    )
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = (
            (Path(tempfile.gettempdir()) / "omnivi-bench-quick") if args.quick else DEFAULT_OUT_DIR
        )
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, or (with ``--worker``) one fit of it."""
    args = parse_args(argv)
    if args.worker:
        task_name, model = args.worker
        profile_steps = (5, 2) if args.quick else (20, 5)
        run_worker(
            TASKS[task_name],
            model,
            args.max_epochs,
            args.seed,
            args.out,
            args.data_dir,
            profile_steps,
        )
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
