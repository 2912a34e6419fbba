"""Decoders: one per modality, each returning the likelihood of that modality's data."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scvi.distributions import NegativeBinomialMixture, ZeroInflatedNegativeBinomial
from scvi.nn import FCLayers
from torch import nn
from torch.distributions import Bernoulli, Distribution, Normal

from omnivi._constants import COUNT_LIKELIHOODS

from ._distributions import ZeroAwareNegativeBinomial
from ._rows import layers_on_rows


def _hidden_layers(
    n_latent: int,
    n_hidden: int,
    n_cat_list: list[int] | None,
    n_cont: int,
    n_layers: int,
    use_batch_norm: bool,
    use_layer_norm: bool,
) -> FCLayers:
    """Latent-to-hidden layers with batch and covariates injected into every layer."""
    return FCLayers(
        n_in=n_latent,
        n_out=n_hidden,
        n_cat_list=n_cat_list,
        n_cont=n_cont,
        n_layers=n_layers,
        n_hidden=n_hidden,
        dropout_rate=0.0,
        use_batch_norm=use_batch_norm,
        use_layer_norm=use_layer_norm,
        inject_covariates=True,
    )


def _with_depth(cont: torch.Tensor | None, log_depth: torch.Tensor) -> torch.Tensor:
    """Append the cells' log depth (cells x 1) to the continuous covariates."""
    return log_depth if cont is None else torch.cat([cont, log_depth], dim=-1)


class _ModalityDecoder(nn.Module):
    """Shared constructor of the per-modality decoders: hidden layers plus output heads."""

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        likelihood: str,
        n_cat_list: list[int] | None = None,
        n_cont: int = 0,
        n_layers: int = 1,
        n_hidden: int = 128,
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
    ):
        super().__init__()
        self.likelihood = likelihood
        self.n_hidden = n_hidden
        self.px_decoder = _hidden_layers(
            n_latent, n_hidden, n_cat_list, n_cont, n_layers, use_batch_norm, use_layer_norm
        )

    def _hidden(
        self,
        z: torch.Tensor,
        cat_list: tuple[torch.Tensor, ...],
        cont: torch.Tensor | None,
        rows: torch.Tensor | None,
    ) -> torch.Tensor:
        """Hidden layers' output; zeros for the cells outside ``rows`` (see ``forward``)."""
        return layers_on_rows(self.px_decoder, self.n_hidden, z, cat_list, cont, rows)


class ExpressionDecoder(_ModalityDecoder):
    """Decode gene expression.

    ``"nb"`` and ``"zinb"`` scale a softmax over genes by the cell's observed library size
    and use one inverse dispersion per gene, as scVI does; ``"normal"`` predicts the
    normalised input directly with unit variance, i.e. a mean-squared-error loss.

    Parameters
    ----------
    n_latent
        Dimension of the latent.
    n_output
        Number of genes.
    likelihood
        ``"nb"``, ``"zinb"`` or ``"normal"``.
    n_cat_list, n_cont
        Categorical covariates (batch first) and number of continuous covariates.
    n_layers, n_hidden
        Depth and width of the hidden layers.
    use_batch_norm, use_layer_norm
        Normalisation of the hidden layers.
    """

    def __init__(self, n_latent: int, n_output: int, likelihood: str = "nb", **kwargs):
        super().__init__(n_latent, n_output, likelihood, **kwargs)
        self.px_scale_decoder = nn.Linear(self.n_hidden, n_output)
        self.px_dropout_decoder = (
            nn.Linear(self.n_hidden, n_output) if likelihood == "zinb" else None
        )
        self.px_log_theta = nn.Parameter(torch.zeros(n_output)) if likelihood != "normal" else None

    def forward(
        self,
        z: torch.Tensor,
        library: torch.Tensor,
        *cat_list: torch.Tensor,
        cont: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> Distribution:
        """Return the expression likelihood given latent ``z`` and library sizes ``library``.

        ``library`` (cells x 1) scales the count likelihoods; ``"normal"`` ignores it.

        ``rows`` (a boolean per cell; ``None``: all) decodes only the cells that have the
        modality, whose batch-norm statistics then leave out the others (mosaic data, in
        training); the others get the likelihood of a zero hidden layer, for a loss that
        ignores them.
        """
        hidden = self._hidden(z, cat_list, cont, rows)
        out = self.px_scale_decoder(hidden)
        if self.likelihood == "normal":
            return Normal(out, torch.ones_like(out))
        scale = F.softmax(out, dim=-1)
        theta = self.px_log_theta.exp()
        if self.likelihood == "zinb":
            zi_logits = self.px_dropout_decoder(hidden)
            return ZeroInflatedNegativeBinomial(
                mu=library * scale, theta=theta, zi_logits=zi_logits, scale=scale
            )
        return ZeroAwareNegativeBinomial(mu=library * scale, theta=theta, scale=scale)


class ProteinDecoder(_ModalityDecoder):
    """Decode surface protein counts.

    ``"nbmixture"`` (default) is a two-component negative-binomial mixture of a background
    rate and a larger foreground rate, as in totalVI; ``"nb"`` a single negative binomial;
    ``"normal"`` a unit-variance Gaussian on normalised input (mean-squared error). Under the
    count likelihoods the cell's log total protein count enters the hidden layers as a
    covariate (the role of totalVI's per-cell background scale), so that antibody capture
    depth, which differs between cells and batches, need not be stored in the latent.

    Parameters
    ----------
    n_latent
        Dimension of the latent.
    n_output
        Number of proteins.
    likelihood
        ``"nbmixture"``, ``"nb"`` or ``"normal"``.
    n_cont
        Number of continuous covariates besides depth.
    **kwargs
        Hidden-layer options, as for :class:`ExpressionDecoder`.
    """

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        likelihood: str = "nbmixture",
        n_cont: int = 0,
        **kwargs,
    ):
        takes_depth = likelihood in COUNT_LIKELIHOODS  # the rule of modalities_with_depth
        super().__init__(n_latent, n_output, likelihood, n_cont=n_cont + takes_depth, **kwargs)
        self.takes_depth = takes_depth
        self.py_back_decoder = nn.Linear(self.n_hidden, n_output)
        mixture = likelihood == "nbmixture"
        self.py_fore_decoder = nn.Linear(self.n_hidden, n_output) if mixture else None
        self.py_mixing_decoder = nn.Linear(self.n_hidden, n_output) if mixture else None
        self.py_log_theta = (
            nn.Parameter(torch.full((n_output,), 2.0)) if likelihood != "normal" else None
        )

    def forward(
        self,
        z: torch.Tensor,
        *cat_list: torch.Tensor,
        cont: torch.Tensor | None = None,
        log_depth: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> Distribution:
        """Return the protein likelihood given latent ``z``.

        ``log_depth`` (cells x 1, ``log1p`` of each cell's total count) is required under the
        count likelihoods and unused under ``"normal"``. ``rows``: as for
        :meth:`ExpressionDecoder.forward`.
        """
        if self.takes_depth:
            if log_depth is None:
                raise ValueError(f"The {self.likelihood!r} protein decoder needs `log_depth`.")
            cont = _with_depth(cont, log_depth)
        hidden = self._hidden(z, cat_list, cont, rows)
        out = self.py_back_decoder(hidden)
        if self.likelihood == "normal":
            return Normal(out, torch.ones_like(out))
        theta = self.py_log_theta.exp()
        rate_back = out.clamp(max=12).exp()
        if self.likelihood == "nb":
            return ZeroAwareNegativeBinomial(mu=rate_back, theta=theta)
        rate_fore = rate_back * (1 + F.softplus(self.py_fore_decoder(hidden)))
        return NegativeBinomialMixture(
            mu1=rate_back,
            mu2=rate_fore,
            theta1=theta,
            mixture_logits=self.py_mixing_decoder(hidden),
        )


class AccessibilityDecoder(_ModalityDecoder):
    """Decode binarised chromatin accessibility with a Bernoulli likelihood.

    The cell's log number of accessible regions enters the hidden layers as a covariate, so
    sequencing depth need not be stored in the latent. The output layer can be evaluated on a
    subset of regions only, which makes a training step on wide peak sets cheap.

    Parameters
    ----------
    n_latent
        Dimension of the latent.
    n_output
        Number of regions.
    likelihood
        ``"bernoulli"``.
    n_cont
        Number of continuous covariates besides depth.
    **kwargs
        Hidden-layer options, as for :class:`ExpressionDecoder`.
    """

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        likelihood: str = "bernoulli",
        n_cont: int = 0,
        **kwargs,
    ):
        super().__init__(n_latent, n_output, likelihood, n_cont=n_cont + 1, **kwargs)
        self.pa_logit_decoder = nn.Linear(self.n_hidden, n_output)

    def forward(
        self,
        z: torch.Tensor,
        log_depth: torch.Tensor,
        *cat_list: torch.Tensor,
        cont: torch.Tensor | None = None,
        regions: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> Distribution:
        """Return the accessibility likelihood given ``z`` and log depth (cells x 1).

        ``regions`` (indices) restricts the output to those regions; ``None`` gives all.
        ``rows``: as for :meth:`ExpressionDecoder.forward`.
        """
        hidden = self._hidden(z, cat_list, _with_depth(cont, log_depth), rows)
        head = self.pa_logit_decoder
        if regions is None:
            logits = head(hidden)
        else:
            logits = F.linear(hidden, head.weight[regions], head.bias[regions])
        return Bernoulli(logits=logits, validate_args=False)
