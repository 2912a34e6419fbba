"""Contrastive objectives on a minibatch of embeddings: cell types apart, batches mixed.

Three loss components, each vectorised over the minibatch's similarity (or centroid distance)
matrix, each well defined (zero, with a gradient path) when the minibatch has one cell, one
cell type or one batch:

- :func:`cell_type_contrastive_loss`: supervised contrastive loss, positives = same type;
- :func:`batch_mixing_loss`: within each type, the share of a cell's similarity that falls on
  its own batch, so that minimising it makes cells of a type from other batches as similar as
  those from the same batch;
- :func:`centroid_geometry_loss`: keeps the relative distances between cell-type centroids
  close to those of a reference space (e.g. a PCA of the training data).

:class:`ContrastiveObjective` weights and sums them, with a learnable temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONTRASTIVE_TERMS = ("cell_type", "batch", "centroid")


def _zero(z: torch.Tensor) -> torch.Tensor:
    """Return a zero loss that keeps ``z`` in the autograd graph."""
    return z.sum() * 0.0


def _scaled_cosine_logits(z: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Cosine similarities / temperature, with each cell's similarity to itself at ``-inf``."""
    unit = F.normalize(z, dim=-1)
    logits = unit @ unit.T / temperature
    self_pairs = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    return logits.masked_fill(self_pairs, float("-inf"))


def cell_type_contrastive_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    temperature: torch.Tensor | float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss with cosine similarity: cells of a type pulled together.

    For each anchor cell, the mean log-probability (softmax over all other cells of the
    minibatch) of the cells that share its label; averaged over anchors that have at least
    one such cell, weighted by ``class_weights[label]``.

    Parameters
    ----------
    z
        Embeddings, cells x dimensions.
    labels
        Integer cell-type code per cell (shape ``(n,)``).
    temperature
        Softmax temperature of the cosine similarities.
    class_weights
        Weight per cell-type code (e.g. inverse frequency); ``None`` weighs anchors equally.

    Returns
    -------
    A scalar; zero when no cell has a same-type partner.
    """
    if z.shape[0] < 2:
        return _zero(z)
    logits = _scaled_cosine_logits(z, torch.as_tensor(temperature, device=z.device))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = labels[:, None] == labels[None, :]
    positives.fill_diagonal_(False)
    n_positives = positives.sum(dim=1)
    anchors = n_positives > 0
    if not anchors.any():
        return _zero(z)
    positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    per_anchor = -positive_log_prob[anchors] / n_positives[anchors]
    if class_weights is None:
        return per_anchor.mean()
    weights = class_weights[labels[anchors]]
    return (weights * per_anchor).sum() / weights.sum()


def batch_mixing_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    batches: torch.Tensor,
    temperature: torch.Tensor | float,
) -> torch.Tensor:
    """Share of each cell's within-type similarity that falls on cells of its own batch.

    For each anchor, among the other cells of its type, the softmax weight (of the scaled
    cosine similarities) carried by same-batch cells: ``exp(-InfoNCE)`` of the within-type
    InfoNCE loss whose positives are same-batch cells. It is near 1 when batches are
    separated and falls as cells of other batches come as close as the anchor's own;
    minimising it mixes batches within each type. Bounded in [0, 1], with the optimum of the
    reciprocal InfoNCE it replaces (CELLULAR's form, unbounded as batches separate). Anchors
    need at least one same-batch and one other-batch cell of their type.

    Parameters
    ----------
    z
        Embeddings, cells x dimensions.
    labels
        Integer cell-type code per cell.
    batches
        Integer batch code per cell.
    temperature
        Softmax temperature of the cosine similarities.

    Returns
    -------
    A scalar in [0, 1]; zero when no type has cells from two batches.
    """
    if z.shape[0] < 2:
        return _zero(z)
    logits = _scaled_cosine_logits(z, torch.as_tensor(temperature, device=z.device))
    same_type = labels[:, None] == labels[None, :]
    same_type.fill_diagonal_(False)
    same_batch = batches[:, None] == batches[None, :]
    positives = same_type & same_batch
    negatives = same_type & ~same_batch
    anchors = positives.any(dim=1) & negatives.any(dim=1)
    if not anchors.any():
        return _zero(z)
    logits = logits[anchors]
    all_of_type = torch.logsumexp(logits.masked_fill(~same_type[anchors], float("-inf")), dim=1)
    same_of_type = torch.logsumexp(logits.masked_fill(~positives[anchors], float("-inf")), dim=1)
    return torch.exp(same_of_type - all_of_type).mean()


def centroid_geometry_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    reference_distances: torch.Tensor,
) -> torch.Tensor:
    """Mean squared error between normalised cell-type centroid distance matrices.

    The centroids of the cell types present in the minibatch are computed from ``z``; their
    pairwise Euclidean distances, divided by their largest, are compared with the same types'
    entries of ``reference_distances``, likewise divided by their largest.

    Parameters
    ----------
    z
        Embeddings, cells x dimensions.
    labels
        Integer cell-type code per cell, indexing ``reference_distances``.
    reference_distances
        Types x types distances between the cell-type centroids of a reference space.

    Returns
    -------
    A scalar; zero when the minibatch holds fewer than two types.
    """
    present, codes = torch.unique(labels, return_inverse=True)
    if present.numel() < 2:
        return _zero(z)
    members = F.one_hot(codes, present.numel()).to(z.dtype)
    centroids = (members.T @ z) / members.sum(dim=0)[:, None]
    upper = torch.triu_indices(present.numel(), present.numel(), offset=1, device=z.device)
    distances = F.pdist(centroids)  # condensed upper triangle, row-major like `upper`
    reference = reference_distances[present][:, present][upper[0], upper[1]]
    distances = distances / distances.max().clamp_min(1e-12)
    reference = reference / reference.max().clamp_min(1e-12)
    return F.mse_loss(distances, reference)


class ContrastiveObjective(nn.Module):
    """The three contrastive terms, weighted, with a learnable temperature.

    What the terms compare with, the statistics of the training cells (class weights, the
    reference geometry of the cell-type centroids), is given to :meth:`forward`: the training
    plan computes it from the cells it trains on.

    Parameters
    ----------
    cell_type_weight, batch_weight, centroid_weight
        Weights of the three terms.
    temperature
        Initial softmax temperature of the cosine similarities.
    temperature_range
        The temperature stays inside this open interval: it is ``low + (high - low) *
        sigmoid(raw)`` of a learnable ``raw``, so its gradient never vanishes at a bound.
    """

    def __init__(
        self,
        cell_type_weight: float = 0.9,
        batch_weight: float = 0.1,
        centroid_weight: float = 1.0,
        temperature: float = 0.25,
        temperature_range: tuple[float, float] = (0.1, 2.0),
    ):
        super().__init__()
        low, high = temperature_range
        if not 0 < low < temperature < high:
            raise ValueError(
                f"temperature {temperature} must lie strictly inside temperature_range "
                f"{temperature_range}, whose lower end must be positive."
            )
        self.weights = {
            "cell_type": cell_type_weight,
            "batch": batch_weight,
            "centroid": centroid_weight,
        }
        self.temperature_range = (low, high)
        share = (temperature - low) / (high - low)
        self.raw_temperature = nn.Parameter(torch.logit(torch.tensor(share)))

    @property
    def temperature(self) -> torch.Tensor:
        """The current temperature, inside ``temperature_range``."""
        low, high = self.temperature_range
        return low + (high - low) * torch.sigmoid(self.raw_temperature)

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor,
        batches: torch.Tensor,
        class_weights: torch.Tensor | None = None,
        reference_distances: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Evaluate the terms on labelled cells.

        Parameters
        ----------
        z
            Embeddings of labelled cells.
        labels, batches
            Cell-type and batch codes of those cells (shape ``(n,)``).
        class_weights
            Weight per cell-type code for the cell-type term (inverse frequency on the
            training cells); ``None`` weighs every anchor the same.
        reference_distances
            Types x types distances between cell-type centroids of a reference space;
            ``None`` turns the centroid term off.

        Returns
        -------
        Each term (unweighted) under its name in :data:`CONTRASTIVE_TERMS`, and their
        weighted sum under ``"total"``.
        """
        temperature = self.temperature
        terms = {
            "cell_type": cell_type_contrastive_loss(z, labels, temperature, class_weights),
            "batch": batch_mixing_loss(z, labels, batches, temperature),
            "centroid": (
                _zero(z)
                if reference_distances is None
                else centroid_geometry_loss(z, labels, reference_distances)
            ),
        }
        terms["total"] = sum(self.weights[name] * terms[name] for name in CONTRASTIVE_TERMS)
        return terms


def labelled_contrastive_terms(
    objective: ContrastiveObjective,
    z: torch.Tensor,
    labels: torch.Tensor,
    batches: torch.Tensor,
    unlabeled_code: int,
    class_weights: torch.Tensor | None = None,
    reference_distances: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Evaluate ``objective`` on the cells whose label is not ``unlabeled_code``.

    ``labels`` and ``batches`` are the registry's code columns (cells x 1);
    ``class_weights`` and ``reference_distances`` as for :meth:`ContrastiveObjective.forward`.
    """
    labels, batches = labels.view(-1).long(), batches.view(-1).long()
    keep = labels != unlabeled_code
    return objective(z[keep], labels[keep], batches[keep], class_weights, reference_distances)
