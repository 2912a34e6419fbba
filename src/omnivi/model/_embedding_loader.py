"""Minibatches of a fixed embedding and its labels, for fitting a classifier with Lightning."""

from __future__ import annotations

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from torch.utils.data import DataLoader, Dataset


class _EmbeddingDataset(Dataset):
    """Cells of an embedding as scvi-style dictionaries (``X`` and ``labels``)."""

    def __init__(self, z: np.ndarray, codes: np.ndarray):
        self.z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        self.codes = torch.as_tensor(np.asarray(codes).ravel(), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.z)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {REGISTRY_KEYS.X_KEY: self.z[index], REGISTRY_KEYS.LABELS_KEY: self.codes[index]}


def embedding_loader(
    z: np.ndarray, codes: np.ndarray, batch_size: int, shuffle: bool = False
) -> DataLoader:
    """Return a loader of ``{"X": embedding, "labels": code}`` minibatches.

    Parameters
    ----------
    z
        Cells x dimensions.
    codes
        One label code per cell.
    batch_size
        Cells per minibatch.
    shuffle
        Shuffle the cells every epoch (with torch's seeded global generator).
    """
    return DataLoader(_EmbeddingDataset(z, codes), batch_size=batch_size, shuffle=shuffle)
