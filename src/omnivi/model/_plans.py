"""omnivi's training plans: scvi-tools' plans, with omnivi's additions.

The training cells' statistics, a check of the loss, random states in checkpoints, and a
warm-up then cosine schedule.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from scvi.dataloaders._data_splitting import validate_data_split
from scvi.module.base import LossOutput
from scvi.train import AdversarialTrainingPlan, TrainingPlan
from torch.optim.lr_scheduler import LambdaLR

from omnivi.data._loading import with_cell_axis
from omnivi.model._label_geometry import training_cell_statistics

#: Key of the random number generators' states in a Lightning checkpoint.
RANDOM_STATE_KEY = "omnivi_random_state"


def trainer_defaults(
    kwargs: dict, n_cells: int, batch_size: int, early_stopping: bool = False
) -> dict:
    """Return ``train``'s ``kwargs`` for scvi-tools, with validation every epoch where unset.

    The losses in ``model.history`` and early stopping need the validation loss. Data so
    small that scvi-tools' split (``train_size``, ``validation_size`` in ``kwargs``) leaves no
    validation cell trains without validation; early stopping is then refused.

    Parameters
    ----------
    kwargs
        The keyword arguments ``train`` passes on to scvi-tools.
    n_cells
        Number of cells to split into training and validation cells.
    batch_size
        Minibatch size (scvi-tools moves a tiny last batch into the validation cells).
    early_stopping
        Whether training stops on the validation loss.
    """
    train_size = kwargs.get("train_size")
    n_train, n_validation = validate_data_split(
        n_cells,
        0.9 if train_size is None else train_size,
        kwargs.get("validation_size"),
        batch_size,
        train_size_is_none=train_size is None,
    )
    if n_train == 0:  # scvi-tools leaves out a last minibatch of one or two cells
        raise ValueError(
            f"Training needs at least 3 cells; the data has {n_cells}. Set up more cells."
        )
    if n_validation == 0 and early_stopping:
        raise ValueError(
            f"early_stopping needs validation cells, but splitting {n_cells} cells with "
            f"train_size={train_size} leaves none. Train without early stopping, or set "
            "train_size below 1 so that some cells are held out."
        )
    return {"check_val_every_n_epoch": 1 if n_validation else None, **kwargs}


def log_extra_metrics(plan, loss_output: LossOutput, mode: str) -> None:
    """Log each of a module's ``extra_metrics`` as ``<name>_<mode>``, synced across processes.

    Outside inference mode: scvi-tools logs them under ``torch.inference_mode``, so that
    Lightning keeps their running sums as inference tensors, which the in-place average over
    the processes of a distributed (DDP) run at the end of an epoch refuses.
    """
    for name, value in loss_output.extra_metrics.items():
        plan.log(
            f"{name}_{mode}",
            value.detach() if isinstance(value, torch.Tensor) else value,
            on_step=plan.on_step,
            on_epoch=plan.on_epoch,
            batch_size=loss_output.n_obs_minibatch,
            sync_dist=plan.use_sync_dist,
        )


class ExtraMetricsLogging:
    """scvi-tools' metric logging, the module's extra metrics by :func:`log_extra_metrics`.

    So that they can be synced across the processes of a DDP run.
    """

    def compute_and_log_metrics(self, loss_output: LossOutput, metrics, mode: str) -> None:
        """Log the ELBO metrics as scvi-tools does, then the extra metrics."""
        super().compute_and_log_metrics(replace(loss_output, extra_metrics={}), metrics, mode)
        log_extra_metrics(self, loss_output, mode)


class OneCellMinibatches:
    """Minibatches of one cell from a data module, whose loader omnivi does not build.

    A training minibatch of one cell is skipped, as scvi-tools' ``drop_last`` would skip it
    for AnnData (batch norm cannot learn from one cell); if the first one holds one cell,
    training stops with an error asking for a minibatch size (``TileDBDataModule``'s default
    is one cell). A validation minibatch of one cell is read as one cell (tiledbsoma-ml
    squeezes its counts to a vector; see :func:`~omnivi.data._loading.with_cell_axis`).
    """

    def training_step(self, batch, batch_idx):
        """Train on ``batch`` unless it holds a single cell."""
        if len(batch[REGISTRY_KEYS.BATCH_KEY]) > 1:
            return super().training_step(batch, batch_idx)
        if batch_idx == 0:
            raise ValueError(
                "The first training minibatch holds a single cell, from which batch norm cannot "
                "learn: give the data module a minibatch size, e.g. "
                "TileDBDataModule(..., batch_size=256) (its default is 1)."
            )
        return None

    def validation_step(self, batch, batch_idx):
        """Validate on ``batch``, cells on its first axis."""
        return super().validation_step(with_cell_axis(batch), batch_idx)


class StopOnNonFiniteLoss:
    """Stop training with a clear error as soon as a training step's loss is NaN or infinite.

    The check comes before the step's backward pass, so the parameters are left as the last
    good step made them, instead of being overwritten with NaN until the last epoch.
    """

    def forward(self, *args, **kwargs):
        """Run the module's forward pass; in a training step, check that its loss is finite."""
        outputs = super().forward(*args, **kwargs)
        losses = outputs[-1]
        if self.training and isinstance(losses, LossOutput) and not losses.loss.isfinite().all():
            raise FloatingPointError(
                f"Training stopped at epoch {self.current_epoch + 1}: the training loss is "
                f"{float(losses.loss)}. The usual causes are a learning rate too high for "
                f"this data (lr={self.lr}; try train(lr={self.lr / 10:g})) or input that is not "
                "raw counts, with extreme values."
            )
        return outputs


class RandomStateInCheckpoints:
    """Save the random number generators' states in Lightning checkpoints, and restore them.

    Training draws random numbers (minibatch order, dropout, the latent sample, hidden
    modalities, sampled regions); with their state restored, training resumed from a
    checkpoint (``train(ckpt_path=...)``) continues as the uninterrupted run would have.
    """

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Add the CPU (and CUDA) torch, NumPy and Python generators' states."""
        super().on_save_checkpoint(checkpoint)
        # tensors, numbers and tuples only: Lightning reads checkpoints with weights_only
        name, keys, position, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
        checkpoint[RANDOM_STATE_KEY] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the generators' states saved by :meth:`on_save_checkpoint`, if any."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(RANDOM_STATE_KEY)
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, position, has_gauss, gauss = state["numpy"]
        state_of_numpy = (name, keys.numpy().astype(np.uint32), position, has_gauss, gauss)
        np.random.set_state(state_of_numpy)  # noqa: NPY002 - the legacy global generator
        random.setstate(state["python"])


class TrainingCellStatistics:
    """Give a module's contrastive objectives the statistics of the cells it trains on.

    At the start of training, the class weights and the reference geometry of the cell-type
    centroids (:func:`~omnivi.model._label_geometry.training_cell_statistics`) are computed
    from the training cells of the data module (scvi-tools' data splitter) and passed to the
    module's ``loss`` at every step: validation cells never inform them. Mixed into a
    scvi-tools training plan; a module without ``contrastive`` objectives is left as it is.
    """

    def on_train_start(self) -> None:
        """Compute the statistics and add them to the loss keyword arguments."""
        super().on_train_start()
        module = self.module
        if getattr(module, "contrastive", None) is None:
            return
        datamodule = self.trainer.datamodule
        statistics = training_cell_statistics(
            datamodule.adata_manager,
            getattr(datamodule, "train_idx", None),
            module.modalities,
            module.n_labels,
            module.unlabeled_code,
        )
        self.loss_kwargs.update(
            {
                name: torch.as_tensor(value, dtype=torch.float32, device=self.device)
                for name, value in statistics.items()
            }
        )


class OmniTrainingPlan(
    OneCellMinibatches,
    StopOnNonFiniteLoss,
    RandomStateInCheckpoints,
    TrainingCellStatistics,
    ExtraMetricsLogging,
    TrainingPlan,
):
    """scvi-tools' :class:`~scvi.train.TrainingPlan` with omnivi's additions.

    :class:`OneCellMinibatches`, :class:`StopOnNonFiniteLoss`, :class:`RandomStateInCheckpoints`,
    :class:`TrainingCellStatistics`, and extra metrics synced across processes.
    """


class OmniAdversarialTrainingPlan(
    OneCellMinibatches,
    StopOnNonFiniteLoss,
    RandomStateInCheckpoints,
    TrainingCellStatistics,
    ExtraMetricsLogging,
    AdversarialTrainingPlan,
):
    """scvi-tools' :class:`~scvi.train.AdversarialTrainingPlan` with omnivi's additions.

    As :class:`OmniTrainingPlan`.
    """


class WarmupCosineTrainingPlan(TrainingPlan):
    """scvi-tools' :class:`~scvi.train.TrainingPlan` with a per-step learning-rate schedule.

    The learning rate rises linearly from near 0 to ``lr`` over the first
    ``warmup_fraction`` of the training steps, then follows a half cosine down to 0 at the
    last step.

    Parameters
    ----------
    module
        The module to train.
    warmup_fraction
        Fraction of all training steps spent warming up.
    **kwargs
        Options of :class:`~scvi.train.TrainingPlan` (``lr``, ``weight_decay``, ...).
    """

    def __init__(self, module, *, warmup_fraction: float = 0.05, **kwargs):
        super().__init__(module, **kwargs)
        if not 0 <= warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}.")
        self.warmup_fraction = warmup_fraction

    def configure_optimizers(self):
        """Return the optimizer of the parent plan with the warm-up/cosine schedule."""
        optimizer = super().configure_optimizers()["optimizer"]
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = max(int(self.warmup_fraction * total), 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class ContrastiveTrainingPlan(
    StopOnNonFiniteLoss,
    RandomStateInCheckpoints,
    TrainingCellStatistics,
    WarmupCosineTrainingPlan,
):
    """:class:`WarmupCosineTrainingPlan` for modules without a likelihood.

    With :class:`TrainingCellStatistics`. scvi-tools' plan logs an ELBO, reconstruction
    loss and KL terms for every module; a contrastive encoder has none of them, so they
    would be logged as zeros. This plan logs the module's own terms (its ``extra_metrics``)
    beside ``train_loss`` and ``validation_loss`` instead.
    """

    def compute_and_log_metrics(self, loss_output, metrics, mode: str) -> None:
        """Log each of ``loss_output.extra_metrics`` as ``<name>_<mode>``."""
        log_extra_metrics(self, loss_output, mode)
