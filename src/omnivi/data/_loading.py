"""Minibatches: sparse where the model reads sparse input; one-cell minibatches of data modules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.dataloaders import DataSplitter

from ._backed import SPAN_ROWS, SPANS_PER_READ, SpanReadLoader


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
    span_rows
        For an AnnData or MuData backed by its file: training and validation cells are read
        in windows of this many consecutive rows (:class:`~omnivi.data.SpanReadLoader`), one
        window at a time, instead of one cell at a time. ``None`` reads each minibatch's cells as
        scvi-tools does. Under distributed training each process reads its own windows.
    spans_per_read
        Windows read together and shuffled into minibatches.
    **kwargs
        Passed to :class:`~scvi.dataloaders.DataSplitter`; with ``load_sparse_tensor=False``
        every minibatch is densified on the host, as scvi-tools does by default.
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        keep_sparse: Iterable[str] = (),
        span_rows: int | None = SPAN_ROWS,
        spans_per_read: int = SPANS_PER_READ,
        **kwargs,
    ):
        super().__init__(adata_manager, **kwargs)
        self.keep_sparse = frozenset(keep_sparse)
        self.span_rows = span_rows
        self.spans_per_read = spans_per_read

    def train_dataloader(self):
        """Return the training minibatches (from a backed AnnData: read a span at a time)."""
        if not self._reads_spans():
            return super().train_dataloader()
        # every process of a distributed run takes as many steps
        return self._span_loader(
            self.train_idx, shuffle=True, drop_last=self.drop_last or self._distributed
        )

    def val_dataloader(self):
        """Return the validation minibatches (from a backed AnnData: read a span at a time)."""
        if not self._reads_spans() or len(self.val_idx) == 0:
            return super().val_dataloader()
        return self._span_loader(self.val_idx, shuffle=False, drop_last=False)

    @property
    def _distributed(self) -> bool:
        return bool(self.data_loader_kwargs.get("distributed_sampler", False))

    def _reads_spans(self) -> bool:
        return self.adata_manager.adata.isbacked and self.span_rows is not None

    def _span_loader(self, indices, shuffle: bool, drop_last: bool) -> SpanReadLoader:
        if self._distributed and torch.distributed.is_initialized():
            processes = {
                "rank": torch.distributed.get_rank(),
                "world_size": torch.distributed.get_world_size(),
            }
        else:
            processes = {}
        return SpanReadLoader(
            self.adata_manager,
            indices,
            batch_size=self.data_loader_kwargs.get("batch_size") or settings.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            load_sparse_tensor=self.load_sparse_tensor,
            span_rows=self.span_rows,
            spans_per_read=self.spans_per_read,
            **processes,
        )

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
