"""The OmniVI module: per-modality encoders, a fused latent, per-modality decoders."""

from __future__ import annotations

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Distribution, Normal, kl_divergence

from omnivi._constants import (
    COUNT_LIKELIHOODS,
    LIKELIHOODS,
    MODALITIES,
    MODALITY_MASK_KEY,
    MODALITY_REGISTRY_KEYS,
    LatentDistribution,
)
from omnivi.module._contrastive import ContrastiveObjective, labelled_contrastive_terms
from omnivi.nn import (
    AccessibilityDecoder,
    ExpressionDecoder,
    FusionEncoder,
    LatentClassifier,
    ModalityEncoder,
    ProteinDecoder,
    binary_columns,
    count_accessible,
    hide_one_modality,
)

_DECODERS = {"rna": ExpressionDecoder, "protein": ProteinDecoder, "atac": AccessibilityDecoder}


def modalities_with_depth(likelihoods: dict[str, str]) -> list[str]:
    """Return the modalities whose decoder takes each cell's log depth as a covariate.

    Protein under a count likelihood and ATAC: their per-cell depth (total antibody count,
    number of accessible regions) varies for technical reasons, and a decoder given it need
    not store depth in the latent. RNA uses its library size as a scale instead.

    Parameters
    ----------
    likelihoods
        Likelihood of each modality of the model.
    """
    return [
        m
        for m, likelihood in likelihoods.items()
        if m == "atac" or (m == "protein" and likelihood in COUNT_LIKELIHOODS)
    ]


def balanced_modality_weights(n_features: dict[str, int]) -> dict[str, float]:
    """Return the default weight of each modality's reconstruction loss.

    ATAC, when the model also has RNA and more regions than genes, is weighted
    ``n_genes / n_regions``; every other modality 1. The per-cell loss is a sum over
    features: RNA's terms are genes, ATAC's are binarised regions, often ten to a hundred
    times as many and strongly correlated (co-accessible regions of one gene programme).
    How many regions there are depends on how finely the peaks were called, not on how much
    a cell's chromatin says about its state; summed at weight 1, ATAC's share of the loss
    grows with that resolution and drags the joint latent down. Weighted by the ratio, ATAC
    counts as its mean loss per region over as many terms as RNA has genes, whatever the
    peak calling. On ``mop_rna_atac`` (1,677 genes, 25,734 regions, weight 0.065) the joint
    latent then scores above OmniVI on the RNA alone (scib total 0.631 against 0.626, one
    seed), where at weight 1 it scored 0.587 and at the square root of the ratio (0.255)
    0.617: ATAC adds to the RNA instead of subtracting from it. Data with at most as many
    regions as genes, and RNA + protein, keep weight 1.

    Parameters
    ----------
    n_features
        Number of features per modality.
    """
    weights = dict.fromkeys(n_features, 1.0)
    if "rna" in n_features and n_features.get("atac", 0) > n_features["rna"]:
        weights["atac"] = n_features["rna"] / n_features["atac"]
    return weights


class OmniVAE(BaseModuleClass):
    """Multimodal autoencoder with one joint latent per cell.

    Each modality has its own encoder branch; the branches are concatenated and fused by a
    joint bottleneck into the latent ``z``; each modality has its own decoder with a
    likelihood fit to its data. Batch (and other categorical covariates) are injected into
    every decoder layer, and into the encoder branches with ``encode_covariates=True``.

    Parameters
    ----------
    n_features
        Number of features per modality, e.g. ``{"rna": 2000, "protein": 134}``. Keys are
        among ``"rna"``, ``"protein"``, ``"atac"``.
    likelihoods
        Likelihood per modality; missing entries take the default
        (``"nb"``, ``"nbmixture"``, ``"bernoulli"``).
    n_batch
        Number of batches.
    n_cats_per_cov
        Number of categories of each extra categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    n_hidden
        Width of the hidden layers.
    n_latent
        Dimension of the joint latent.
    n_layers
        Number of hidden layers of each encoder branch and decoder.
    dropout_rate
        Dropout in the encoders.
    latent_distribution
        ``"normal"`` for a variational autoencoder with a standard normal prior,
        ``"deterministic"`` for a plain autoencoder.
    kl_beta
        Weight of the KL term relative to reconstruction (a beta-VAE for ``!= 1``); the
        training plan's KL warm-up multiplies it.
    modality_weights
        Weight of each modality's reconstruction loss; a modality not given takes its
        default from :func:`balanced_modality_weights` (1, but ATAC with many more regions
        than RNA has genes ``n_genes / n_regions``).
    modality_dropout
        During training, the probability that a cell has one of its modalities hidden from the
        encoder (it is still reconstructed). This teaches the fusion to work from one modality
        alone, which :meth:`inference` with ``modality_mask`` uses. 0.2 by default: on
        ``bmmc_cite_small`` it also gave the most consistent scib-metrics scores over seeds.
        Ignored with one modality.
    atac_region_fraction
        Fraction of ATAC regions reconstructed in each training step: a fresh random subset
        per minibatch, its loss rescaled to an unbiased estimate of the loss over all regions.
        Evaluation always uses all regions. ``1.0`` reconstructs every region every step.
    log_depth_means
        For each modality whose decoder takes the cell's log depth (see
        :func:`modalities_with_depth`), the mean log depth of the training cells that have
        the modality: the depth its decoder is given for cells without it (imputation in
        mosaic data). :class:`~omnivi.model.OmniVI` computes them from the registered data; a
        query model gets its reference's. Missing entries are 0.
    batches_with_modality
        For each modality, the batches (codes) with training cells that have it; ``None``
        or a modality not given: every batch. A decoder's weights for a batch none of whose
        cells has the modality are never trained (mosaic data: the protein decoder's column
        of an RNA-only batch; a query batch without a modality of the reference), so for
        cells of such a batch the decoder is given the mean of the batches that have the
        modality instead of their own batch (a batch one-hot spread evenly over those
        batches). Imputing a missing modality thus decodes it as an average measured batch.
    encode_covariates
        Whether the encoder branches see batch and covariates. Off by default, as in scVI:
        the latent then mixes batches better. Turn it on to let scArches surgery adapt the
        encoders to new batches too.
    use_batch_norm, use_layer_norm
        Normalisation of the hidden layers of the modality encoders and decoders (batch norm
        statistics come from the cells that have the modality). The fusion always uses layer
        norm, which normalises each cell by itself.
    n_labels
        Number of label codes (cell types, plus the unlabeled category if any). With two or
        more, the module carries a :class:`~omnivi.nn.LatentClassifier` on the latent (fit
        after training by the model).
    unlabeled_code
        Label code of unlabeled cells; ``-1`` if every cell is labelled.
    contrastive_weight
        Weight of the contrastive objectives (:class:`~omnivi.module.ContrastiveObjective`)
        added to the loss, evaluated on the latent mean of labelled cells; 0 disables them.
        The reconstruction loss is a per-cell sum over features, so useful weights are large
        (tens to hundreds).
    contrastive_kwargs
        Options of :class:`~omnivi.module.ContrastiveObjective` (term weights, temperature).
    """

    def __init__(
        self,
        n_features: dict[str, int],
        likelihoods: dict[str, str] | None = None,
        n_batch: int = 0,
        n_cats_per_cov: list[int] | None = None,
        n_continuous_cov: int = 0,
        n_hidden: int = 128,
        n_latent: int = 20,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        latent_distribution: LatentDistribution = "normal",
        kl_beta: float = 1.0,
        modality_weights: dict[str, float] | None = None,
        modality_dropout: float = 0.2,
        atac_region_fraction: float = 0.25,
        log_depth_means: dict[str, float] | None = None,
        batches_with_modality: dict[str, list[int]] | None = None,
        encode_covariates: bool = False,
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
        n_labels: int = 0,
        unlabeled_code: int = -1,
        contrastive_weight: float = 0.0,
        contrastive_kwargs: dict | None = None,
    ):
        super().__init__()
        unknown = set(n_features) - set(MODALITIES)
        if unknown or not n_features:
            raise ValueError(
                f"`n_features` must name one or more of {MODALITIES}; got {list(n_features)}."
            )
        if latent_distribution not in ("normal", "deterministic"):
            raise ValueError(
                f"latent_distribution must be 'normal' or 'deterministic', got "
                f"{latent_distribution!r}."
            )
        self.modalities = [m for m in MODALITIES if m in n_features]
        self.likelihoods = {
            m: (likelihoods or {}).get(m, LIKELIHOODS[m][0]) for m in self.modalities
        }
        for modality, likelihood in self.likelihoods.items():
            if likelihood not in LIKELIHOODS[modality]:
                raise ValueError(
                    f"Likelihood {likelihood!r} is not available for {modality}; choose one of "
                    f"{LIKELIHOODS[modality]}."
                )
        defaults = balanced_modality_weights(n_features)
        self.modality_weights = {
            m: float((modality_weights or {}).get(m, defaults[m])) for m in self.modalities
        }
        self.n_batch = n_batch
        self.n_latent = n_latent
        self.latent_distribution = latent_distribution
        self.kl_beta = kl_beta
        self.modality_dropout = modality_dropout
        if not 0 < atac_region_fraction <= 1:
            raise ValueError(
                f"atac_region_fraction must be in (0, 1], got {atac_region_fraction}."
            )
        self.atac_region_fraction = atac_region_fraction
        self.depth_modalities = modalities_with_depth(self.likelihoods)
        means = log_depth_means or {}
        # A buffer, not a parameter: fixed by the data, saved with the model, the same in every
        # process of a distributed run.
        self.register_buffer(
            "log_depth_mean",
            torch.tensor([float(means.get(m, 0.0)) for m in self.depth_modalities]),
        )

        # Modalities x batches, true where a batch trains the modality's decoder. A buffer,
        # so that a query model (scArches) pads it with its new batches as it pads weights.
        measured = torch.ones(len(self.modalities), max(n_batch, 1), dtype=torch.bool)
        for i, m in enumerate(self.modalities):
            if batches_with_modality is not None and m in batches_with_modality:
                measured[i] = False
                measured[i, list(batches_with_modality[m])] = True
        self.register_buffer("batch_has_modality", measured)

        cat_list = [n_batch, *(n_cats_per_cov or [])]
        layer_kwargs = {"use_batch_norm": use_batch_norm, "use_layer_norm": use_layer_norm}
        self.encoders = nn.ModuleDict(
            {
                m: ModalityEncoder(
                    n_features[m],
                    n_hidden,
                    n_cat_list=cat_list if encode_covariates else None,
                    n_cont=n_continuous_cov if encode_covariates else 0,
                    n_layers=n_layers,
                    dropout_rate=dropout_rate,
                    sparse_input=m == "atac",
                    **layer_kwargs,
                )
                for m in self.modalities
            }
        )
        self.encode_covariates = encode_covariates
        # Layer norm, not batch norm, in the fusion: each cell is normalised by itself, so its
        # latent does not depend on which other cells of the minibatch lack a modality (mosaic
        # data) or have one hidden by modality dropout.
        self.fusion = FusionEncoder(
            [n_hidden] * len(self.modalities),
            n_latent,
            n_hidden=n_hidden,
            variational=latent_distribution == "normal",
            dropout_rate=dropout_rate,
            use_batch_norm=False,
            use_layer_norm=True,
        )
        self.decoders = nn.ModuleDict(
            {
                m: _DECODERS[m](
                    n_latent,
                    n_features[m],
                    likelihood=self.likelihoods[m],
                    n_cat_list=cat_list,
                    n_cont=n_continuous_cov,
                    n_layers=n_layers,
                    n_hidden=n_hidden,
                    **layer_kwargs,
                )
                for m in self.modalities
            }
        )
        self.n_labels = n_labels
        self.unlabeled_code = unlabeled_code
        self.classifier = LatentClassifier(n_latent, n_labels) if n_labels >= 2 else None
        self.contrastive_weight = contrastive_weight
        self.contrastive = None
        if contrastive_weight > 0:
            if n_labels < 2:
                raise ValueError(
                    "contrastive_weight > 0 needs at least two cell-type labels; register them "
                    "with labels_key=... in setup_anndata / setup_mudata."
                )
            self.contrastive = ContrastiveObjective(**(contrastive_kwargs or {}))

    # ----------------------------------------------------------------------------- inputs
    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict:
        return {
            "x": {m: tensors[MODALITY_REGISTRY_KEYS[m]] for m in self.modalities},
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "cat_covs": tensors.get(REGISTRY_KEYS.CAT_COVS_KEY),
            "cont_covs": tensors.get(REGISTRY_KEYS.CONT_COVS_KEY),
            "observed": tensors.get(MODALITY_MASK_KEY),
        }

    def _get_generative_input(
        self, tensors: dict[str, torch.Tensor], inference_outputs: dict
    ) -> dict:
        size = self.size_factors({m: tensors[MODALITY_REGISTRY_KEYS[m]] for m in self.modalities})
        observed = tensors.get(MODALITY_MASK_KEY)
        if observed is not None:
            for i, m in enumerate(self.depth_modalities):
                has = observed[:, self.modalities.index(m), None] > 0
                size[m] = torch.where(has, size[m], self.log_depth_mean[i])
        return {
            "z": inference_outputs["z"],
            "size": size,
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "cat_covs": tensors.get(REGISTRY_KEYS.CAT_COVS_KEY),
            "cont_covs": tensors.get(REGISTRY_KEYS.CONT_COVS_KEY),
            "observed": observed,
        }

    def size_factors(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-cell size terms the decoders condition on.

        RNA: the observed library size (used by the count likelihoods). Protein counts: the
        ``log1p`` of the cell's total count, as antibody capture differs from cell to cell
        and batch to batch. ATAC: the ``log1p`` number of accessible regions. Cells of mosaic
        data without a modality get the training cells' mean in :meth:`generative`'s input.
        """
        size = {}
        if "rna" in x:
            # at least 1: cells of mosaic data without RNA have none, and no RNA loss either
            size["rna"] = x["rna"].sum(dim=-1, keepdim=True).clamp_min(1.0)
        if "protein" in self.depth_modalities and "protein" in x:
            size["protein"] = torch.log1p(x["protein"].sum(dim=-1, keepdim=True))
        if "atac" in x:
            size["atac"] = torch.log1p(count_accessible(x["atac"]))
        return size

    def _encoder_input(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Transform a modality's raw input for its encoder: log1p of counts.

        ATAC passes unchanged: its sparse encoder reads presence/absence itself.
        """
        if self.likelihoods[modality] in COUNT_LIKELIHOODS:
            return torch.log1p(x)
        return x

    @staticmethod
    def reconstruction_target(
        modality: str, x: torch.Tensor, regions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return what a modality's decoder reconstructs: the input; binarised regions for ATAC.

        ATAC's ``x`` may be dense or sparse; only the target over ``regions`` is dense.
        """
        if modality != "atac":
            return x
        return binary_columns(x, regions)

    @staticmethod
    def _covariates(
        batch_index: torch.Tensor, cat_covs: torch.Tensor | None
    ) -> list[torch.Tensor]:
        extra = list(torch.split(cat_covs, 1, dim=1)) if cat_covs is not None else []
        return [batch_index, *extra]

    def _training_mask(self, observed: torch.Tensor) -> torch.Tensor:
        """Return the modalities each cell has, one hidden at random while training.

        See :func:`~omnivi.nn.hide_one_modality`; the chance is ``modality_dropout``.
        """
        if not self.training:
            return observed
        return hide_one_modality(observed, self.modality_dropout)

    # ------------------------------------------------------------------------- inference
    @auto_move_data
    def inference(
        self,
        x: dict[str, torch.Tensor],
        batch_index: torch.Tensor,
        cat_covs: torch.Tensor | None = None,
        cont_covs: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        observed: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | Distribution]:
        """Encode each modality, fuse, and return the latent.

        Parameters
        ----------
        x
            Raw data per modality (cells x features).
        batch_index
            Batch of each cell (cells x 1).
        cat_covs, cont_covs
            Extra categorical and continuous covariates.
        modality_mask
            Cells x modalities, 1 where the encoder may use a modality. ``None`` uses all a
            cell has (with modality dropout while training).
        observed
            Cells x modalities, 1 where the cell was measured (mosaic data); ``None`` if
            every cell has every modality. The encoder never uses a modality a cell lacks.

        Returns
        -------
        ``z`` (the latent; a sample while training a VAE), ``qzm`` and ``qzv`` (mean and
        variance; zero variance for a deterministic autoencoder), and ``qz`` for a VAE.
        """
        covariates = self._covariates(batch_index, cat_covs)
        encoder_cats = covariates if self.encode_covariates else []
        encoder_cont = cont_covs if self.encode_covariates else None
        hidden = [
            self.encoders[m](
                self._encoder_input(m, x[m]),
                *encoder_cats,
                cont=encoder_cont,
                rows=None if observed is None else observed[:, i] > 0,
            )
            for i, m in enumerate(self.modalities)
        ]
        if observed is None:
            observed = hidden[0].new_ones(len(batch_index), len(self.modalities))
        mask = self._training_mask(observed) if modality_mask is None else modality_mask * observed
        qzm, qzv = self.fusion(hidden, mask)
        if qzv is None:
            return {"z": qzm, "qzm": qzm, "qzv": torch.zeros_like(qzm)}
        # unvalidated: a NaN latent reaches the loss, which the training plan checks
        qz = Normal(qzm, qzv.sqrt(), validate_args=False)
        z = qz.rsample() if self.training else qzm
        return {"z": z, "qz": qz, "qzm": qzm, "qzv": qzv}

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        size: dict[str, torch.Tensor],
        batch_index: torch.Tensor,
        cat_covs: torch.Tensor | None = None,
        cont_covs: torch.Tensor | None = None,
        observed: torch.Tensor | None = None,
    ) -> dict[str, dict[str, Distribution]]:
        """Decode ``z`` into one likelihood per modality, returned under ``"px"``.

        ``size`` holds the per-cell terms of :meth:`size_factors`: RNA's library size, the
        log depth of protein (count likelihoods) and of ATAC.

        ``observed`` (cells x modalities, 1 where the cell was measured; mosaic data): while
        training, each decoder's hidden layers see only the cells that have its modality,
        the only ones with a loss for it, so that the others do not enter its batch-norm
        statistics and the gradients of the cells that have it. Out of training every cell
        is decoded (imputation).

        While training with ``atac_region_fraction < 1`` the ATAC likelihood covers only the
        regions returned under ``"atac_regions"``.
        """
        extra_cats = self._covariates(batch_index, cat_covs)[1:]
        outputs = {"px": {}, "atac_regions": self._sample_regions(z.device)}
        for i, m in enumerate(self.modalities):
            covariates = [self._decoder_batch(i, batch_index), *extra_cats]
            # RNA takes its library size and ATAC its depth as arguments; protein its depth as
            # the keyword, which a protein decoder on normalised input does not take.
            extra = (size[m],) if m in ("rna", "atac") else ()
            options = {"regions": outputs["atac_regions"]} if m == "atac" else {}
            if m == "protein" and m in size:
                options["log_depth"] = size[m]
            if observed is not None and self.training:
                options["rows"] = observed[:, i] > 0
            outputs["px"][m] = self.decoders[m](z, *extra, *covariates, cont=cont_covs, **options)
        return outputs

    @torch.no_grad()
    def add_batches_with_modality(self, batches_with_modality: dict[str, list[int]]) -> None:
        """Record that the batches (codes) given for each modality have cells with it.

        For a query model (scArches), whose module holds the reference's record: the
        query's batches train their decoder weights for the modalities they have.
        """
        for i, m in enumerate(self.modalities):
            self.batch_has_modality[i, list(batches_with_modality.get(m, []))] = True

    def _decoder_batch(self, position: int, batch_index: torch.Tensor) -> torch.Tensor:
        """Return the batch input of the decoder of modality ``position``.

        The cells' batch codes with one batch; otherwise a one-hot per cell, where a cell
        whose batch has no training cell with the modality gets weight spread evenly over
        the batches that have (see ``batches_with_modality``).
        """
        if self.n_batch < 2:
            return batch_index
        measured = self.batch_has_modality[position].float()
        codes = batch_index.view(-1).long()
        one_hot = nn.functional.one_hot(codes, self.n_batch).float()
        average = measured / measured.sum().clamp(min=1.0)
        return torch.where(measured[codes, None] > 0, one_hot, average)

    def _sample_regions(self, device: torch.device) -> torch.Tensor | None:
        """Draw a random subset of ATAC regions for one training step, or ``None`` for all."""
        if "atac" not in self.modalities or not self.training or self.atac_region_fraction == 1:
            return None
        n_regions = self.decoders["atac"].pa_logit_decoder.out_features
        n_sampled = max(int(n_regions * self.atac_region_fraction), 1)
        # Sorted indices make the column gathers of the weights and targets contiguous-ish.
        return torch.randperm(n_regions, device=device)[:n_sampled].sort().values

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
        class_weights: torch.Tensor | None = None,
        reference_distances: torch.Tensor | None = None,
    ) -> LossOutput:
        """Weighted sum of per-modality negative log-likelihoods plus the weighted KL.

        Each modality's unweighted reconstruction loss is also reported as
        ``reconstruction_loss_<modality>`` (the mean over the cells that have the modality) so
        that it appears in ``model.history``. Cells of mosaic data have no loss for a modality
        they lack. With ``contrastive_weight > 0`` the contrastive terms are added, with the
        training cells' ``class_weights`` and ``reference_distances`` (see
        :meth:`~omnivi.module.ContrastiveObjective.forward`; ``None``: uniform weights, no
        centroid term), which the training plan passes.
        """
        observed = tensors.get(MODALITY_MASK_KEY)
        nll, n_observed = {}, {}
        for i, m in enumerate(self.modalities):
            x = tensors[MODALITY_REGISTRY_KEYS[m]]
            regions = generative_outputs["atac_regions"] if m == "atac" else None
            scale = 1.0 if regions is None else x.shape[1] / regions.numel()
            target = self.reconstruction_target(m, x, regions)
            nll[m] = -scale * generative_outputs["px"][m].log_prob(target).sum(dim=-1)
            n_observed[m] = x.shape[0]
            if observed is not None:  # mosaic data: no loss for a modality the cell lacks
                nll[m] = nll[m] * observed[:, i]
                n_observed[m] = observed[:, i].sum().clamp_min(1.0)
        reconstruction = {m: self.modality_weights[m] * nll[m] for m in self.modalities}
        if "qz" in inference_outputs:
            prior = Normal(torch.zeros_like(inference_outputs["qzm"]), 1.0)
            kl = kl_divergence(inference_outputs["qz"], prior).sum(dim=-1)
        else:
            kl = torch.zeros_like(nll[self.modalities[0]])
        total = (
            torch.stack(list(reconstruction.values())).sum(dim=0) + kl_weight * self.kl_beta * kl
        ).mean()
        metrics = {
            f"reconstruction_loss_{m}": (nll[m].sum() / n_observed[m]).detach()
            for m in self.modalities
        }
        if self.contrastive is not None:
            terms = labelled_contrastive_terms(
                self.contrastive,
                inference_outputs["qzm"],
                tensors[REGISTRY_KEYS.LABELS_KEY],
                tensors[REGISTRY_KEYS.BATCH_KEY],
                self.unlabeled_code,
                class_weights,
                reference_distances,
            )
            total = total + self.contrastive_weight * terms["total"]
            metrics.update({f"contrastive_{k}": v.detach() for k, v in terms.items()})
        return LossOutput(
            loss=total,
            reconstruction_loss=reconstruction,
            kl_local={"kl_divergence_z": kl},
            extra_metrics=metrics,
        )

    def expected_value(
        self, modality: str, px: Distribution, library_size: float | None = None
    ) -> torch.Tensor:
        """Denoised mean of a modality from its likelihood.

        Parameters
        ----------
        modality
            ``"rna"``, ``"protein"`` or ``"atac"``.
        px
            That modality's likelihood from :meth:`generative`.
        library_size
            RNA under a count likelihood: scale the expression frequencies to this library
            size; ``None`` returns the rates at each cell's observed library size.

        Returns
        -------
        RNA: expected expression; protein: the foreground (background removed) for
        ``"nbmixture"``, else the mean; ATAC: the probability a region is accessible.
        """
        likelihood = self.likelihoods[modality]
        if modality == "atac":
            return px.probs
        if likelihood == "normal":
            return px.loc
        if modality == "rna":
            return px.mu if library_size is None else px.scale * library_size
        if likelihood == "nbmixture":
            return (1 - torch.sigmoid(px.mixture_logits)) * px.mu2
        return px.mu
