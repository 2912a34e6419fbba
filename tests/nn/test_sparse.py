"""Sparse ATAC minibatches: every reading of a CSR/CSC tensor equals that of the dense one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from scvi.data._utils import scipy_to_torch_sparse

from omnivi.nn import ModalityEncoder, binary_columns, count_accessible
from omnivi.nn._sparse import accessible_entries, bag_inputs


@pytest.fixture
def counts() -> sparse.csr_matrix:
    """Cells x regions with empty rows, a full last column and explicitly stored zeros."""
    matrix = sparse.random(40, 300, density=0.06, format="csr", dtype=np.float32, random_state=1)
    matrix.data = np.ceil(matrix.data * 4)
    matrix[5] = 0.0
    matrix[:, -1] = 2.0
    matrix.data[::9] = 0.0  # stored but not accessible
    assert (matrix.data == 0).any()
    assert matrix.getnnz(axis=1).min() >= 1
    return matrix


@pytest.fixture(params=["csr", "csc"])
def layouts(request, counts) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense tensor and its sparse twin, as scvi-tools' loader would give it."""
    source = counts if request.param == "csr" else counts.tocsc()
    return torch.tensor(counts.toarray()), scipy_to_torch_sparse(source)


def test_entries_and_bag_inputs_match_dense(layouts):
    dense, compressed = layouts
    for got, want in zip(accessible_entries(compressed), accessible_entries(dense), strict=True):
        torch.testing.assert_close(got.long(), want.long())
    for got, want in zip(bag_inputs(compressed), bag_inputs(dense), strict=True):
        torch.testing.assert_close(got.long(), want.long())


def test_counts_skip_stored_zeros(layouts, counts):
    dense, compressed = layouts
    expected = torch.tensor((counts.toarray() > 0).sum(axis=1, keepdims=True), dtype=torch.float)
    torch.testing.assert_close(count_accessible(compressed), expected)
    torch.testing.assert_close(count_accessible(dense), expected)


@pytest.mark.parametrize("columns", [None, [0, 7, 150, 299], [299]])
def test_binary_columns_match_dense(layouts, columns):
    dense, compressed = layouts
    index = None if columns is None else torch.tensor(columns)
    got = binary_columns(compressed, index)
    want = binary_columns(dense, index)
    assert got.layout is torch.strided
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)
    expected = dense.gt(0).float() if index is None else dense[:, index].gt(0).float()
    torch.testing.assert_close(got, expected)


def test_sparse_encoder_reads_csr_as_dense(layouts):
    """Same hidden representation, and the padded rows of mosaic data stay zero."""
    dense, compressed = layouts
    encoder = ModalityEncoder(300, 16, n_cat_list=[2], sparse_input=True).eval()
    batch = torch.randint(2, (40, 1), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(encoder(compressed, batch), encoder(dense, batch))
    rows = torch.ones(40, dtype=torch.bool)
    rows[[2, 5, 30]] = False
    got = encoder(compressed, batch, rows=rows)
    torch.testing.assert_close(got, encoder(dense, batch, rows=rows))
    assert torch.count_nonzero(got[~rows]) == 0
