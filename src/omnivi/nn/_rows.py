"""Run hidden layers on the cells that have a modality, with batch norm fitted to them alone."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from scvi.nn import FCLayers
from torch import nn


@contextmanager
def running_statistics(module: nn.Module) -> Iterator[None]:
    """Use the running statistics of ``module``'s batch norms, in training mode too."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    training = [m.training for m in norms]
    for norm in norms:
        norm.eval()
    try:
        yield
    finally:
        for norm, mode in zip(norms, training, strict=True):
            norm.train(mode)


def layers_on_rows(
    layers: FCLayers,
    n_output: int,
    x: torch.Tensor,
    cat_list: Sequence[torch.Tensor],
    cont: torch.Tensor | None,
    rows: torch.Tensor | None,
) -> torch.Tensor:
    """Return ``layers(x, *cat_list, cont=cont)`` for the cells in ``rows``, zeros elsewhere.

    ``n_output`` is the width of the layers' output.

    ``rows`` (a boolean per cell; ``None``: every cell) names the cells that have the
    modality; the others (zero-padded rows of mosaic data) take no part in the batch-norm
    statistics, so that a cell's output, and the gradient it sends, do not depend on how many
    cells of its minibatch lack the modality. A single such cell in training mode uses the
    running statistics, which batch norm cannot estimate from one cell.
    """
    if rows is None or bool(rows.all()):
        return _apply(layers, x, cat_list, cont)
    out = x.new_zeros(x.shape[0], n_output)
    if bool(rows.any()):
        kept_cats = [c[rows] for c in cat_list]
        out[rows] = _apply(layers, x[rows], kept_cats, None if cont is None else cont[rows])
    return out


def _apply(
    layers: FCLayers,
    x: torch.Tensor,
    cat_list: Sequence[torch.Tensor],
    cont: torch.Tensor | None,
) -> torch.Tensor:
    if layers.training and x.shape[0] == 1:
        with running_statistics(layers):
            return layers(x, *cat_list, cont=cont)
    return layers(x, *cat_list, cont=cont)
