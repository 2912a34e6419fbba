"""Shapes and behaviour of the encoder and decoder building blocks."""

from __future__ import annotations

import pytest
import torch
from scvi.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    ZeroInflatedNegativeBinomial,
)
from torch.distributions import Bernoulli, Normal

from omnivi.nn import (
    AccessibilityDecoder,
    ExpressionDecoder,
    FusionEncoder,
    ModalityEncoder,
    ProteinDecoder,
    hide_one_modality,
)
from omnivi.nn._sparse import bag_inputs

N_CELLS = 32


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def _counts(gen, n_features, n_cells=N_CELLS, density=0.3, max_count=6):
    values = torch.randint(1, max_count, (n_cells, n_features), generator=gen).float()
    keep = torch.rand(n_cells, n_features, generator=gen) < density
    return values * keep


def _batch(gen, n_batch=3, n_cells=N_CELLS):
    return torch.randint(n_batch, (n_cells, 1), generator=gen)


# ------------------------------------------------------------------------------ encoders
@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_modality_encoder_shapes(gen, sparse_input, n_layers):
    encoder = ModalityEncoder(
        50, 16, n_cat_list=[3, 2], n_cont=2, n_layers=n_layers, sparse_input=sparse_input
    )
    x = _counts(gen, 50)
    cats = [_batch(gen, 3), _batch(gen, 2)]
    cont = torch.randn(N_CELLS, 2, generator=gen)
    out = encoder(x, *cats, cont=cont)
    assert out.shape == (N_CELLS, 16)
    assert torch.isfinite(out).all()


def test_modality_encoder_uses_covariates(gen):
    encoder = ModalityEncoder(20, 8, n_cat_list=[3], dropout_rate=0.0).eval()
    x = _counts(gen, 20)
    zeros = torch.zeros(N_CELLS, 1, dtype=torch.long)
    assert not torch.allclose(encoder(x, zeros), encoder(x, zeros + 2))


def test_bag_inputs_indices_and_offsets():
    x = torch.tensor([[0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    cols, offsets = bag_inputs(x)
    assert cols.tolist() == [1, 3, 0]
    assert offsets.tolist() == [0, 2, 2]


def test_sparse_projection_equals_dense_linear_map_of_binarised_input(gen):
    """The EmbeddingBag projection is ``x.gt(0) @ W`` for any counts, empty rows included."""
    encoder = ModalityEncoder(300, 24, sparse_input=True)
    x = _counts(gen, 300, density=0.05, max_count=9)
    x[3] = 0.0  # a cell with no accessible region
    x[7, :] = 0.0
    x[7, -1] = 4.0  # only the last region
    projected = encoder.projection(*bag_inputs(x))
    expected = x.gt(0).float() @ encoder.projection.weight
    torch.testing.assert_close(projected, expected, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(projected[3]) == 0


def test_sparse_encoder_forward_feeds_projection_to_layers(gen):
    """Without covariates, the whole sparse encoder equals its layers applied to the dense map."""
    encoder = ModalityEncoder(120, 16, sparse_input=True).eval()
    x = _counts(gen, 120, density=0.1, max_count=4)
    expected = encoder.encoder(x.gt(0).float() @ encoder.projection.weight)
    torch.testing.assert_close(encoder(x), expected, rtol=1e-5, atol=1e-6)
    # presence/absence only: scaling the counts changes nothing
    torch.testing.assert_close(encoder(3 * x), encoder(x))


@pytest.mark.parametrize("variational", [True, False])
def test_fusion_encoder_shapes(gen, variational):
    fusion = FusionEncoder([16, 8], n_latent=5, n_hidden=12, variational=variational)
    hidden = [torch.randn(N_CELLS, 16, generator=gen), torch.randn(N_CELLS, 8, generator=gen)]
    mean, var = fusion(hidden, torch.ones(N_CELLS, 2))
    assert mean.shape == (N_CELLS, 5)
    if variational:
        assert var.shape == (N_CELLS, 5)
        assert (var >= fusion.var_eps).all()
    else:
        assert var is None


def test_fusion_mask_hides_a_branch(gen):
    fusion = FusionEncoder([16, 8], n_latent=5, n_hidden=12).eval()
    first = torch.randn(N_CELLS, 16, generator=gen)
    second = torch.randn(N_CELLS, 8, generator=gen)
    mask = torch.tensor([[1.0, 0.0]]).repeat(N_CELLS, 1)
    a, _ = fusion([first, second], mask)
    b, _ = fusion([first, 10 * torch.randn(N_CELLS, 8, generator=gen)], mask)
    torch.testing.assert_close(a, b)
    c, _ = fusion([first, second], torch.ones(N_CELLS, 2))
    assert not torch.allclose(a, c)


# ------------------------------------------------------------------------------ decoders
@pytest.mark.parametrize(
    ("likelihood", "cls"),
    [("nb", NegativeBinomial), ("zinb", ZeroInflatedNegativeBinomial), ("normal", Normal)],
)
def test_expression_decoder(gen, likelihood, cls):
    decoder = ExpressionDecoder(
        6, 40, likelihood=likelihood, n_cat_list=[3], n_cont=1, n_hidden=16
    )
    z = torch.randn(N_CELLS, 6, generator=gen)
    library = torch.full((N_CELLS, 1), 500.0)
    px = decoder(z, library, _batch(gen), cont=torch.randn(N_CELLS, 1, generator=gen))
    assert isinstance(px, cls)
    mean = px.mean if likelihood != "normal" else px.loc
    assert mean.shape == (N_CELLS, 40)
    if likelihood != "normal":
        # mean = library * softmax scale: each cell's expected counts sum to its library size
        torch.testing.assert_close(px.mu.sum(-1), library.squeeze(-1), rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(px.scale.sum(-1), torch.ones(N_CELLS), rtol=1e-5, atol=1e-5)
        counts = _counts(gen, 40)
        assert torch.isfinite(px.log_prob(counts)).all()


@pytest.mark.parametrize(
    ("likelihood", "cls"),
    [("nbmixture", NegativeBinomialMixture), ("nb", NegativeBinomial), ("normal", Normal)],
)
def test_protein_decoder(gen, likelihood, cls):
    decoder = ProteinDecoder(6, 12, likelihood=likelihood, n_cat_list=[3], n_hidden=16).eval()
    z = torch.randn(N_CELLS, 6, generator=gen)
    counts = _counts(gen, 12, density=0.9, max_count=50)
    log_depth = torch.log1p(counts.sum(dim=1, keepdim=True))
    batch = _batch(gen)
    py = decoder(z, batch, log_depth=log_depth)
    assert isinstance(py, cls)
    log_prob = py.log_prob(counts)
    assert log_prob.shape == (N_CELLS, 12)
    assert torch.isfinite(log_prob).all()
    if likelihood == "nbmixture":
        assert (py.mu2 >= py.mu1).all()  # the foreground is at least the background
    deeper = decoder(z, batch, log_depth=log_depth + 1.0)
    if likelihood == "normal":  # normalised input: no depth covariate
        assert not decoder.takes_depth
        torch.testing.assert_close(deeper.loc, py.loc)
    else:  # the count likelihoods condition on the cell's depth
        assert not torch.allclose(deeper.mean, py.mean)
        with pytest.raises(ValueError, match="log_depth"):
            decoder(z, batch)


def test_accessibility_decoder_and_region_subset(gen):
    decoder = AccessibilityDecoder(6, 100, n_cat_list=[3], n_hidden=16).eval()
    z = torch.randn(N_CELLS, 6, generator=gen)
    log_depth = torch.log1p(torch.randint(1, 50, (N_CELLS, 1), generator=gen).float())
    batch = _batch(gen)
    full = decoder(z, log_depth, batch)
    assert isinstance(full, Bernoulli)
    assert full.probs.shape == (N_CELLS, 100)
    assert ((full.probs >= 0) & (full.probs <= 1)).all()
    regions = torch.tensor([0, 5, 17, 99])
    part = decoder(z, log_depth, batch, regions=regions)
    assert part.logits.shape == (N_CELLS, 4)
    torch.testing.assert_close(part.logits, full.logits[:, regions])
    # depth is a covariate of the hidden layers
    deeper = decoder(z, log_depth + 1.0, batch)
    assert not torch.allclose(deeper.logits, full.logits)


# ------------------------------------------------------------------- modality dropout
def test_hide_one_modality_hides_exactly_one_of_several():
    torch.manual_seed(0)
    mask = hide_one_modality(torch.ones(1000, 2), probability=1.0)
    assert mask.shape == (1000, 2)
    assert (mask.sum(1) == 1).all()
    assert 0.3 < mask[:, 0].mean().item() < 0.7  # either modality can be the hidden one


def test_hide_one_modality_rate_and_no_op_cases():
    torch.manual_seed(0)
    hidden = (hide_one_modality(torch.ones(5000, 3), probability=0.3).sum(1) < 3).float()
    assert hidden.mean().item() == pytest.approx(0.3, abs=0.03)
    observed = torch.ones(100, 2)
    assert torch.equal(hide_one_modality(observed, probability=0.0), observed)
    assert torch.equal(hide_one_modality(torch.ones(100, 1), probability=1.0), torch.ones(100, 1))


def test_hide_one_modality_never_uses_a_missing_or_hides_the_only_modality():
    torch.manual_seed(0)
    observed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).repeat(200, 1)
    before = observed.clone()
    mask = hide_one_modality(observed, probability=1.0)
    assert (mask <= observed).all()
    assert (mask.sum(1) == 1).all()
    assert torch.equal(observed, before)  # the input is not changed
