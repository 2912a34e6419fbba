"""Contrastive loss components (exact values on small cases, degenerate minibatches, intent)
and the encoder-only module."""

import math

import pytest
import torch

from omnivi.module import (
    ContrastiveEncoder,
    ContrastiveObjective,
    batch_mixing_loss,
    cell_type_contrastive_loss,
    centroid_geometry_loss,
)


def _two_clusters(n_per: int = 10, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return centers.repeat_interleave(n_per, dim=0) + noise * torch.randn(
        2 * n_per, 3, generator=gen
    )


def test_cell_type_loss_matches_hand_computation():
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    t = 0.5
    cos = z @ z.T  # unit vectors already
    # anchor 0: positive 1 among {1, 2}; anchor 1: positive 0 among {0, 2}; anchor 2: none
    l0 = -math.log(math.exp(cos[0, 1] / t) / (math.exp(cos[0, 1] / t) + math.exp(cos[0, 2] / t)))
    l1 = -math.log(math.exp(cos[1, 0] / t) / (math.exp(cos[1, 0] / t) + math.exp(cos[1, 2] / t)))
    got = cell_type_contrastive_loss(z, labels, t)
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-5)
    weighted = cell_type_contrastive_loss(z, labels, t, class_weights=torch.tensor([3.0, 1.0]))
    assert weighted.item() == pytest.approx((l0 + l1) / 2, rel=1e-5)  # both anchors type 0


def test_cell_type_loss_prefers_embeddings_that_separate_types():
    z = _two_clusters()
    labels = torch.arange(2).repeat_interleave(10)
    matching = cell_type_contrastive_loss(z, labels, 0.25)
    shuffled = cell_type_contrastive_loss(z, labels[torch.randperm(20)], 0.25)
    assert matching < shuffled


def test_batch_mixing_loss_is_lower_when_batches_mix():
    labels = torch.zeros(20, dtype=torch.long)
    batches = torch.arange(2).repeat_interleave(10)
    separated = _two_clusters()  # batch 0 in one cluster, batch 1 in the other
    mixed = separated[torch.randperm(20, generator=torch.Generator().manual_seed(1))]
    assert batch_mixing_loss(mixed, labels, batches, 0.25) < batch_mixing_loss(
        separated, labels, batches, 0.25
    )


def test_batch_mixing_loss_matches_hand_computation():
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 0])
    batches = torch.tensor([0, 0, 1])
    t = 1.0
    cos = (z @ z.T).tolist()

    def info_nce(anchor: int, positive: int, negative: int) -> float:
        p, n = math.exp(cos[anchor][positive] / t), math.exp(cos[anchor][negative] / t)
        return -math.log(p / (p + n))

    # anchors 0 and 1 have a same-batch and an other-batch cell; anchor 2 has no positive
    expected = (math.exp(-info_nce(0, 1, 2)) + math.exp(-info_nce(1, 0, 2))) / 2
    assert batch_mixing_loss(z, labels, batches, t).item() == pytest.approx(expected, rel=1e-5)


def test_batch_mixing_loss_is_bounded_and_keeps_a_gradient_when_batches_separate():
    labels = torch.zeros(20, dtype=torch.long)
    batches = torch.arange(2).repeat_interleave(10)
    z = (_two_clusters() * 50).requires_grad_(True)  # far apart: batches fully separated
    loss = batch_mixing_loss(z, labels, batches, 0.1)
    loss.backward()
    assert 0.99 < loss.item() <= 1.0  # the reciprocal-InfoNCE form gave values in the hundreds
    assert torch.isfinite(z.grad).all()


def test_centroid_loss_is_zero_for_the_reference_geometry_and_positive_otherwise():
    points = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    reference = torch.cdist(points, points)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    z = 2.0 * points[labels] + torch.tensor([[0.1, 0.0], [-0.1, 0.0]]).repeat(3, 1)
    assert centroid_geometry_loss(z, labels, reference).item() == pytest.approx(0.0, abs=1e-10)
    swapped = torch.tensor([1, 1, 0, 0, 2, 2])
    assert centroid_geometry_loss(z, swapped, reference) > 0.01


@pytest.mark.parametrize(
    ("labels", "batches"),
    [
        ([0], [0]),  # one cell
        ([1, 1, 1, 1], [0, 1, 0, 1]),  # one type
        ([0, 1, 2, 0], [0, 0, 0, 0]),  # one batch
        ([0, 1, 2, 3], [0, 1, 0, 1]),  # no two cells share a type
    ],
)
def test_degenerate_minibatches_give_finite_losses_and_gradients(labels, batches):
    labels, batches = torch.tensor(labels), torch.tensor(batches)
    z = torch.randn(len(labels), 5, requires_grad=True)
    objective = ContrastiveObjective()
    terms = objective(z, labels, batches, torch.ones(4), torch.rand(4, 4))
    terms["total"].backward()
    assert all(torch.isfinite(value) for value in terms.values())
    assert torch.isfinite(z.grad).all()
    if len(set(batches.tolist())) == 1 or len(labels) == len(set(labels.tolist())):
        assert terms["batch"].item() == 0.0
    if len(set(labels.tolist())) == 1:
        assert terms["centroid"].item() == 0.0


def test_objective_weights_terms_and_learns_a_bounded_temperature():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    batches = torch.tensor([0, 1, 0, 1, 0, 1])
    z = torch.randn(6, 4)
    objective = ContrastiveObjective(cell_type_weight=2.0, batch_weight=0.5, centroid_weight=3.0)
    statistics = (torch.ones(3), torch.rand(3, 3))  # class weights, reference geometry
    terms = objective(z, labels, batches, *statistics)
    expected = 2.0 * terms["cell_type"] + 0.5 * terms["batch"] + 3.0 * terms["centroid"]
    torch.testing.assert_close(terms["total"], expected)
    terms["total"].backward()
    assert objective.raw_temperature.grad is not None
    assert objective.temperature.item() == pytest.approx(0.25)
    for raw in (-8.0, 8.0):  # near either end of the range, the gradient is still there
        with torch.no_grad():
            objective.raw_temperature.fill_(raw)
        objective.raw_temperature.grad = None
        objective(z, labels, batches, *statistics)["total"].backward()
        assert 0.1 < objective.temperature.item() < 2.0
        assert objective.raw_temperature.grad.abs().item() > 0
    for temperature in (0.01, 0.1, 2.0):
        with pytest.raises(ValueError, match="temperature"):
            ContrastiveObjective(temperature=temperature)


def test_objective_without_reference_skips_the_centroid_term():
    objective = ContrastiveObjective()
    z, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    terms = objective(z, labels, torch.tensor([0, 1, 0, 1]))
    assert terms["centroid"].item() == 0.0
    # without class weights every anchor weighs the same
    torch.testing.assert_close(
        terms["cell_type"], cell_type_contrastive_loss(z, labels, objective.temperature)
    )


def test_contrastive_encoder_hides_one_modality_only_while_training():
    torch.manual_seed(0)
    module = ContrastiveEncoder(
        {"rna": 20, "protein": 5},
        n_labels=3,
        n_hidden=16,
        n_fusion_hidden=8,
        n_latent=4,
        dropout_rate=0.0,
        modality_dropout=1.0,
    )
    x = {"rna": torch.poisson(torch.full((50, 20), 3.0)), "protein": torch.rand(50, 5) * 10}
    module.eval()
    only = {
        "rna": module.inference(x, torch.tensor([[1.0, 0.0]]).expand(50, 2))["z"],
        "protein": module.inference(x, torch.tensor([[0.0, 1.0]]).expand(50, 2))["z"],
    }
    z = module.train().inference(x)["z"]
    from_rna = torch.isclose(z, only["rna"], atol=1e-6).all(1)
    from_protein = torch.isclose(z, only["protein"], atol=1e-6).all(1)
    assert (from_rna ^ from_protein).all()  # each cell embedded from exactly one modality
    assert from_rna.any()
    assert from_protein.any()
    both = module.eval().inference(x)["z"]
    assert not torch.isclose(both, only["rna"], atol=1e-6).all(1).any()
