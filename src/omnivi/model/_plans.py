"""A training plan with a warm-up then cosine learning-rate schedule."""

from __future__ import annotations

import math

from scvi.train import TrainingPlan
from torch.optim.lr_scheduler import LambdaLR


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


class ContrastiveTrainingPlan(WarmupCosineTrainingPlan):
    """:class:`WarmupCosineTrainingPlan` for modules without a likelihood.

    scvi-tools' plan logs an ELBO, reconstruction loss and KL terms for every module; a
    contrastive encoder has none of them, so they would be logged as zeros. This plan logs
    the module's own terms (its ``extra_metrics``) beside ``train_loss`` and
    ``validation_loss`` instead.
    """

    def compute_and_log_metrics(self, loss_output, metrics, mode: str) -> None:
        """Log each of ``loss_output.extra_metrics`` as ``<name>_<mode>``."""
        for name, value in loss_output.extra_metrics.items():
            self.log(
                f"{name}_{mode}",
                value,
                on_step=self.on_step,
                on_epoch=self.on_epoch,
                batch_size=loss_output.n_obs_minibatch,
                sync_dist=self.use_sync_dist,
            )
