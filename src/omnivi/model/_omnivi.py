"""OmniVI: the user-facing multimodal integration model."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.model.base import ArchesMixin, BaseModelClass, UnsupervisedTrainingMixin, VAEMixin
from scvi.train import AdversarialTrainingPlan, TrainingPlan

from omnivi._constants import (
    COUNT_LIKELIHOODS,
    LATENT_OBSM_KEY,
    MODALITIES,
    MODALITY_REGISTRY_KEYS,
    LatentDistribution,
)
from omnivi.data._validation import check_counts, check_nonnegative
from omnivi.model._setup import anndata_fields, mudata_fields
from omnivi.module import OmniVAE


def fused_adam(lr: float, weight_decay: float, eps: float = 0.01):
    """Return an ``optimizer_creator`` for scvi's training plans: Adam with fused kernels.

    The same update as scvi-tools' default Adam (same ``eps``), computed by one fused kernel
    per step, which is several times faster on CPU for wide layers.
    """

    def create(params):
        return torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=True)

    return create


class OmniVI(VAEMixin, ArchesMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """Integrate RNA, surface protein and/or chromatin accessibility into one latent per cell.

    Each modality is encoded by its own branch; the branches are concatenated and fused into
    one joint latent, and each modality is reconstructed by its own decoder with a likelihood
    fit to its data. Batch is injected into encoders and decoders, so the latent is corrected
    for it, and reference mapping (scArches) can adapt the model to new batches.

    Parameters
    ----------
    adata
        AnnData or MuData registered with :meth:`setup_anndata` or :meth:`setup_mudata`.
    n_hidden
        Width of the hidden layers.
    n_latent
        Dimension of the joint latent.
    n_layers
        Number of hidden layers of each encoder branch and decoder.
    dropout_rate
        Dropout in the encoders.
    latent_distribution
        ``"normal"``: a variational autoencoder (KL to a standard normal prior, annealed by
        the training plan); ``"deterministic"``: a plain autoencoder.
    gene_likelihood
        RNA: ``"nb"`` (negative binomial), ``"zinb"`` (zero-inflated) or ``"normal"``
        (mean-squared error on normalised input).
    protein_likelihood
        Protein: ``"nbmixture"`` (background/foreground negative-binomial mixture), ``"nb"`` or
        ``"normal"``.
    atac_likelihood
        ATAC: ``"bernoulli"`` on binarised regions.
    modality_weights
        Weight of each modality's reconstruction loss, e.g. ``{"atac": 0.5}``; default 1.
    **module_kwargs
        Further options of :class:`~omnivi.module.OmniVAE` (``kl_beta``,
        ``modality_dropout``, ``encode_covariates``, ``use_layer_norm``, ...).

    Examples
    --------
    >>> omnivi.model.OmniVI.setup_mudata(
    ...     mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "adt"}
    ... )
    >>> model = omnivi.model.OmniVI(mdata)
    >>> model.train()
    >>> model.store_latent()  # writes mdata.obsm["X_omnivi"]
    """

    _module_cls = OmniVAE
    _training_plan_cls = TrainingPlan

    def __init__(
        self,
        adata: AnnData | MuData,
        n_hidden: int = 128,
        n_latent: int = 20,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        latent_distribution: LatentDistribution = "normal",
        gene_likelihood: str = "nb",
        protein_likelihood: str = "nbmixture",
        atac_likelihood: str = "bernoulli",
        modality_weights: dict[str, float] | None = None,
        **module_kwargs,
    ):
        super().__init__(adata)
        requested = {
            "rna": gene_likelihood,
            "protein": protein_likelihood,
            "atac": atac_likelihood,
        }
        likelihoods = {m: requested[m] for m in self.modalities}
        if self.adata is not None:
            self._check_inputs_fit(likelihoods)
        registry = self.adata_manager.data_registry
        n_cats_per_cov = (
            self.adata_manager.get_state_registry(REGISTRY_KEYS.CAT_COVS_KEY).n_cats_per_key
            if REGISTRY_KEYS.CAT_COVS_KEY in registry
            else None
        )
        self.module = self._module_cls(
            n_features={m: self._n_features(m) for m in self.modalities},
            likelihoods=likelihoods,
            n_batch=self.summary_stats.n_batch,
            n_cats_per_cov=n_cats_per_cov,
            n_continuous_cov=self.summary_stats.get("n_extra_continuous_covs", 0),
            n_hidden=n_hidden,
            n_latent=n_latent,
            n_layers=n_layers,
            dropout_rate=dropout_rate,
            latent_distribution=latent_distribution,
            modality_weights=modality_weights,
            **module_kwargs,
        )
        self._model_summary_string = (
            f"OmniVI model: modalities {self.modalities}, likelihoods {likelihoods}, "
            f"n_latent {n_latent}, n_hidden {n_hidden}, latent {latent_distribution}, "
            f"{self.summary_stats.n_batch} batch(es)."
        )
        self.init_params_ = self._get_init_params(locals())

    # -------------------------------------------------------------------------- setup
    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        batch_key: str | None = None,
        labels_key: str | None = None,
        categorical_covariate_keys: list[str] | None = None,
        continuous_covariate_keys: list[str] | None = None,
        **kwargs,
    ):
        """Register an AnnData of RNA alone.

        Parameters
        ----------
        adata
            Cells x genes. Counts for the ``"nb"``/``"zinb"`` likelihoods, normalised values
            for ``"normal"``.
        layer
            Layer holding the data; ``None`` for ``.X``.
        batch_key
            ``.obs`` column of batches, corrected for in the latent.
        labels_key
            ``.obs`` column of cell-type labels.
        categorical_covariate_keys, continuous_covariate_keys
            Further ``.obs`` columns to condition on.
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        adata_manager = AnnDataManager(
            fields=anndata_fields(
                adata,
                layer,
                batch_key,
                labels_key,
                categorical_covariate_keys,
                continuous_covariate_keys,
            ),
            setup_method_args=setup_method_args,
        )
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        rna_layer: str | None = None,
        protein_layer: str | None = None,
        atac_layer: str | None = None,
        batch_key: str | None = None,
        labels_key: str | None = None,
        categorical_covariate_keys: list[str] | None = None,
        continuous_covariate_keys: list[str] | None = None,
        modalities: dict[str, str] | None = None,
        **kwargs,
    ):
        """Register a MuData with any non-empty subset of RNA, protein and ATAC.

        Parameters
        ----------
        mdata
            Cells x features per modality. Every cell must be present in each modality used.
        rna_layer, protein_layer, atac_layer
            Layer holding each modality's data within its modality; ``None`` for ``.X``.
        batch_key
            ``.obs`` column of batches, corrected for in the latent.
        labels_key
            ``.obs`` column of cell-type labels.
        categorical_covariate_keys, continuous_covariate_keys
            Further ``.obs`` columns to condition on.
        modalities
            Which modality of ``mdata`` each argument refers to. A modality is modelled when its
            layer argument is named here: ``{"rna_layer": "rna", "protein_layer": "adt"}``
            models RNA and protein. ``.obs`` arguments (``"batch_key"``, ...) mapped to a
            modality read that modality's ``.obs``; unmapped ones read ``mdata.obs``.
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.

        Examples
        --------
        >>> OmniVI.setup_mudata(
        ...     mdata,
        ...     batch_key="batch",
        ...     modalities={"rna_layer": "rna", "atac_layer": "atac"},
        ... )
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        modalities = dict(modalities or {})
        field_list = mudata_fields(
            mdata,
            layers={"rna": rna_layer, "protein": protein_layer, "atac": atac_layer},
            obs_keys={
                "batch_key": batch_key,
                "labels_key": labels_key,
                "categorical_covariate_keys": categorical_covariate_keys,
                "continuous_covariate_keys": continuous_covariate_keys,
            },
            modalities=modalities,
        )
        adata_manager = AnnDataManager(fields=field_list, setup_method_args=setup_method_args)
        adata_manager.register_fields(mdata, **kwargs)
        cls.register_manager(adata_manager)

    # ------------------------------------------------------------------- registry views
    @property
    def modalities(self) -> list[str]:
        """Modalities this model was set up with, among ``"rna"``, ``"protein"``, ``"atac"``."""
        registry = self.adata_manager.data_registry
        return [m for m in MODALITIES if MODALITY_REGISTRY_KEYS[m] in registry]

    def _n_features(self, modality: str) -> int:
        return self.adata_manager.get_from_registry(MODALITY_REGISTRY_KEYS[modality]).shape[1]

    def _feature_names(self, modality: str, adata: AnnData | MuData) -> pd.Index:
        mod_key = getattr(
            self.adata_manager.data_registry[MODALITY_REGISTRY_KEYS[modality]], "mod_key", None
        )
        return (adata[mod_key] if mod_key else adata).var_names

    def _check_inputs_fit(self, likelihoods: dict[str, str]) -> None:
        """Raise if a modality's values cannot be modelled by its likelihood."""
        for modality, likelihood in likelihoods.items():
            matrix = self.adata_manager.get_from_registry(MODALITY_REGISTRY_KEYS[modality])
            where = f"The {modality} data"
            if likelihood in COUNT_LIKELIHOODS:
                check_counts(matrix, where, likelihood)
            elif modality == "atac":
                check_nonnegative(matrix, where)

    def _check_modality(self, modality: str) -> None:
        if modality not in self.modalities:
            raise ValueError(
                f"Modality {modality!r} is not part of this model; it has {self.modalities}."
            )

    # -------------------------------------------------------------------------- training
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 256,
        early_stopping: bool = False,
        adversarial_batch_mixing: bool = False,
        lr: float = 1e-3,
        plan_kwargs: dict | None = None,
        **kwargs,
    ):
        """Train the model with scvi-tools' training plans.

        Parameters
        ----------
        max_epochs
            Number of passes over the data; by default scvi-tools' heuristic (fewer for larger
            data, at most 400).
        batch_size
            Minibatch size.
        early_stopping
            Stop when the validation loss stops improving (monitors ``elbo_validation``).
        adversarial_batch_mixing
            Train with :class:`~scvi.train.AdversarialTrainingPlan`: a classifier tries to
            predict the batch from the latent, and the encoder learns to defeat it.
        lr
            Learning rate of Adam (a fused implementation unless ``plan_kwargs`` names an
            ``optimizer``).
        plan_kwargs
            Further options of the training plan, e.g. ``weight_decay`` or
            ``n_epochs_kl_warmup`` (the KL weight rises linearly from 0 to 1 over that many
            epochs; 20 here, shorter than scvi-tools' 400, so that the prior's pressure to
            drop batch information from the latent acts within a usual training run).
        **kwargs
            Passed to :meth:`scvi.model.base.UnsupervisedTrainingMixin.train` (e.g.
            ``train_size``, ``accelerator``). The validation loss is computed every epoch
            unless ``check_val_every_n_epoch`` says otherwise.
        """
        # scvi leaves the module in eval mode after training; a further call (continued
        # training, or a query model after load_query_data) must train in training mode.
        self.module.train()
        self._training_plan_cls = (
            AdversarialTrainingPlan if adversarial_batch_mixing else TrainingPlan
        )
        plan_kwargs = {"lr": lr, "n_epochs_kl_warmup": 20, **(plan_kwargs or {})}
        if "optimizer" not in plan_kwargs:
            plan_kwargs["optimizer"] = "Custom"
            plan_kwargs["optimizer_creator"] = fused_adam(
                plan_kwargs["lr"], plan_kwargs.get("weight_decay", 1e-6)
            )
        if adversarial_batch_mixing:
            plan_kwargs.setdefault("adversarial_classifier", True)
        kwargs.setdefault("check_val_every_n_epoch", 1)
        return super().train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            early_stopping=early_stopping,
            plan_kwargs=plan_kwargs,
            **kwargs,
        )

    # ------------------------------------------------------------------------- outputs
    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        modality: str | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
        return_dist: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Return the joint latent of each cell, or the latent from one modality alone.

        Parameters
        ----------
        adata
            Data set up like the training data; ``None`` for the training data.
        indices
            Cells to use; ``None`` for all.
        modality
            ``None`` fuses all modalities (the joint latent). A modality name encodes that
            modality alone, the others masked out; meaningful for a model trained with
            ``modality_dropout > 0``.
        give_mean
            Return the posterior mean; otherwise a sample (VAE only).
        batch_size
            Minibatch size for the forward pass.
        return_dist
            Return the posterior mean and variance instead.

        Returns
        -------
        Cells x ``n_latent`` array, or ``(mean, variance)`` with ``return_dist``.
        """
        self._check_if_trained(warn=False)
        if modality is not None:
            self._check_modality(modality)
            if self.module.modality_dropout == 0 and len(self.modalities) > 1:
                warnings.warn(
                    "This model was trained with modality_dropout=0: a latent from one modality "
                    "alone is outside what it learned. Train with modality_dropout > 0 for it.",
                    UserWarning,
                    stacklevel=2,
                )
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        means, variances, samples = [], [], []
        for tensors in loader:
            inputs = self.module._get_inference_input(tensors)
            mask = None
            if modality is not None:
                mask = torch.zeros(inputs["batch_index"].shape[0], len(self.modalities))
                mask[:, self.modalities.index(modality)] = 1.0
            outputs = self.module.inference(**inputs, modality_mask=mask)
            means.append(outputs["qzm"].cpu())
            variances.append(outputs["qzv"].cpu())
            if not give_mean and "qz" in outputs:
                samples.append(outputs["qz"].sample().cpu())
        if return_dist:
            return torch.cat(means).numpy(), torch.cat(variances).numpy()
        return torch.cat(samples if samples else means).numpy()

    def store_latent(
        self,
        adata: AnnData | MuData | None = None,
        key: str = LATENT_OBSM_KEY,
        **kwargs,
    ) -> np.ndarray:
        """Compute the joint latent and write it to ``adata.obsm[key]``.

        Parameters
        ----------
        adata
            Data set up like the training data; ``None`` for the training data.
        key
            ``.obsm`` key to write, ``"X_omnivi"`` by default; ready for
            ``sc.pp.neighbors(adata, use_rep=key)``.
        **kwargs
            Passed to :meth:`get_latent_representation`.

        Returns
        -------
        The latent that was written.
        """
        adata = self._validate_anndata(adata)
        latent = self.get_latent_representation(adata, **kwargs)
        adata.obsm[key] = latent
        return latent

    @torch.inference_mode()
    def get_normalized_expression(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        modality: str = "rna",
        library_size: float | None = 1e4,
        batch_size: int | None = None,
        return_numpy: bool = False,
    ) -> pd.DataFrame | np.ndarray:
        """Return denoised values of one modality, decoded from the joint latent.

        Parameters
        ----------
        adata
            Data set up like the training data; ``None`` for the training data.
        indices
            Cells to use; ``None`` for all.
        modality
            ``"rna"``: expression, scaled to ``library_size`` counts per cell under a count
            likelihood. ``"protein"``: foreground protein (background removed) under
            ``"nbmixture"``, else the mean. ``"atac"``: accessibility probabilities.
        library_size
            RNA only: counts per cell to scale to; ``None`` keeps each cell's observed size.
        batch_size
            Minibatch size for the forward pass.
        return_numpy
            Return an array instead of a DataFrame.

        Returns
        -------
        Cells x features of ``modality``.
        """
        self._check_if_trained(warn=False)
        self._check_modality(modality)
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        values = []
        for tensors in loader:
            _, generative_outputs = self.module(tensors, compute_loss=False)
            px = generative_outputs["px"][modality]
            values.append(self.module.expected_value(modality, px, library_size).cpu())
        result = torch.cat(values).numpy()
        if return_numpy:
            return result
        obs_names = adata.obs_names if indices is None else adata.obs_names[np.asarray(indices)]
        return pd.DataFrame(result, index=obs_names, columns=self._feature_names(modality, adata))

    def get_accessibility_estimates(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        return_numpy: bool = False,
    ) -> pd.DataFrame | np.ndarray:
        """Return the probability that each region is accessible in each cell.

        Same as :meth:`get_normalized_expression` with ``modality="atac"``.
        """
        return self.get_normalized_expression(
            adata, indices, modality="atac", batch_size=batch_size, return_numpy=return_numpy
        )
