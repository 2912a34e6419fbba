"""Likelihoods specialised for sparse count data."""

from __future__ import annotations

import torch
from scvi.distributions import NegativeBinomial

_EPS = 1e-8


class ZeroAwareNegativeBinomial(NegativeBinomial):
    """Negative binomial (mean ``mu``, inverse dispersion ``theta``) fast on sparse counts.

    The same distribution as :class:`scvi.distributions.NegativeBinomial`, with the same
    log-density to floating-point precision. Its log-density has three log-Gamma terms,
    ``lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)``, which cancel exactly where the
    count ``x`` is zero; :meth:`log_prob` evaluates them (and, in the backward pass, their
    digamma derivatives) at the non-zero counts only. Single-cell counts are mostly zeros, so
    this removes most of the likelihood's cost.
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Elementwise log-density of counts ``value`` (same shape as ``mu``)."""
        log_theta_mu = torch.log(self.theta + self.mu + _EPS)
        log_density = self.theta * (torch.log(self.theta + _EPS) - log_theta_mu) + value * (
            torch.log(self.mu + _EPS) - log_theta_mu
        )
        nonzero = value.gt(0).nonzero(as_tuple=True)
        counts, theta = value[nonzero], self.theta[nonzero]
        gamma_terms = torch.lgamma(counts + theta) - torch.lgamma(theta) - torch.lgamma(counts + 1)
        return log_density.index_put(nonzero, gamma_terms, accumulate=True)
