"""Presence/absence of features in a minibatch, read from a dense or a compressed sparse tensor.

ATAC minibatches can reach the model as sparse CSR tensors (scvi-tools' ``load_sparse_tensor``);
these helpers read what the model needs from them (which regions are accessible, how many, a
binary target over some regions) in time proportional to the non-zero entries, and give the
same answers for the equivalent dense tensor.
"""

from __future__ import annotations

import torch

_COMPRESSED = (torch.sparse_csr, torch.sparse_csc, torch.sparse_coo)


def _as_csr(x: torch.Tensor) -> torch.Tensor:
    return x if x.layout is torch.sparse_csr else x.to_sparse_csr()


def stored_density(x: torch.Tensor) -> float:
    """Fraction of ``x``'s entries that it stores: 1 for a dense tensor.

    For a sparse tensor, its stored entries over its size, read from its shape and index
    metadata (no pass over the values, no device synchronisation).
    """
    if x.layout not in _COMPRESSED:
        return 1.0
    return x._nnz() / max(x.numel(), 1)


def accessible_entries(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the positive entries of ``x`` (cells x features), row-major.

    A sparse ``x`` is read from its stored entries (explicitly stored zeros are skipped); a
    dense one is scanned whole.
    """
    if x.layout not in _COMPRESSED:
        return x.gt(0).nonzero(as_tuple=True)
    x = _as_csr(x)
    crow, cols, values = x.crow_indices(), x.col_indices(), x.values()
    rows = torch.repeat_interleave(
        torch.arange(x.shape[0], device=x.device), crow.diff().long(), output_size=cols.numel()
    )
    positive = values > 0
    return rows[positive], cols[positive].long()


def bag_inputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices and per-row offsets of the positive entries of ``x``.

    The input and offsets of :class:`torch.nn.EmbeddingBag` for a sum over the features each
    cell has.
    """
    rows, cols = accessible_entries(x)
    return cols, torch.searchsorted(rows, torch.arange(x.shape[0], device=x.device))


def count_accessible(x: torch.Tensor) -> torch.Tensor:
    """Return the number of positive entries in each row of ``x`` (cells x 1, its dtype)."""
    if x.layout not in _COMPRESSED:
        # sign() of non-negative data counts the non-zero entries, much faster than a
        # count_nonzero that converts the whole block to integers.
        return x.sign().sum(dim=-1, keepdim=True)
    rows, _ = accessible_entries(x)
    return torch.bincount(rows, minlength=x.shape[0]).to(x.dtype).unsqueeze(-1)


def binary_columns(x: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """Dense float32 0/1 table of where ``x`` is positive, on ``columns`` only (``None``: all).

    From a sparse ``x`` only the returned table is dense (cells x len(columns)).
    """
    if x.layout not in _COMPRESSED:
        return (x if columns is None else x.index_select(1, columns)).gt(0).float()
    rows, cols = accessible_entries(x)
    n_columns = x.shape[1]
    if columns is not None:
        position = torch.full((n_columns,), -1, dtype=torch.long, device=x.device)
        position[columns] = torch.arange(columns.numel(), device=x.device)
        cols = position[cols]
        kept = cols >= 0
        rows, cols, n_columns = rows[kept], cols[kept], columns.numel()
    table = torch.zeros(x.shape[0], n_columns, device=x.device)
    table[rows, cols] = 1.0
    return table
