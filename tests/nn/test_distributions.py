"""The zero-aware negative binomial against scvi-tools' reference implementation."""

import pytest
import torch
from scvi.distributions import NegativeBinomial

from omnivi.nn._distributions import ZeroAwareNegativeBinomial


def _counts(shape: tuple[int, int], density: float, generator: torch.Generator) -> torch.Tensor:
    present = torch.rand(shape, generator=generator) < density
    return present * torch.randint(1, 500, shape, generator=generator).float()


@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
@pytest.mark.parametrize("per_feature_theta", [True, False])
def test_log_prob_and_gradients_match_scvi(density: float, per_feature_theta: bool):
    generator = torch.Generator().manual_seed(0)
    x = _counts((64, 300), density, generator)
    mu_logits = torch.randn(64, 300, generator=generator, requires_grad=True)
    theta_shape = (300,) if per_feature_theta else (64, 300)
    log_theta = torch.randn(theta_shape, generator=generator, requires_grad=True)

    def evaluate(cls):
        mu = 1e3 * torch.softmax(mu_logits, dim=-1)
        log_prob = cls(mu=mu, theta=log_theta.exp()).log_prob(x)
        grads = torch.autograd.grad(log_prob.sum(), [mu_logits, log_theta])
        return log_prob, grads

    expected, expected_grads = evaluate(NegativeBinomial)
    got, got_grads = evaluate(ZeroAwareNegativeBinomial)
    assert got.shape == expected.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    for g, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_keeps_the_scvi_distribution_interface():
    mu, theta = torch.full((2, 3), 4.0), torch.ones(3)
    dist = ZeroAwareNegativeBinomial(mu=mu, theta=theta, scale=mu / 12)
    assert isinstance(dist, NegativeBinomial)
    torch.testing.assert_close(dist.mean, mu)
    assert dist.sample().shape == (2, 3)
