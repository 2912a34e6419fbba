"""Modality dropout: hide one of a cell's modalities from the encoder while training."""

from __future__ import annotations

import torch


def hide_one_modality(observed: torch.Tensor, probability: float) -> torch.Tensor:
    """Return a copy of ``observed`` with one modality hidden in some cells.

    With probability ``probability``, a cell that has two or more modalities has one of
    them, chosen uniformly among those it has, set to 0. A cell's only modality is never
    hidden.

    Parameters
    ----------
    observed
        Cells x modalities, 1 where the cell has the modality, else 0.
    probability
        Chance, per cell, of hiding one modality; in ``[0, 1]``.

    Returns
    -------
    The mask the encoder may use: cells x modalities of 0 and 1.
    """
    mask = observed.clone()
    if probability <= 0 or mask.shape[1] < 2:
        return mask
    several = mask.sum(dim=1) > 1
    hidden = several & (torch.rand(mask.shape[0], device=mask.device) < probability)
    which = torch.multinomial(mask.clamp_min(1e-6), 1).squeeze(1)
    mask[hidden, which[hidden]] = 0.0
    return mask
