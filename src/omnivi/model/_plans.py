"""omnivi's training plans: training cells' statistics, warm-up then cosine schedule."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from scvi.module.base import LossOutput
from scvi.train import AdversarialTrainingPlan, TrainingPlan
from torch.optim.lr_scheduler import LambdaLR

from omnivi.model._label_geometry import training_cell_statistics


def trainer_defaults(kwargs: dict) -> dict:
    """Return ``kwargs`` for scvi-tools' ``Trainer`` with validation every epoch where unset.

    The losses in ``model.history`` and early stopping need the validation loss.
    """
    return {"check_val_every_n_epoch": 1, **kwargs}


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


class OmniTrainingPlan(TrainingCellStatistics, ExtraMetricsLogging, TrainingPlan):
    """scvi-tools' :class:`~scvi.train.TrainingPlan` with :class:`TrainingCellStatistics`."""


class OmniAdversarialTrainingPlan(
    TrainingCellStatistics, ExtraMetricsLogging, AdversarialTrainingPlan
):
    """scvi-tools' :class:`~scvi.train.AdversarialTrainingPlan`, with cell statistics.

    See :class:`TrainingCellStatistics`.
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


class ContrastiveTrainingPlan(TrainingCellStatistics, WarmupCosineTrainingPlan):
    """:class:`WarmupCosineTrainingPlan` for modules without a likelihood.

    With :class:`TrainingCellStatistics`. scvi-tools' plan logs an ELBO, reconstruction
    loss and KL terms for every module; a contrastive encoder has none of them, so they
    would be logged as zeros. This plan logs the module's own terms (its ``extra_metrics``)
    beside ``train_loss`` and ``validation_loss`` instead.
    """

    def compute_and_log_metrics(self, loss_output, metrics, mode: str) -> None:
        """Log each of ``loss_output.extra_metrics`` as ``<name>_<mode>``."""
        log_extra_metrics(self, loss_output, mode)
