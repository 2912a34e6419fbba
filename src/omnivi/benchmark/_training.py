"""Training one neural method at its own defaults, and recording how that went."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback
from scvi.model._utils import get_max_epochs_heuristic

#: Seconds between two progress lines of one fit.
PROGRESS_EVERY_SECONDS = 10.0


class EpochProgress(Callback):
    """Print which method is at which epoch (every few seconds), and time every epoch.

    Parameters
    ----------
    label
        Name of the fit in the progress lines, e.g. ``"SCVI, seed 0"``.
    curves
        Logged quantities, in order of preference; the first the model logs is shown.
    """

    def __init__(self, label: str, curves: Sequence[str] = ()):
        self.label = label
        self.curves = curves
        self.starts: list[float] = []
        self.ends: list[float] = []
        self._printed = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        now = time.perf_counter()
        self.ends.append(now)
        last = len(self.ends) == trainer.max_epochs or trainer.should_stop
        if now - self._printed < PROGRESS_EVERY_SECONDS and not last and len(self.ends) > 1:
            return
        self._printed = now
        metrics = trainer.callback_metrics
        shown = next((f", {k} {float(metrics[k]):.4g}" for k in self.curves if k in metrics), "")
        print(
            f"    {self.label}: epoch {len(self.ends)}/{trainer.max_epochs}, "
            f"{now - self.starts[0]:.0f} s{shown}",
            flush=True,
        )


def signature_default(function: Callable, parameter: str) -> Any:
    """Return the default value of ``parameter`` in ``function``'s signature."""
    return inspect.signature(function).parameters[parameter].default


def final_slope(values: Sequence[float]) -> float | None:
    """Relative change per epoch at the end of a loss curve.

    The slope of a straight line through the last tenth of the epochs (at least 5, at most
    50), divided by the mean loss there: -0.001 means the loss still fell by 0.1% per epoch.
    ``None`` for curves shorter than 5 epochs.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 5:
        return None
    tail = values[-min(max(len(values) // 10, 5), 50) :]
    slope = np.polyfit(np.arange(len(tail)), tail, 1)[0]
    return float(slope / max(abs(tail.mean()), 1e-12))


def _curve(history: dict, curves: Sequence[str]) -> tuple[str | None, list[float]]:
    for key in curves:
        if key in history and len(history[key]):
            return key, history[key].iloc[:, 0].astype(float).tolist()
    return None, []


def train_model(
    model,
    label: str,
    curves: Sequence[str],
    cap: int | None = None,
    default_epochs: int | None = None,
    **overrides,
) -> dict[str, Any]:
    """Train ``model`` with its own ``train()`` defaults and describe the run.

    Parameters
    ----------
    model
        An scvi-tools style model, set up and built.
    label
        Name of the fit in the progress lines.
    curves
        ``model.history`` keys of the loss to report, in order of preference (the
        validation loss the model stops on, then its training loss).
    cap
        Most epochs to train; applied only if below the model's default.
    default_epochs
        The model's default number of epochs where ``train``'s signature does not tell it
        (``None``: the signature's ``max_epochs``, or scvi-tools' heuristic if that is
        ``None``).
    **overrides
        Arguments passed to ``train`` (the speed comparison's fixed batch size and epochs).

    Returns
    -------
    Batch size, default and maximum epochs, epochs run, what ended training, training
    cells, seconds, cells per second, median epoch time, the loss curve and its final slope.
    """
    datamodule = overrides.get("datamodule")  # cells streamed by a data module, if any
    if default_epochs is None:
        default_epochs = signature_default(model.train, "max_epochs")
        if default_epochs is None:
            n_cells = model.adata.n_obs if datamodule is None else datamodule.n_obs
            default_epochs = get_max_epochs_heuristic(n_cells)
    kwargs = dict(overrides)
    capped = cap is not None and cap < default_epochs and "max_epochs" not in kwargs
    if capped:
        kwargs["max_epochs"] = cap
    max_epochs = kwargs.get("max_epochs", default_epochs)
    batch_size = kwargs.get("batch_size", signature_default(model.train, "batch_size"))
    progress = EpochProgress(label, curves)
    start = time.perf_counter()
    model.train(callbacks=[progress], enable_progress_bar=False, **kwargs)
    seconds = time.perf_counter() - start
    epochs_run = len(progress.ends)
    if epochs_run < max_epochs:
        ended_by = "early stopping"
    elif capped:
        ended_by = f"capped at {max_epochs} of its {default_epochs} default epochs"
    elif "max_epochs" in overrides:
        ended_by = f"fixed {max_epochs} epochs"
    else:
        ended_by = "its epoch limit"
    if datamodule is None:
        n_train = len(model.train_indices)
    else:  # the module splits its cells itself
        n_train = round(datamodule.n_obs * getattr(datamodule, "train_size", 1.0))
    epoch_seconds = float(np.median(np.subtract(progress.ends, progress.starts)))
    curve_key, curve = _curve(model.history, curves)
    return {
        "batch_size": int(batch_size),
        "default_epochs": int(default_epochs),
        "max_epochs": int(max_epochs),
        "epochs_run": epochs_run,
        "ended_by": ended_by,
        "capped": capped,
        "n_train_cells": n_train,
        "train_seconds": seconds,
        "cells_per_second": n_train * epochs_run / seconds,
        "median_epoch_seconds": epoch_seconds,
        "steady_cells_per_second": n_train / epoch_seconds,
        "curve": curve_key,
        "curve_values": curve,
        "final_slope": final_slope(curve),
    }
