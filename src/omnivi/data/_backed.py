"""Minibatches of an AnnData or MuData backed by its file: windows of cells, order kept."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import h5py
import numpy as np
import scipy.sparse as sp
import torch
from anndata.abc import CSCDataset, CSRDataset
from scvi import settings
from scvi.data import AnnDataManager
from scvi.data._utils import scipy_to_torch_sparse

#: Consecutive rows of the file that one read covers: tiledbsoma-ml's chunk of 64 cells. From
#: 10k to 1M cells x 2,000 genes a window of 64 rows costs 1.0-2.6 us per cell to read,
#: against 29-91 us per cell for anndata's cell-by-cell reads of a random minibatch
#: (``benchmarks/backed_reads.py``).
SPAN_ROWS = 64
#: Windows read together and shuffled into minibatches (16,384 cells at most).
SPANS_PER_READ = 256

_ON_DISK = (CSRDataset, CSCDataset, h5py.Dataset)


class StoredCsrRows:
    """Consecutive rows of a CSR matrix in a file, each window read with two HDF5 reads.

    anndata's slicing of a backed CSR matrix costs 2-4 ms a call at 1M cells whatever
    the rows asked for (``benchmarks/backed_reads.py``: 64 rows at 45 us a row, 1,024 rows
    at 3.6); this keeps the row pointers in memory (8 bytes a cell) and reads only the
    window's stored values and column indices.

    Parameters
    ----------
    matrix
        The backed matrix (e.g. a backed AnnData's ``.X``).
    """

    def __init__(self, matrix: CSRDataset):
        self.indptr = matrix.group["indptr"][:]
        self.data = matrix.group["data"]
        self.indices = matrix.group["indices"]
        self.shape = matrix.shape

    def __getitem__(self, rows: slice) -> sp.csr_matrix:
        """Return rows ``rows.start`` to ``rows.stop`` (a slice of consecutive rows)."""
        lo, hi = self.indptr[rows.start], self.indptr[rows.stop]
        return sp.csr_matrix(
            (self.data[lo:hi], self.indices[lo:hi], self.indptr[rows.start : rows.stop + 1] - lo),
            shape=(rows.stop - rows.start, self.shape[1]),
        )


def window_reader(matrix):
    """Return what reads ``matrix[start:stop]`` cheapest: :class:`StoredCsrRows` for CSR."""
    return StoredCsrRows(matrix) if isinstance(matrix, CSRDataset) else matrix


class SpanReadLoader:
    """Minibatches of a backed AnnData or MuData, read from its file a window of cells at once.

    anndata reads the cells of a random minibatch from an ``.h5ad`` one at a time (two HDF5
    reads per cell), and each read costs more the larger the file. This loader reads the
    requested cells in windows of ``span_rows`` consecutive rows, each with one contiguous
    read, ``spans_per_read`` windows at a time, and cuts the minibatches from those cells
    shuffled together, as on-disk loaders such as tiledbsoma-ml do. With ``shuffle``, the
    windows are taken in a new random order every epoch, so a minibatch holds cells of up to
    ``spans_per_read`` places of the file rather than of the whole file. Every cell comes once
    per epoch; fields held in memory (``.obs``, ``.obsm``) are read with scvi-tools'
    :class:`~scvi.data.AnnTorchDataset`. The minibatches hold the same tensors, dtypes and
    layouts as scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` gives.

    Parameters
    ----------
    adata_manager
        The model's data manager, of a backed AnnData or MuData.
    indices
        Cells to read (positions in the AnnData).
    batch_size
        Cells per minibatch.
    shuffle
        Whether to shuffle the cells (the order of the windows, and the cells of each read).
    drop_last
        Whether to leave out the epoch's last, smaller minibatch; in a distributed run, also
        to give as many minibatches in every process (what training needs).
    load_sparse_tensor
        Whether sparse matrices give sparse tensors (else dense ones).
    span_rows
        Consecutive rows of the file per window.
    spans_per_read
        Windows read and shuffled together.
    rank, world_size
        This process's rank and the number of processes of a distributed run. Each process
        reads its own windows, dealt by cell count in an order every process draws alike
        (from ``scvi.settings.seed`` and the epoch). With ``drop_last``, every process gives
        as many full minibatches as the process with the fewest cells has, and the few cells
        beyond are left out of that epoch; without, each gives all its cells.
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        load_sparse_tensor: bool = False,
        span_rows: int = SPAN_ROWS,
        spans_per_read: int = SPANS_PER_READ,
        rank: int = 0,
        world_size: int = 1,
    ):
        if span_rows < 1 or spans_per_read < 1:
            raise ValueError(
                f"span_rows and spans_per_read must be positive; got {span_rows} and "
                f"{spans_per_read}."
            )
        cells = np.sort(np.asarray(indices))
        self.spans = np.split(cells, np.flatnonzero(np.diff(cells // span_rows)) + 1)
        self.n_cells = len(cells)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.load_sparse_tensor = load_sparse_tensor
        self.spans_per_read = spans_per_read
        self.rank, self.world_size = rank, world_size
        self._epochs = 0
        # the greedy deal leaves processes at most one window's cells apart
        widest = max(len(s) for s in self.spans)
        fewest = (self.n_cells - (world_size - 1) * widest) // world_size
        most = -(-(self.n_cells + (world_size - 1) * widest) // world_size)
        self._batches_per_process = (
            max(fewest, 0) // batch_size if drop_last else -(-most // batch_size)
        )
        if world_size > 1 and self._batches_per_process == 0:
            raise ValueError(
                f"{self.n_cells} cells are too few to give each of {world_size} processes a "
                f"minibatch of {batch_size}; use fewer processes or a smaller batch_size."
            )
        dataset = adata_manager.create_torch_dataset()
        self.on_disk = {
            key: (window_reader(data), dataset.keys_and_dtypes[key])
            for key, data in dataset.data.items()
            if isinstance(data, _ON_DISK)
        }
        in_memory = [key for key in dataset.keys_and_dtypes if key not in self.on_disk]
        self.in_memory = adata_manager.create_torch_dataset(data_and_attributes=in_memory)

    def __len__(self) -> int:
        if self.world_size > 1:
            return self._batches_per_process
        full, rest = divmod(self.n_cells, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self._epochs += 1
        if self.world_size > 1:  # every process draws the same order
            rng = np.random.default_rng([settings.seed or 0, self._epochs])
        else:  # one draw from torch's generator, so that scvi-tools' seed decides the order
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
        order = rng.permutation(len(self.spans)) if self.shuffle else np.arange(len(self.spans))
        if self.world_size == 1:
            return self._minibatches(order, rng)
        minibatches = self._minibatches(self._own_spans(order), rng)
        return islice(minibatches, len(self)) if self.drop_last else minibatches

    def _own_spans(self, order: np.ndarray) -> np.ndarray:
        """Return the windows of ``order`` dealt to this process (each to the fewest cells)."""
        cells = np.zeros(self.world_size, dtype=np.int64)
        owner = np.empty(len(order), dtype=np.int64)
        for position, span in enumerate(order):
            owner[position] = cells.argmin()
            cells[owner[position]] += len(self.spans[span])
        return order[owner == self.rank]

    def _minibatches(
        self, order: np.ndarray, rng: np.random.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Minibatches of the windows of ``order``, ``spans_per_read`` windows a read."""
        carried: dict | None = None
        for start in range(0, len(order), self.spans_per_read):
            read = self._read(np.sort(order[start : start + self.spans_per_read]))
            if carried is not None:
                read = {key: _stack([carried[key], rows]) for key, rows in read.items()}
            n = _n_rows(read)
            rows = rng.permutation(n) if self.shuffle else np.arange(n)
            n_full = n - n % self.batch_size
            for first in range(0, n_full, self.batch_size):
                yield self._minibatch(read, rows[first : first + self.batch_size])
            carried = {key: value[rows[n_full:]] for key, value in read.items()}
        if carried is not None and _n_rows(carried) and not self.drop_last:
            yield self._minibatch(carried, np.arange(_n_rows(carried)))

    def _read(self, spans: np.ndarray) -> dict:
        """Rows of the cells of ``spans`` (in file order), each window read whole from disk."""
        cells = np.concatenate([self.spans[i] for i in spans])
        read = self.in_memory[cells]
        for key, (data, dtype) in self.on_disk.items():
            parts = []
            for i in spans:
                span = self.spans[i]
                block = data[span[0] : span[-1] + 1]
                parts.append(block[span - span[0]])
            read[key] = _stack(parts).astype(dtype, copy=False)
        return read

    def _minibatch(self, read: dict, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Tensors of ``rows`` of ``read``, sparse ones as scvi-tools' loader gives them."""
        batch = {}
        for key, value in read.items():
            value = value[rows]
            if sp.issparse(value):
                value = (
                    scipy_to_torch_sparse(value)
                    if self.load_sparse_tensor
                    else torch.from_numpy(value.toarray())
                )
            batch[key] = torch.as_tensor(value)
        return batch


def _stack(parts: list):
    """Rows of ``parts`` one after the other (sparse matrices stay sparse)."""
    if sp.issparse(parts[0]):
        return sp.vstack(parts, format=parts[0].format)
    return np.concatenate(parts)


def _n_rows(read: dict) -> int:
    return next(iter(read.values())).shape[0]


class RequestedOrderLoader:
    """Minibatches of a backed AnnData or MuData with their cells in the order asked for.

    scvi-tools' dataset reads a minibatch of a backed object with its cells sorted (HDF5 reads
    rows in increasing order), so cells asked for out of order would come back in another
    order than asked, every field alike. This puts each minibatch's rows back in the order of
    ``indices``.

    Parameters
    ----------
    loader
        scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` of ``indices``, not shuffled,
        with dense minibatches (``load_sparse_tensor=False``).
    indices
        The cells asked for, in the order wanted.
    batch_size
        The loader's minibatch size.
    """

    def __init__(self, loader, indices: np.ndarray, batch_size: int):
        self.loader = loader
        self.indices = np.asarray(indices)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        starts = range(0, len(self.indices), self.batch_size)
        for start, batch in zip(starts, self.loader, strict=True):
            asked = self.indices[start : start + self.batch_size]
            rows = torch.as_tensor(np.argsort(np.argsort(asked, kind="stable"), kind="stable"))
            yield {key: value[rows] for key, value in batch.items()}
