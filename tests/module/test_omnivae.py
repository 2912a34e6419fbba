"""Tests of the OmniVAE module: inference, generative model and loss."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scvi import REGISTRY_KEYS

from omnivi._constants import MODALITY_MASK_KEY, MODALITY_REGISTRY_KEYS
from omnivi.module import OmniVAE, balanced_modality_weights

N_CELLS = 64
N_FEATURES = {"rna": 60, "protein": 12, "atac": 400}


def make_tensors(modalities, n_cells=N_CELLS, n_batch=2, seed=0, log_normal=()):
    """A minibatch as scvi-tools' data loader would give it."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {REGISTRY_KEYS.BATCH_KEY: torch.randint(n_batch, (n_cells, 1), generator=gen)}
    for m in modalities:
        n = N_FEATURES[m]
        if m == "atac":
            x = (torch.rand(n_cells, n, generator=gen) < 0.15).float() * torch.randint(
                1, 4, (n_cells, n), generator=gen
            )
        elif m == "protein":
            x = torch.randint(0, 200, (n_cells, n), generator=gen).float()
        else:
            x = torch.poisson(torch.full((n_cells, n), 3.0), generator=gen)
        if m in log_normal:
            x = torch.log1p(x)
        tensors[MODALITY_REGISTRY_KEYS[m]] = x
    return tensors


def make_module(modalities=("rna", "protein", "atac"), **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("n_hidden", 32)
    kwargs.setdefault("n_latent", 8)
    return OmniVAE({m: N_FEATURES[m] for m in modalities}, n_batch=2, **kwargs)


# -------------------------------------------------------------------------- loss basics
GENE = ("nb", "zinb", "normal")
PROTEIN = ("nbmixture", "nb", "normal")


@pytest.mark.parametrize(("gene", "protein"), list(itertools.product(GENE, PROTEIN)))
@pytest.mark.parametrize("latent_distribution", ["normal", "deterministic"])
def test_loss_finite_for_every_likelihood(gene, protein, latent_distribution):
    module = make_module(
        likelihoods={"rna": gene, "protein": protein}, latent_distribution=latent_distribution
    )
    normal = tuple(m for m, lik in (("rna", gene), ("protein", protein)) if lik == "normal")
    tensors = make_tensors(module.modalities, log_normal=normal)
    module.train()
    _, _, losses = module(tensors)
    assert losses.loss.ndim == 0
    assert torch.isfinite(losses.loss)
    losses.loss.backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    "modalities",
    [
        ("rna",),
        ("protein",),
        ("atac",),
        ("rna", "protein"),
        ("rna", "atac"),
        ("rna", "protein", "atac"),
    ],
)
def test_extra_metrics_per_modality(modalities):
    module = make_module(modalities)
    assert module.modalities == list(modalities)
    _, _, losses = module(make_tensors(modalities))
    assert set(losses.extra_metrics) == {f"reconstruction_loss_{m}" for m in modalities}
    for value in losses.extra_metrics.values():
        assert value.ndim == 0
        assert torch.isfinite(value)
    assert set(losses.reconstruction_loss) == set(modalities)


def test_loss_composition_weights_and_kl():
    module = make_module(("rna", "protein"), modality_weights={"rna": 2.0}, kl_beta=0.5).eval()
    tensors = make_tensors(module.modalities)
    _, generative_outputs, losses = module(tensors, loss_kwargs={"kl_weight": 0.3})
    nll = {}
    for m in module.modalities:
        x = tensors[MODALITY_REGISTRY_KEYS[m]]
        nll[m] = -generative_outputs["px"][m].log_prob(x).sum(-1)
        torch.testing.assert_close(losses.extra_metrics[f"reconstruction_loss_{m}"], nll[m].mean())
    torch.testing.assert_close(losses.reconstruction_loss["rna"], 2.0 * nll["rna"])
    torch.testing.assert_close(losses.reconstruction_loss["protein"], nll["protein"])
    kl = losses.kl_local["kl_divergence_z"]
    assert (kl > 0).all()
    expected = (2.0 * nll["rna"] + nll["protein"] + 0.3 * 0.5 * kl).mean()
    torch.testing.assert_close(losses.loss, expected)


def test_deterministic_mode_has_no_kl_and_zero_variance():
    module = make_module(latent_distribution="deterministic")
    assert module.fusion.var_encoder is None
    tensors = make_tensors(module.modalities)
    for training in (True, False):
        module.train(training)
        inference_outputs, _, losses = module(tensors)
        assert "qz" not in inference_outputs
        assert torch.count_nonzero(inference_outputs["qzv"]) == 0
        assert inference_outputs["qzv"].shape == inference_outputs["qzm"].shape
        torch.testing.assert_close(inference_outputs["z"], inference_outputs["qzm"])
        assert torch.count_nonzero(losses.kl_local["kl_divergence_z"]) == 0


def test_normal_mode_samples_while_training_and_uses_mean_in_eval():
    module = make_module(("rna",))
    tensors = make_tensors(module.modalities)
    module.eval()
    out = module.inference(**module._get_inference_input(tensors))
    torch.testing.assert_close(out["z"], out["qzm"])
    assert (out["qzv"] > 0).all()
    module.train()
    out = module.inference(**module._get_inference_input(tensors))
    assert not torch.allclose(out["z"], out["qzm"])


# --------------------------------------------------------------------- ATAC subsampling
def test_atac_region_subsampled_loss_is_unbiased():
    """The mean of many subsampled training NLLs matches the full NLL of evaluation.

    Dropout, modality dropout, batch norm and a sampled latent would make training and
    evaluation differ for other reasons; they are switched off so that region sampling is
    the only difference.
    """
    module = make_module(
        ("rna", "atac"),
        latent_distribution="deterministic",
        dropout_rate=0.0,
        modality_dropout=0.0,
        use_batch_norm=False,
        atac_region_fraction=0.25,
    )
    tensors = make_tensors(module.modalities)
    with torch.no_grad():
        # Regions of very different loss, so that a biased choice of regions would show.
        bias = module.decoders["atac"].pa_logit_decoder.bias
        bias.copy_(3.0 * torch.randn(bias.shape, generator=torch.Generator().manual_seed(1)))
        module.eval()
        _, generative_outputs, losses = module(tensors)
        assert generative_outputs["atac_regions"] is None
        assert generative_outputs["px"]["atac"].logits.shape == (N_CELLS, N_FEATURES["atac"])
        full = losses.extra_metrics["reconstruction_loss_atac"].item()
        full_rna = losses.extra_metrics["reconstruction_loss_rna"].item()

        module.train()
        draws, seen = [], torch.zeros(N_FEATURES["atac"], dtype=torch.bool)
        for _ in range(400):
            _, generative_outputs, losses = module(tensors)
            regions = generative_outputs["atac_regions"]
            assert regions.numel() == N_FEATURES["atac"] // 4
            assert regions.unique().numel() == regions.numel()
            seen[regions] = True
            assert generative_outputs["px"]["atac"].logits.shape == (N_CELLS, regions.numel())
            draws.append(losses.extra_metrics["reconstruction_loss_atac"].item())
        # RNA is untouched by region sampling
        assert losses.extra_metrics["reconstruction_loss_rna"].item() == pytest.approx(
            full_rna, rel=1e-5
        )
    assert seen.all()  # every region gets its turn
    draws = np.array(draws)
    assert draws.std() > 0  # a different subset every step
    assert draws.mean() == pytest.approx(full, rel=0.02)
    # each draw is scaled to the full number of regions, not the subset
    assert np.median(draws) == pytest.approx(full, rel=0.15)


def test_atac_region_fraction_one_uses_every_region():
    module = make_module(
        ("atac",),
        latent_distribution="deterministic",
        dropout_rate=0.0,
        use_batch_norm=False,
        atac_region_fraction=1.0,
    )
    tensors = make_tensors(module.modalities)
    module.eval()
    _, _, eval_losses = module(tensors)
    module.train()
    _, generative_outputs, train_losses = module(tensors)
    assert generative_outputs["atac_regions"] is None
    torch.testing.assert_close(train_losses.loss, eval_losses.loss)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_invalid_atac_region_fraction(fraction):
    with pytest.raises(ValueError, match="atac_region_fraction"):
        make_module(("atac",), atac_region_fraction=fraction)


# ------------------------------------------------------------------- modality masking
def test_modality_dropout_only_while_training():
    all_observed = torch.ones(1000, 2)
    module = make_module(("rna", "protein"), modality_dropout=1.0).train()
    np.testing.assert_array_equal(module._training_mask(all_observed).sum(1).numpy(), 1.0)
    module.eval()
    assert (module._training_mask(all_observed) == 1).all()


def test_inference_modality_mask_ignores_hidden_modality():
    module = make_module(("rna", "protein")).eval()
    tensors = make_tensors(module.modalities)
    inputs = module._get_inference_input(tensors)
    mask = torch.zeros(N_CELLS, 2)
    mask[:, 0] = 1.0
    a = module.inference(**inputs, modality_mask=mask)["qzm"]
    inputs["x"]["protein"] = inputs["x"]["protein"] * 5 + 7
    b = module.inference(**inputs, modality_mask=mask)["qzm"]
    torch.testing.assert_close(a, b)
    c = module.inference(**inputs)["qzm"]
    assert not torch.allclose(a, c)


# ------------------------------------------------------------------ size and outputs
def test_size_factors():
    module = make_module()
    tensors = make_tensors(module.modalities)
    x = {m: tensors[MODALITY_REGISTRY_KEYS[m]] for m in module.modalities}
    size = module.size_factors(x)
    assert set(size) == {"rna", "protein", "atac"}
    torch.testing.assert_close(size["rna"], x["rna"].sum(1, keepdim=True))
    torch.testing.assert_close(size["protein"], torch.log1p(x["protein"].sum(1, keepdim=True)))
    n_open = (x["atac"] > 0).sum(1, keepdim=True).float()
    torch.testing.assert_close(size["atac"], torch.log1p(n_open))


def test_normal_protein_takes_no_depth():
    module = make_module(likelihoods={"protein": "normal"})
    assert module.depth_modalities == ["atac"]
    tensors = make_tensors(module.modalities, log_normal=("protein",))
    x = {m: tensors[MODALITY_REGISTRY_KEYS[m]] for m in module.modalities}
    assert set(module.size_factors(x)) == {"rna", "atac"}


def test_reconstruction_target_binarises_atac():
    x = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    torch.testing.assert_close(OmniVAE.reconstruction_target("rna", x), x)
    torch.testing.assert_close(
        OmniVAE.reconstruction_target("atac", x), torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    )
    torch.testing.assert_close(
        OmniVAE.reconstruction_target("atac", x, torch.tensor([0, 2])),
        torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
    )


def test_expected_values():
    module = make_module(likelihoods={"protein": "nbmixture"}).eval()
    tensors = make_tensors(module.modalities)
    _, generative_outputs = module(tensors, compute_loss=False)
    px = generative_outputs["px"]
    rna = module.expected_value("rna", px["rna"], library_size=1e4)
    torch.testing.assert_close(rna.sum(1), torch.full((N_CELLS,), 1e4), rtol=1e-4, atol=1e-2)
    observed = module.expected_value("rna", px["rna"], library_size=None)
    torch.testing.assert_close(observed.sum(1), tensors["X"].sum(1), rtol=1e-4, atol=1e-2)
    protein = module.expected_value("protein", px["protein"])
    assert (protein >= 0).all()
    assert (protein <= px["protein"].mu2 + 1e-6).all()
    atac = module.expected_value("atac", px["atac"])
    assert atac.shape == (N_CELLS, N_FEATURES["atac"])
    assert ((atac >= 0) & (atac <= 1)).all()


# ---------------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_features": {}}, "n_features"),
        ({"n_features": {"rna": 5, "hic": 3}}, "n_features"),
        ({"n_features": {"rna": 5}, "latent_distribution": "ln"}, "latent_distribution"),
        ({"n_features": {"rna": 5}, "likelihoods": {"rna": "poisson"}}, "Likelihood 'poisson'"),
        (
            {"n_features": {"atac": 5}, "likelihoods": {"atac": "nb"}},
            "Likelihood 'nb' is not available for atac",
        ),
    ],
)
def test_constructor_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OmniVAE(**kwargs)


def test_default_likelihoods():
    module = OmniVAE({"atac": 10, "rna": 5, "protein": 3})
    assert module.modalities == ["rna", "protein", "atac"]
    assert module.likelihoods == {"rna": "nb", "protein": "nbmixture", "atac": "bernoulli"}


def test_padded_rows_do_not_move_the_encoding_of_measured_cells_in_training():
    """Mosaic data: a cell's protein branch ignores how many cells of its batch lack protein.

    In training mode, where batch norm uses the minibatch's statistics: only the measured
    rows enter them (before, 20 zero rows of cells without protein moved the others).
    """
    module = make_module(("rna", "protein"), dropout_rate=0.0, modality_dropout=0.0)
    module.train()
    measured = make_tensors(("rna", "protein"), n_cells=20, seed=1)
    padded = make_tensors(("rna", "protein"), n_cells=40, seed=2)
    padded[MODALITY_REGISTRY_KEYS["protein"]][:20] = 0.0  # 20 cells without protein
    padded[MODALITY_REGISTRY_KEYS["protein"]][20:] = measured[MODALITY_REGISTRY_KEYS["protein"]]
    observed = torch.ones(40, 2)
    observed[:20, 1] = 0.0
    encoder = module.encoders["protein"]
    alone = encoder(torch.log1p(measured[MODALITY_REGISTRY_KEYS["protein"]]))
    among = encoder(
        torch.log1p(padded[MODALITY_REGISTRY_KEYS["protein"]]), rows=observed[:, 1] > 0
    )
    torch.testing.assert_close(among[20:], alone)
    assert (among[:20] == 0).all()
    unmasked = encoder(torch.log1p(padded[MODALITY_REGISTRY_KEYS["protein"]]))
    assert (unmasked[20:] - alone).abs().max() > 0.1  # what the padded rows used to do
    # a single measured cell in a training minibatch is encoded with the running statistics
    single = encoder(
        torch.log1p(padded[MODALITY_REGISTRY_KEYS["protein"]][:21]), rows=observed[:21, 1] > 0
    )
    assert torch.isfinite(single).all()


def test_cells_without_a_modality_do_not_move_its_decoder_in_training():
    """Mosaic data: the protein likelihood of the cells with protein, and so their loss and
    gradients, ignore the cells of the minibatch that lack protein (whose loss is masked);
    out of training every cell is decoded, for imputation."""
    module = make_module(("rna", "protein"), dropout_rate=0.0, modality_dropout=0.0)
    tensors = make_tensors(("rna", "protein"), n_cells=40, seed=3)
    observed = torch.ones(40, 2)
    observed[:20, 1] = 0.0  # 20 cells without protein
    tensors[MODALITY_REGISTRY_KEYS["protein"]][:20] = 0.0
    z = torch.randn(40, 8, generator=torch.Generator().manual_seed(4))
    size = module.size_factors({m: tensors[MODALITY_REGISTRY_KEYS[m]] for m in module.modalities})
    batch = tensors[REGISTRY_KEYS.BATCH_KEY]

    def protein_rates(rows, observed_rows):
        sizes = {m: value[rows] for m, value in size.items()}
        px = module.generative(z[rows], sizes, batch[rows], observed=observed_rows)["px"]
        return px["protein"].mu1

    module.train()
    alone = protein_rates(slice(20, None), None)
    among = protein_rates(slice(None), observed)
    torch.testing.assert_close(among[20:], alone)
    unmasked = protein_rates(slice(None), None)
    assert (unmasked[20:] - alone).abs().max() > 1e-3  # what the other cells used to do
    module.eval()
    imputed = protein_rates(slice(None), observed)[:20]
    torch.testing.assert_close(imputed, protein_rates(slice(None, 20), None))
    assert imputed.std(dim=0).max() > 0  # decoded from each cell's latent, not a constant


def test_a_mask_in_which_every_cell_has_every_modality_trains_as_no_mask():
    """Data without missing modalities: the mosaic path (row-wise encoder and decoder layers,
    masked losses) gives the loss and gradients of the plain path, in training."""
    module = make_module(dropout_rate=0.0)
    tensors = make_tensors(module.modalities, seed=5)
    complete = {**tensors, MODALITY_MASK_KEY: torch.ones(N_CELLS, len(module.modalities))}
    module.train()
    results = []
    for minibatch in (tensors, complete):
        module.zero_grad()
        torch.manual_seed(1)  # the same modality dropout and latent samples
        _, _, losses = module(minibatch)
        losses.loss.backward()
        grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
        results.append((losses.loss.detach(), grads))
    (plain_loss, plain_grads), (mask_loss, mask_grads) = results
    torch.testing.assert_close(mask_loss, plain_loss)
    assert plain_grads
    assert mask_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(mask_grads[name], grad)


def test_the_fusion_of_a_cell_ignores_the_other_cells_masks_in_training():
    """Layer norm in the fusion: which other cells lack a modality does not move a latent."""
    module = make_module(("rna", "protein"), dropout_rate=0.0, modality_dropout=0.0)
    module.train()
    hidden = [torch.randn(30, 32), torch.randn(30, 32)]
    complete = torch.ones(30, 2)
    mosaic = complete.clone()
    mosaic[10:, 1] = 0.0  # 20 other cells lack protein
    mean_complete, _ = module.fusion(hidden, complete)
    mean_mosaic, _ = module.fusion(hidden, mosaic)
    torch.testing.assert_close(mean_mosaic[:10], mean_complete[:10])


# ------------------------------------------------------------------ modality weights
def test_balanced_weights_scale_atac_by_the_feature_ratio():
    weights = balanced_modality_weights({"rna": 1677, "protein": 30, "atac": 25734})
    assert weights["rna"] == weights["protein"] == 1.0
    assert weights["atac"] == pytest.approx(1677 / 25734)
    # The same cells with peaks called twice as finely: ATAC's total weight is unchanged.
    finer = balanced_modality_weights({"rna": 1677, "atac": 2 * 25734})
    assert finer["atac"] * 2 * 25734 == pytest.approx(weights["atac"] * 25734)
    # As many regions as genes, RNA + protein, or ATAC without RNA: nothing to balance.
    assert balanced_modality_weights({"rna": 600, "atac": 600}) == {"rna": 1.0, "atac": 1.0}
    assert balanced_modality_weights({"rna": 1000, "protein": 134}) == {
        "rna": 1.0,
        "protein": 1.0,
    }
    assert balanced_modality_weights({"protein": 20, "atac": 5000}) == {
        "protein": 1.0,
        "atac": 1.0,
    }


def test_default_and_given_modality_weights_enter_the_loss():
    # 60 genes, 400 regions: ATAC's default weight is 60 / 400.
    default = make_module(("rna", "atac")).eval()
    assert default.modality_weights == {"rna": 1.0, "atac": pytest.approx(60 / 400)}
    partly_given = make_module(("rna", "atac"), modality_weights={"rna": 2.0}).eval()
    assert partly_given.modality_weights["atac"] == default.modality_weights["atac"]
    given = make_module(("rna", "atac"), modality_weights={"atac": 1.0}).eval()
    tensors = make_tensors(("rna", "atac"))
    _, _, losses = given(tensors)
    _, _, default_losses = default(tensors)
    # Same seed, same parameters: only the weight differs.
    torch.testing.assert_close(
        default_losses.reconstruction_loss["atac"],
        default.modality_weights["atac"] * losses.reconstruction_loss["atac"],
    )


@pytest.mark.parametrize("atac_region_fraction", [0.25, 1.0])
def test_sparse_atac_minibatch_gives_the_dense_loss_and_gradients(atac_region_fraction):
    """Training mode: the same loss, per-modality losses and gradients from a CSR ATAC block."""
    tensors = make_tensors(("rna", "atac"))
    key = MODALITY_REGISTRY_KEYS["atac"]
    runs = []
    for atac in (tensors[key], tensors[key].to_sparse_csr()):
        module = make_module(("rna", "atac"), atac_region_fraction=atac_region_fraction).train()
        torch.manual_seed(1)  # same dropout, latent sample and sampled regions
        _, _, losses = module({**tensors, key: atac})
        losses.loss.backward()
        grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
        runs.append((losses, grads))
    (dense, dense_grads), (csr, csr_grads) = runs
    torch.testing.assert_close(csr.loss, dense.loss)
    for name, value in dense.extra_metrics.items():
        torch.testing.assert_close(csr.extra_metrics[name], value)
    assert csr_grads.keys() == dense_grads.keys()
    assert "encoders.atac.projection.weight" in csr_grads
    for name, grad in dense_grads.items():
        torch.testing.assert_close(csr_grads[name], grad, msg=name)
