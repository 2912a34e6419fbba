"""Minibatches of a backed AnnData read a span of cells at a time (SpanReadLoader)."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch
from scvi import REGISTRY_KEYS
from scvi.dataloaders import AnnDataLoader

from omnivi.data import SpanReadLoader, SparseInputDataSplitter, _validation
from omnivi.data._backed import SPANS_PER_READ
from omnivi.data._validation import matrix_rows
from omnivi.model import OmniVI

pytestmark = pytest.mark.real_data

N_CELLS, SPAN_ROWS, BATCH_SIZE = 600, 50, 64


@pytest.fixture
def rna(real_file) -> ad.AnnData:
    """RNA of bmmc_cite_small (600 cells), each cell's position in a covariate column."""
    adata = md.read_h5mu(real_file("bmmc_cite_small.h5mu"))["rna"].copy()
    assert adata.n_obs == N_CELLS
    adata.obs["position"] = np.arange(N_CELLS, dtype=float)
    return adata


@pytest.fixture
def backed_manager(rna, tmp_path):
    """The data manager of an OmniVI model of ``rna`` read back from its file, backed."""
    path = tmp_path / "rna.h5ad"
    rna.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    OmniVI.setup_anndata(
        backed, batch_key="batch", labels_key="cell_type", continuous_covariate_keys=["position"]
    )
    return OmniVI(backed).adata_manager


def _positions(batch: dict) -> np.ndarray:
    return batch[REGISTRY_KEYS.CONT_COVS_KEY].numpy().ravel().astype(int)


def _loader(manager, cells: np.ndarray, **options) -> SpanReadLoader:
    """A loader of ``cells`` in minibatches of 64, windows of 50 rows, 3 windows a read."""
    return SpanReadLoader(
        manager,
        cells,
        **{"batch_size": BATCH_SIZE, "span_rows": SPAN_ROWS, "spans_per_read": 3} | options,
    )


def _cells(n: int = 540) -> np.ndarray:
    return np.random.default_rng(0).choice(N_CELLS, n, replace=False)


@pytest.mark.parametrize("load_sparse_tensor", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_cell_comes_once_with_its_own_values(
    rna, backed_manager, shuffle, load_sparse_tensor
):
    cells = _cells()
    loader = _loader(backed_manager, cells, shuffle=shuffle, load_sparse_tensor=load_sparse_tensor)
    batches = list(loader)
    assert len(batches) == len(loader) == 9
    assert [len(_positions(b)) for b in batches] == [BATCH_SIZE] * 8 + [540 - 8 * BATCH_SIZE]

    positions = np.concatenate([_positions(b) for b in batches])
    np.testing.assert_array_equal(np.sort(positions), np.sort(cells))
    if not shuffle:
        np.testing.assert_array_equal(positions, np.sort(cells))

    counts = rna.X.toarray()
    batch_codes = rna.obs["batch"].cat.codes.to_numpy()
    for batch in batches:
        x = batch[REGISTRY_KEYS.X_KEY]
        assert x.layout is (torch.sparse_csr if load_sparse_tensor else torch.strided)
        assert x.dtype is torch.float32
        rows = _positions(batch)
        np.testing.assert_array_equal(x.to_dense().numpy(), counts[rows])
        np.testing.assert_array_equal(
            batch[REGISTRY_KEYS.BATCH_KEY].numpy().ravel(), batch_codes[rows]
        )
        assert batch[REGISTRY_KEYS.BATCH_KEY].dtype is torch.int64


def test_shuffled_minibatches_mix_the_spans_of_a_read_and_drop_last(backed_manager):
    loader = _loader(backed_manager, _cells(), shuffle=True, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(loader) == 8
    assert all(len(_positions(b)) == BATCH_SIZE for b in batches)
    # cells of a minibatch come from several windows of the file, in no fixed order
    windows = [np.unique(_positions(b) // SPAN_ROWS) for b in batches]
    assert all(len(w) > 1 for w in windows)
    assert not all(np.all(np.diff(_positions(b)) > 0) for b in batches)


def test_the_order_is_new_each_epoch_and_follows_torch_seed(backed_manager):
    loader = _loader(backed_manager, _cells(), shuffle=True, spans_per_read=SPANS_PER_READ)

    def epoch() -> np.ndarray:
        return np.concatenate([_positions(b) for b in loader])

    torch.manual_seed(0)
    first, second = epoch(), epoch()
    assert not np.array_equal(first, second)
    torch.manual_seed(0)
    np.testing.assert_array_equal(epoch(), first)


def test_the_splitter_reads_spans_from_a_backed_anndata_only(rna, backed_manager):
    splitter = SparseInputDataSplitter(backed_manager, batch_size=BATCH_SIZE)
    splitter.setup()
    assert isinstance(splitter.train_dataloader(), SpanReadLoader)
    assert isinstance(splitter.val_dataloader(), SpanReadLoader)
    # training and validation cells together are every cell, once
    positions = [
        _positions(b)
        for lo in (splitter.train_dataloader(), splitter.val_dataloader())
        for b in lo
    ]
    np.testing.assert_array_equal(np.sort(np.concatenate(positions)), np.arange(N_CELLS))

    as_scvi = SparseInputDataSplitter(backed_manager, batch_size=BATCH_SIZE, span_rows=None)
    as_scvi.setup()
    assert isinstance(as_scvi.train_dataloader(), AnnDataLoader)

    OmniVI.setup_anndata(rna, batch_key="batch")
    in_memory = SparseInputDataSplitter(OmniVI(rna).adata_manager, batch_size=BATCH_SIZE)
    in_memory.setup()
    assert isinstance(in_memory.train_dataloader(), AnnDataLoader)


def test_bad_span_settings_are_refused(backed_manager):
    with pytest.raises(ValueError, match="span_rows and spans_per_read must be positive"):
        SpanReadLoader(backed_manager, _cells(), batch_size=BATCH_SIZE, span_rows=0)


@pytest.mark.parametrize("dense", [False, True])
def test_matrix_rows_reads_any_rows_from_disk_in_their_order(rna, tmp_path, monkeypatch, dense):
    if dense:
        rna.X = rna.X.toarray()
    path = tmp_path / "rna.h5ad"
    rna.write_h5ad(path)
    monkeypatch.setattr(_validation, "BLOCK_ROWS", 64)
    on_disk = ad.read_h5ad(path, backed="r").X
    counts = rna.X.toarray() if not dense else rna.X
    rows = np.random.default_rng(0).permutation(N_CELLS)[:250]  # unsorted, across blocks
    np.testing.assert_array_equal(matrix_rows(on_disk, rows).toarray(), counts[rows])
    np.testing.assert_array_equal(matrix_rows(on_disk).toarray(), counts)
    np.testing.assert_array_equal(matrix_rows(rna.X, rows).toarray(), counts[rows])
    assert matrix_rows(on_disk, np.array([], dtype=int)).shape == (0, rna.n_vars)
    mask = np.zeros(N_CELLS, dtype=bool)
    mask[rows] = True  # a boolean mask gives the rows in increasing order
    np.testing.assert_array_equal(matrix_rows(on_disk, mask).toarray(), counts[np.sort(rows)])


@pytest.mark.parametrize("shuffle", [True, False])
def test_distributed_processes_read_their_own_cells_and_as_many_minibatches(
    backed_manager, shuffle
):
    """Two processes (ranks 0 and 1) draw the same deal of windows and never share a cell."""

    def epochs(rank: int) -> list[list[np.ndarray]]:
        loader = _loader(
            backed_manager, _cells(), shuffle=shuffle, drop_last=True, rank=rank, world_size=2
        )
        assert len(loader) == (540 - SPAN_ROWS) // 2 // BATCH_SIZE == 3
        return [[_positions(b) for b in loader] for _ in range(2)]

    torch.manual_seed(0)
    first = epochs(0)
    torch.manual_seed(1)  # the deal must not depend on torch's state, which processes differ in
    second = epochs(1)
    for own, other in zip(first, second, strict=True):
        assert [len(b) for b in own] == [len(b) for b in other] == [BATCH_SIZE] * 3
        own, other = np.concatenate(own), np.concatenate(other)
        assert len(np.unique(own)) == len(own)
        assert not np.intersect1d(own, other).size
        assert np.isin(np.concatenate([own, other]), _cells()).all()
    if shuffle:  # a new deal every epoch
        cells_by_epoch = [np.sort(np.concatenate(epoch)) for epoch in first]
        assert not np.array_equal(*cells_by_epoch)


def test_too_few_cells_for_the_processes_are_refused(backed_manager):
    with pytest.raises(ValueError, match="too few to give each of 8 processes"):
        SpanReadLoader(
            backed_manager, _cells(100), BATCH_SIZE, drop_last=True, rank=0, world_size=8
        )


def test_distributed_validation_reads_every_cell_once(backed_manager):
    """Without drop_last (validation) each process gives all its cells."""
    cells = _cells(100)
    positions = [
        np.concatenate(
            [
                _positions(b)
                for b in _loader(
                    backed_manager, cells, spans_per_read=SPANS_PER_READ, rank=r, world_size=2
                )
            ]
        )
        for r in (0, 1)
    ]
    np.testing.assert_array_equal(np.sort(np.concatenate(positions)), np.sort(cells))
