"""Minibatches: sparse where the model reads sparse input; one-cell minibatches of data modules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.dataloaders import DataSplitter


def with_cell_axis(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return ``batch`` with a one-cell ``X`` given back its cell axis.

    tiledbsoma-ml (behind scvi-tools' ``TileDBDataModule``) squeezes the counts of a
    minibatch of one cell to a vector; the model reads cells x features.
    """
    x = batch.get(REGISTRY_KEYS.X_KEY)
    if x is None or x.dim() != 1:
        return batch
    return {**batch, REGISTRY_KEYS.X_KEY: x.unsqueeze(0)}


class SparseInputDataSplitter(DataSplitter):
    """scvi-tools' :class:`~scvi.dataloaders.DataSplitter` that leaves some inputs sparse.

    Sparse matrices are sliced into sparse minibatches on the host and moved to the device as
    such. There, the registry fields named in ``keep_sparse`` stay sparse (CSR) for a module
    that reads them without densifying (OmniVI's ATAC branch), and every other sparse field
    is made dense, as scvi-tools does with ``load_sparse_tensor=True``.

    Parameters
    ----------
    adata_manager
        The model's data manager.
    keep_sparse
        Registry keys whose sparse minibatches the module receives as sparse tensors.
    **kwargs
        Passed to :class:`~scvi.dataloaders.DataSplitter`; with ``load_sparse_tensor=False``
        every minibatch is densified on the host, as scvi-tools does by default.
    """

    def __init__(self, adata_manager: AnnDataManager, keep_sparse: Iterable[str] = (), **kwargs):
        super().__init__(adata_manager, **kwargs)
        self.keep_sparse = frozenset(keep_sparse)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Densify the sparse minibatch tensors the module does not read sparse."""
        return densify(batch, self.keep_sparse)


def densify(batch: dict, keep_sparse: Iterable[str] = ()) -> dict:
    """Return ``batch`` with its sparse tensors made dense, except those under ``keep_sparse``."""
    keep = set(keep_sparse)

    def is_sparse(value) -> bool:
        return isinstance(value, torch.Tensor) and value.layout is not torch.strided

    return {
        key: value.to_dense() if is_sparse(value) and key not in keep else value
        for key, value in batch.items()
    }


class SparseInputLoader:
    """An scvi-tools loader's sparse minibatches, as the module reads them.

    The loader is made with ``load_sparse_tensor=True``; its minibatches stay sparse under
    ``keep_sparse`` and are made dense elsewhere (see :func:`densify`).

    Parameters
    ----------
    loader
        The loader, e.g. :class:`~scvi.dataloaders.AnnDataLoader`.
    keep_sparse
        Registry keys whose minibatches stay sparse.
    """

    def __init__(self, loader: Iterable[dict], keep_sparse: Iterable[str]):
        self.loader = loader
        self.keep_sparse = frozenset(keep_sparse)

    def __iter__(self) -> Iterator[dict]:
        return (densify(batch, self.keep_sparse) for batch in self.loader)

    def __len__(self) -> int:
        return len(self.loader)
