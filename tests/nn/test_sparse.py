"""Sparse ATAC minibatches: every reading of a CSR/CSC tensor equals that of the dense one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import sparse
from scvi.data._utils import scipy_to_torch_sparse

from omnivi.nn import ModalityEncoder, binary_columns, count_accessible
from omnivi.nn._encoders import DENSE_PROJECTION_DENSITY
from omnivi.nn._sparse import accessible_entries, bag_inputs, stored_density


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


def test_stored_density_reads_the_sparse_metadata(layouts, counts):
    dense, compressed = layouts
    assert stored_density(dense) == 1.0
    assert stored_density(compressed) == pytest.approx(counts.nnz / (40 * 300))


@pytest.mark.parametrize("density", [0.004, 0.1])
def test_both_projections_train_as_the_dense_map(density):
    """Training mode: below the density threshold a CSR block is summed row by row (the
    embedding bag), above it multiplied as a dense 0/1 block; either gives the output and
    the gradients of the dense input."""
    matrix = sparse.random(64, 2000, density=density, format="csr", random_state=2)
    matrix.data = np.ceil(matrix.data * 3).astype(np.float32)
    compressed = scipy_to_torch_sparse(matrix)
    assert (stored_density(compressed) < DENSE_PROJECTION_DENSITY) == (density < 0.02)
    batch = torch.randint(2, (64, 1), generator=torch.Generator().manual_seed(0))
    template = ModalityEncoder(2000, 16, n_cat_list=[2], sparse_input=True)
    runs = []
    for x in (torch.tensor(matrix.toarray()), compressed):
        encoder = copy.deepcopy(template)
        torch.manual_seed(3)  # same dropout
        hidden = encoder(x, batch)
        hidden.square().sum().backward()
        runs.append((hidden, {n: p.grad for n, p in encoder.named_parameters()}))
    (dense_hidden, dense_grads), (csr_hidden, csr_grads) = runs
    torch.testing.assert_close(csr_hidden, dense_hidden)
    assert dense_grads["projection.weight"].abs().sum() > 0
    # float32 sums in another order: differences at rounding level of the largest gradient
    # (the bias before batch norm has a gradient of zero up to rounding)
    scale = max(float(grad.abs().max()) for grad in dense_grads.values())
    for name, grad in dense_grads.items():
        torch.testing.assert_close(csr_grads[name], grad, rtol=1e-4, atol=1e-6 * scale)
