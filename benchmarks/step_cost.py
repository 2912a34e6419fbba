"""Where an epoch goes on the small data sets: each model's own training steps, and the
costs of scvi-tools and Lightning around them.

A probe of the speed comparison (``speed.py``). For OmniVI and its scvi-tools peer on the
small sets (same cells, batch size 256 without early stopping, every other setting each
model's own; the models are set up as in ``omnivi benchmark``), one process times, in
milliseconds per epoch:

- ``train()``, as the speed comparison times it;
- ``train()`` without per-epoch validation (``check_val_every_n_epoch=None``, scvi-tools'
  default without early stopping);
- the module's steps alone: forward pass, backward pass and the optimizer the model trained
  with, over the same training minibatches loaded beforehand, without Lightning;
- loading alone: one pass of the model's data loader over the training cells.

What ``train()`` without validation spends beyond steps and loading is Lightning's loop
(metric logging, hooks). Results: ``results/step_cost.{json,md}``.

Usage::

    . .venv/bin/activate
    python benchmarks/step_cost.py            # both small sets, about two minutes
    python benchmarks/step_cost.py --quick    # 5 epochs of the first, to a temporary folder
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scvi
from _common import command_line, machine_info, quiet_libraries
from integration import DATASETS

from omnivi.benchmark._data import describe_data, load_data
from omnivi.benchmark._methods import METHODS, SPEED_PEERS, SPEED_SETTINGS, FitContext
from omnivi.data import find_data_dir

NAME = "step_cost"

#: The small sets and the peer each is compared with.
PAIRS = {"bmmc_cite_small": "totalvi", "bmmc_multiome_small": "multivi"}


def _milliseconds_per_epoch(run, epochs: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / epochs * 1000


def time_epoch_parts(model, epochs: int) -> dict[str, float]:
    """Milliseconds per epoch of ``model``'s training, whole and in parts (see the module)."""
    settings = {**SPEED_SETTINGS, "enable_progress_bar": False}

    def fit(max_epochs: int, **extra) -> None:
        # scvi-tools leaves the module in eval mode after training, and Lightning keeps the
        # mode it finds: a further call must start in training mode, as a first one does
        model.module.train()
        model.train(max_epochs=max_epochs, **settings, **extra)

    def validation_epochs() -> int:  # scvi-tools appends each call's history to the last
        lengths = [len(v) for k, v in model.history.items() if k.endswith("_validation")]
        return max(lengths, default=0)

    fit(2)  # warm-up: first-call costs are not per epoch
    before = validation_epochs()
    parts = {"train": _milliseconds_per_epoch(lambda: fit(epochs), epochs)}
    after = validation_epochs()
    parts["train_without_validation"] = _milliseconds_per_epoch(
        lambda: fit(epochs, check_val_every_n_epoch=None), epochs
    )
    if after == before:  # no validation at these settings (scvi-tools' models)
        parts["validation"] = 0.0
    elif validation_epochs() == after:
        parts["validation"] = parts["train"] - parts["train_without_validation"]
    # else: validation every epoch whatever is asked (TOTALVI's learning-rate schedule reads
    # the validation loss), part of the loop's share
    optimizer = model.trainer.optimizers[0]  # as the model's training plan configured it
    module = model.module
    loader = model._make_data_loader(
        model.adata, indices=model.train_indices, batch_size=SPEED_SETTINGS["batch_size"]
    )
    parts["loading"] = _milliseconds_per_epoch(
        lambda: [None for _ in range(epochs) for _ in loader], epochs
    )
    batches = [{key: value.to(module.device) for key, value in batch.items()} for batch in loader]

    def steps() -> None:
        module.train()
        for _ in range(epochs):
            for batch in batches:
                _, _, losses = module(batch, loss_kwargs={"kl_weight": 1.0})
                optimizer.zero_grad()
                losses.loss.backward()
                optimizer.step()

    parts["steps"] = _milliseconds_per_epoch(steps, epochs)
    parts["lightning"] = parts["train_without_validation"] - parts["steps"] - parts["loading"]
    return parts


@dataclass(frozen=True)
class StepCostContext(FitContext):
    """A fit context whose ``train`` times the parts of an epoch (into ``parts``)."""

    epochs: int = 100
    parts: dict[str, float] = field(default_factory=dict)

    def train(self, model, curves: tuple[str, ...], **kwargs) -> dict[str, Any]:
        """Record :func:`time_epoch_parts` of ``model``."""
        self.parts.update(time_epoch_parts(model, self.epochs))
        return {}


def run(args: argparse.Namespace) -> dict:
    """Time OmniVI and its peer on each small set; return the parts by data set."""
    quiet_libraries()
    data_dir = find_data_dir(args.data_dir)
    if data_dir is None:
        raise SystemExit("No data folder: pass --data-dir or set OMNIVI_DATA_DIR.")
    results = {}
    for name, peer in list(PAIRS.items())[: 1 if args.quick else None]:
        dataset = DATASETS[name]
        data = describe_data(
            data_dir / dataset.file, dataset.modalities, dataset.batch_key, dataset.label_key
        )
        mdata = load_data(data)
        epochs = 5 if args.quick else dataset.speed_epochs
        rows = {}
        for key in ("omnivi", peer):
            print(f"{name}: {METHODS[key].name}, {epochs} epochs", flush=True)
            scvi.settings.seed = 0
            context = StepCostContext(METHODS[key].name, 0, Path("."), epochs=epochs)
            METHODS[key].fit(mdata, data, context)
            rows[key] = context.parts
        results[name] = {
            "machine": machine_info(),
            "epochs": epochs,
            "peer": peer,
            "target_ratio": SPEED_PEERS[peer],
            "parts": rows,
        }
    return results


COLUMNS = {
    "train": "`train()`",
    "validation": "of which validation",
    "steps": "module steps alone",
    "loading": "loading alone",
    "lightning": "Lightning's loop",
}


#: Shown where a model validates every epoch even when not asked to.
ALWAYS = "every epoch, in the loop"


def report(results: dict) -> str:
    """One table of milliseconds per epoch, with the ratios peer / OmniVI."""
    lines = [
        "# Where an epoch goes: model steps against framework costs",
        "",
        "`python benchmarks/step_cost.py`: milliseconds per epoch at batch size 256 without "
        "early stopping, every other setting each model's own. Module steps alone: forward, "
        "backward and the model's optimizer over the training minibatches loaded beforehand, "
        "without Lightning. Lightning's loop: `train()` without validation, less steps and "
        "loading (metric logging, hooks; and the validation of a model that validates "
        "every epoch even when not asked to).",
        "",
        "| data | model | " + " | ".join(COLUMNS.values()) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, result in results.items():
        parts = result["parts"]
        omni, peer = parts["omnivi"], parts[result["peer"]]
        for key, row in ((result["peer"], peer), ("omnivi", omni)):
            cells = " | ".join(f"{row[c]:.1f}" if c in row else ALWAYS for c in COLUMNS)
            lines.append(f"| {name} | {METHODS[key].name} | {cells} |")
        ratios = " | ".join(
            f"{peer[c] / omni[c]:.2f}x" if c in peer and c in omni else "-" for c in COLUMNS
        )
        lines.append(f"| {name} | peer / OmniVI (target {result['target_ratio']}x) | {ratios} |")
    machine = next(iter(results.values()))["machine"]
    lines += [
        "",
        f"{machine['date'][:10]}, commit {machine['omnivi commit']}; {machine['cpu']}, "
        f"{machine['cores']} cores, torch {machine['torch']}, scvi-tools "
        f"{machine['scvi-tools']}. One run: these parts move by 5-10% between runs.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    command_line(NAME, __doc__.split("\n\n")[0], run, report)
