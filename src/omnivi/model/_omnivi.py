"""OmniVI: the user-facing multimodal integration model."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from lightning.pytorch import LightningDataModule
from mudata import MuData
from scipy import sparse
from scvi import REGISTRY_KEYS
from scvi.model.base import ArchesMixin, BaseModelClass, UnsupervisedTrainingMixin, VAEMixin

from omnivi._constants import MODALITY_REGISTRY_KEYS, LatentDistribution
from omnivi.data._loading import SparseInputDataSplitter, SparseInputLoader
from omnivi.data._validation import row_blocks
from omnivi.model._annotation import AnnotationMixin
from omnivi.model._base import MultimodalSetupMixin
from omnivi.model._plans import (
    OmniAdversarialTrainingPlan,
    OmniTrainingPlan,
    trainer_defaults,
)
from omnivi.model._query import QueryPreparationMixin
from omnivi.module import OmniVAE, modalities_with_depth


def fused_adam(lr: float, weight_decay: float, eps: float = 0.01):
    """Return an ``optimizer_creator`` for scvi's training plans: Adam with fused kernels.

    The same update as scvi-tools' default Adam (same ``eps``), computed by one fused kernel
    per step, which is several times faster on CPU for wide layers.
    """

    def create(params):
        return torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=True)

    return create


class OmniVI(
    MultimodalSetupMixin,
    AnnotationMixin,
    QueryPreparationMixin,
    VAEMixin,
    ArchesMixin,
    UnsupervisedTrainingMixin,
    BaseModelClass,
):
    """Integrate RNA, surface protein and/or chromatin accessibility into one latent per cell.

    Each modality is encoded by its own branch; the branches are concatenated and fused into
    one joint latent, and each modality is reconstructed by its own decoder with a likelihood
    fit to its data. Batch is injected into every decoder layer, so the latent need not hold
    it, and reference mapping (scArches) can adapt the model to new batches; with
    ``encode_covariates=True`` the encoder branches see it too.

    Parameters
    ----------
    adata
        AnnData or MuData registered with :meth:`setup_anndata` or :meth:`setup_mudata`.
    registry
        Instead of ``adata``, the registry of a data module that streams cells from disk, such
        as scvi-tools' :class:`~scvi.dataloaders.TileDBDataModule` (``registry=
        datamodule.registry``; see "Data larger than memory" in the user guide). Its ``X``
        is the RNA counts; labels it carries are not used.
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
        Weight of each modality's reconstruction loss, e.g. ``{"atac": 0.5}``. A modality
        not given takes its default from :func:`~omnivi.module.balanced_modality_weights`
        (1, except ATAC with more regions than genes: ``n_genes / n_regions``, 0.065 for
        1,677 genes and 25,734 regions). ``model.module.modality_weights`` holds the
        weights in use.
    contrastive_weight
        Weight of the contrastive objectives (cell types apart, batches mixed within a type,
        cell-type geometry kept; see :class:`~omnivi.module.ContrastiveObjective`) added to
        the autoencoder loss. Needs ``labels_key``; unlabeled cells take part in
        reconstruction only. 0 (default) trains without labels. The reconstruction loss sums
        over features, so useful weights are tens to hundreds.
    contrastive_kwargs
        Options of :class:`~omnivi.module.ContrastiveObjective`, e.g.
        ``{"batch_weight": 0.5}``.
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
    _training_plan_cls = OmniTrainingPlan
    _data_splitter_cls = SparseInputDataSplitter

    def __init__(
        self,
        adata: AnnData | MuData | None = None,
        registry: dict | None = None,
        n_hidden: int = 128,
        n_latent: int = 20,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        latent_distribution: LatentDistribution = "normal",
        gene_likelihood: str = "nb",
        protein_likelihood: str = "nbmixture",
        atac_likelihood: str = "bernoulli",
        modality_weights: dict[str, float] | None = None,
        contrastive_weight: float = 0.0,
        contrastive_kwargs: dict | None = None,
        **module_kwargs,
    ):
        super().__init__(adata, registry)
        if contrastive_weight > 0:
            self._require_labels("contrastive_weight > 0")
        requested = {
            "rna": gene_likelihood,
            "protein": protein_likelihood,
            "atac": atac_likelihood,
        }
        likelihoods = {m: requested[m] for m in self.modalities}
        if self.adata is not None:
            self._check_inputs_fit(likelihoods)
        n_cats_per_cov = self._n_cats_per_cov()
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
            log_depth_means=self._log_depth_means(likelihoods),
            batches_with_modality=self._batches_with_modality(),
            n_labels=self.summary_stats.n_labels if self.has_labels else 0,
            unlabeled_code=self.unlabeled_code if self.has_labels else -1,
            contrastive_weight=contrastive_weight,
            contrastive_kwargs=contrastive_kwargs,
            **module_kwargs,
        )
        self._model_summary_string = (
            f"OmniVI model: modalities {self.modalities}, likelihoods {likelihoods}, "
            f"n_latent {n_latent}, n_hidden {n_hidden}, latent {latent_distribution}, "
            f"{self.summary_stats.n_batch} batch(es)."
        )
        self.init_params_ = self._get_init_params(locals())

    def _log_depth_means(self, likelihoods: dict[str, str]) -> dict[str, float]:
        """Mean log depth of each modality whose decoder takes one, over its cells.

        The depth is ``log1p`` of the total count (protein) or of the number of accessible
        regions (ATAC), as :meth:`~omnivi.module.OmniVAE.size_factors` computes it. A
        modality no registered cell has (a query model, whose module then takes its
        reference's value) is left out, and so is every modality without registered data.
        """
        if self.adata is None:
            return {}
        observed = self._observed_modalities()
        means = {}
        for modality in modalities_with_depth(likelihoods):
            has = observed[:, self.modalities.index(modality)]
            if not has.any():
                continue
            matrix = self.adata_manager.get_from_registry(MODALITY_REGISTRY_KEYS[modality])
            depth = np.concatenate(
                [
                    np.asarray(
                        (block > 0).sum(axis=1) if modality == "atac" else block.sum(axis=1),
                        dtype=np.float64,
                    ).ravel()
                    for block in row_blocks(matrix)  # from disk a block of rows at a time
                ]
            )
            means[modality] = float(np.log1p(depth[has]).mean())
        return means

    def _batches_with_modality(self) -> dict[str, list[int]]:
        """For each modality, the batch codes of registered cells that have it.

        All batches for every modality unless the data is mosaic. Empty without registered
        data.
        """
        if self.adata is None:
            return {}
        codes = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
        observed = self._observed_modalities()
        return {
            m: np.unique(codes.ravel()[observed[:, i]]).tolist()
            for i, m in enumerate(self.modalities)
        }

    # -------------------------------------------------------------------------- training
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 256,
        early_stopping: bool = False,
        adversarial_batch_mixing: bool = False,
        lr: float = 4e-3,
        reduce_lr_on_plateau: bool = True,
        plan_kwargs: dict | None = None,
        datamodule: LightningDataModule | None = None,
        **kwargs,
    ):
        """Train the model with scvi-tools' training plans.

        Parameters
        ----------
        max_epochs
            Number of passes over the data; by default scvi-tools' heuristic (fewer for larger
            data, at most 400).
        batch_size
            Minibatch size (a ``datamodule`` uses its own).
        early_stopping
            Stop when the validation loss stops improving (monitors ``elbo_validation``).
        adversarial_batch_mixing
            Train with :class:`~scvi.train.AdversarialTrainingPlan`: a classifier tries to
            predict the batch from the latent, and the encoder learns to defeat it.
        lr
            Learning rate of Adam (a fused implementation unless ``plan_kwargs`` names an
            ``optimizer``). 4e-3, TOTALVI's default, rather than SCVI's 1e-3: scvi-tools'
            epoch heuristic caps small data sets at 400 epochs, so a 600-cell set gets about
            a thousand steps, and at 1e-3 the model left batch structure in its latent
            (scib total 0.653 vs 0.680 at 4e-3 on ``bmmc_cite_small``, 3 seeds).
        reduce_lr_on_plateau
            Multiply the learning rate by 0.6 whenever the validation ELBO has not improved
            for 30 epochs (scvi-tools' ``lr_factor`` and ``lr_patience``, which
            ``plan_kwargs`` can change), as TOTALVI does by default: the steps shrink once
            the fit has stopped improving, so the latent settles instead of moving by full
            steps to the last epoch. Needs the validation loss of every epoch: training
            without validation cells, with ``check_val_every_n_epoch`` other than 1, or
            from a data module without early stopping (which then reads no validation
            cells) keeps the learning rate constant.
        plan_kwargs
            Further options of the training plan, e.g. ``weight_decay`` or
            ``n_epochs_kl_warmup`` (the KL weight rises linearly from 0 to 1 over that many
            epochs; 20 here, shorter than scvi-tools' 400, so that the prior's pressure to
            drop batch information from the latent acts within a usual training run).
        datamodule
            A data module that streams the cells (from disk) for a model built with
            ``registry=datamodule.registry``, e.g. :class:`~scvi.dataloaders.TileDBDataModule`;
            it splits training and validation cells itself. As in scvi-tools, its validation
            cells are read only with ``early_stopping=True`` or ``check_val_every_n_epoch``:
            a second stream over the store (at 1M cells from TileDB-SOMA, 1,654 MiB peak
            with it against 1,416 MiB without, in the scale benchmark).
        **kwargs
            Passed to :meth:`scvi.model.base.UnsupervisedTrainingMixin.train` (e.g.
            ``train_size``, ``accelerator``). From data in memory the validation loss is
            computed every epoch unless ``check_val_every_n_epoch`` says otherwise. A model
            with ATAC slices sparse data into sparse minibatches and moves them to the
            device as such (``load_sparse_tensor=True``, its default; see
            :class:`~omnivi.data.SparseInputDataSplitter`): ATAC stays sparse into its
            encoder and loss, RNA and protein are densified on the device. Without ATAC,
            minibatches are densified on the host, as scvi-tools does by default (for RNA
            and protein 1-10% faster on two CPU cores than densifying after the move);
            ``load_sparse_tensor`` chooses either way.

        Notes
        -----
        With labels registered, training ends by fitting the cell-type classifier on the
        learned latent (:meth:`train_classifier`), which :meth:`predict` and
        :meth:`get_novelty_scores` use. A query model (:meth:`load_query_data`) keeps the
        reference's classifier, and trains without weight decay unless ``plan_kwargs`` sets
        one.
        """
        # scvi leaves the module in eval mode after training; a further call (continued
        # training, or a query model after load_query_data) must train in training mode.
        self.module.train()
        self._training_plan_cls = (
            OmniAdversarialTrainingPlan if adversarial_batch_mixing else OmniTrainingPlan
        )
        is_query = getattr(self, "is_query_model_", False)
        if datamodule is None:
            if self.adata is None:
                raise ValueError(
                    "This model was built from a data module's registry: train it with "
                    "train(datamodule=datamodule)."
                )
            kwargs = trainer_defaults(kwargs, self.adata.n_obs, batch_size, early_stopping)
            reads_sparse = self._sparse_input_keys()
            kwargs.setdefault("load_sparse_tensor", bool(reads_sparse))
            kwargs["datasplitter_kwargs"] = {
                "keep_sparse": reads_sparse,
                **(kwargs.get("datasplitter_kwargs") or {}),
            }
        # scvi-tools' trainer validates every epoch for early stopping unless told otherwise
        validation_every = kwargs.get("check_val_every_n_epoch") or (1 if early_stopping else None)
        plan_kwargs = {
            "lr": lr,
            "n_epochs_kl_warmup": 20,
            "reduce_lr_on_plateau": reduce_lr_on_plateau and validation_every == 1,
            # scArches trains a slice of each frozen weight; decay would shrink the rest
            **({"weight_decay": 0.0} if is_query else {}),
            **(plan_kwargs or {}),
        }
        if "optimizer" not in plan_kwargs:
            plan_kwargs["optimizer"] = "Custom"
            plan_kwargs["optimizer_creator"] = fused_adam(
                plan_kwargs["lr"], plan_kwargs.get("weight_decay", 1e-6)
            )
        if adversarial_batch_mixing:
            plan_kwargs.setdefault("adversarial_classifier", True)
        result = super().train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            early_stopping=early_stopping,
            plan_kwargs=plan_kwargs,
            datamodule=datamodule,
            **kwargs,
        )
        if self.module.classifier is not None and not is_query:
            self.train_classifier()
        return result

    def _sparse_input_keys(self) -> list[str]:
        """Registry keys of the modalities the module reads sparse: ATAC's."""
        return [MODALITY_REGISTRY_KEYS[m] for m in self.modalities if m == "atac"]

    def _make_data_loader(self, adata, indices=None, batch_size=None, **kwargs):
        """scvi-tools' loader of the cells to compute outputs from.

        With ATAC, sparse data is sliced into sparse minibatches as in training: ATAC's stay
        sparse, the others are made dense (:class:`~omnivi.data.SparseInputLoader`).
        """
        keep_sparse = self._sparse_input_keys()
        if not keep_sparse or "load_sparse_tensor" in kwargs:
            return super()._make_data_loader(adata, indices, batch_size, **kwargs)
        loader = super()._make_data_loader(
            adata, indices, batch_size, load_sparse_tensor=True, **kwargs
        )
        return SparseInputLoader(loader, keep_sparse)

    @classmethod
    def load_query_data(
        cls,
        adata: AnnData | MuData,
        reference_model: str | os.PathLike | OmniVI,
        **kwargs,
    ) -> OmniVI:
        """Map query data onto a reference model with scArches (Lotfollahi et al., 2022).

        The query, prepared by :meth:`prepare_query_mudata` or :meth:`prepare_query_anndata`,
        gets a model initialised from the reference, with its new batches added. Training it
        (``query_model.train()``) updates only what scArches trains, by default the weights
        of the new batches' covariates; the reference's classifier and novelty reference are
        kept, so the query model annotates the query (:meth:`predict`) and scores it for
        novel cell types (:meth:`get_novelty_scores`) as the reference model would.

        Parameters
        ----------
        adata
            The prepared query.
        reference_model
            The reference model, or the folder it was saved to.
        **kwargs
            Options of :meth:`scvi.model.base.ArchesMixin.load_query_data`
            (``freeze_expression``, ``unfrozen``, ...).
        """
        cls._check_laid_out_like(adata, reference_model)
        model = super().load_query_data(adata, reference_model, **kwargs)
        # The reference's record of which batches measured each modality, plus the query's
        # (a batch the reference knew without cells may have some in the query).
        model.module.add_batches_with_modality(model._batches_with_modality())
        model.is_query_model_ = True
        return model

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
        dataloader: Iterable[dict[str, torch.Tensor]] | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Return the joint latent of each cell, or the latent from one modality alone.

        Parameters
        ----------
        adata
            Data with the training data's features and ``.obs`` columns; ``None`` for the
            training data. Its batches may be new unless the model was built with
            ``encode_covariates=True`` (then map it with ``load_query_data`` first).
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
        dataloader
            Instead of ``adata``, minibatches of a data module, e.g.
            ``datamodule.inference_dataloader()``; rows come in its order.

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
        if dataloader is not None:
            loader = self._external_loader(dataloader, adata, indices)
        else:
            if self.module.encode_covariates:
                adata = self._validate_anndata(adata)
            else:  # the encoder reads no covariate: new batches are fine
                adata = self._validate_query(adata)
            if modality is not None:
                self._check_can_encode(adata, indices, [modality])
            loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        means, variances, samples = [], [], []
        for tensors in loader:
            inputs = self.module._get_inference_input(tensors)
            n_cells = len(inputs["batch_index"])
            mask = None if modality is None else self._encoding_mask(n_cells, [modality])
            outputs = self.module.inference(**inputs, modality_mask=mask)
            means.append(outputs["qzm"].cpu())
            variances.append(outputs["qzv"].cpu())
            if not give_mean and "qz" in outputs:
                samples.append(outputs["qz"].sample().cpu())
        if return_dist:
            return torch.cat(means).numpy(), torch.cat(variances).numpy()
        return torch.cat(samples if samples else means).numpy()

    @torch.inference_mode()
    def get_normalized_expression(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        modality: str = "rna",
        library_size: float | None = 1e4,
        from_modalities: Sequence[str] | None = None,
        batch_size: int | None = None,
        return_numpy: bool = False,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        dataloader: Iterable[dict[str, torch.Tensor]] | None = None,
    ) -> pd.DataFrame | np.ndarray | sparse.csr_matrix:
        """Return denoised values of one modality, decoded from the joint latent.

        This is also cross-modal imputation: a cell of mosaic data that lacks ``modality`` gets
        it predicted from the modalities it has, and ``from_modalities`` predicts it from
        chosen modalities only (e.g. protein from RNA for cells that have both, to check the
        imputation against the measurement).

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
        from_modalities
            Modalities the latent is encoded from; ``None`` for all that each cell has. Every
            cell must have one of them. Meaningful for a model trained with
            ``modality_dropout > 0`` (the default) or on mosaic data.
        batch_size
            Minibatch size for the forward pass.
        return_numpy
            Return an array (a sparse matrix with ``threshold``) instead of a DataFrame.
        features
            Names of the features to return; ``None`` for all. A few features of many cells
            cost memory for those features only.
        threshold
            Set values below it to 0 and return a sparse result (a sparse DataFrame, or a
            CSR matrix with ``return_numpy``), built minibatch by minibatch, so that a large
            request (accessibility of many cells and regions) never makes a dense cells x
            features table. ``None`` returns dense values.
        dataloader
            Instead of ``adata``, minibatches of a data module, e.g.
            ``datamodule.inference_dataloader()``; rows come in its order, numbered from 0.

        Returns
        -------
        Cells x features of ``modality`` (or ``features``).
        """
        self._check_if_trained(warn=False)
        self._check_modality(modality)
        if dataloader is not None:
            loader = self._external_loader(dataloader, adata, indices)
        else:
            adata = self._validate_anndata(adata)
            if from_modalities is not None:
                self._check_can_encode(adata, indices, from_modalities)
            loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        names = self._feature_names(modality)
        columns = None
        if features is not None:
            columns = names.get_indexer(pd.Index(features))
            if (columns < 0).any():
                unknown = list(pd.Index(features)[columns < 0][:5])
                raise KeyError(f"{modality} has no feature(s) {unknown}; e.g. {list(names[:3])}.")
            names = names[columns]
            columns = torch.as_tensor(columns, device=self.device)
        chunks = []
        for tensors in loader:
            mask = None
            if from_modalities is not None:
                mask = self._encoding_mask(len(tensors[REGISTRY_KEYS.BATCH_KEY]), from_modalities)
            _, generative_outputs = self.module(
                tensors, inference_kwargs={"modality_mask": mask}, compute_loss=False
            )
            px = generative_outputs["px"][modality]
            values = self.module.expected_value(modality, px, library_size)
            if columns is not None:
                values = values.index_select(1, columns)
            if threshold is not None:
                values = torch.where(values >= threshold, values, 0.0)
                values = sparse.csr_matrix(values.cpu().numpy())
            else:
                values = values.cpu().numpy()
            chunks.append(values)
        if threshold is not None:
            result = sparse.vstack(chunks, format="csr")
        else:
            result = np.concatenate(chunks)
        if return_numpy:
            return result
        if dataloader is not None:
            obs_names = pd.RangeIndex(result.shape[0])
        elif indices is None:
            obs_names = adata.obs_names
        else:
            obs_names = adata.obs_names[np.asarray(indices)]
        if threshold is not None:
            return pd.DataFrame.sparse.from_spmatrix(result, index=obs_names, columns=names)
        return pd.DataFrame(result, index=obs_names, columns=names)

    def _check_can_encode(
        self,
        adata: AnnData | MuData,
        indices: Sequence[int] | None,
        modalities: Sequence[str],
    ) -> None:
        """Raise unless every selected cell has one of ``modalities`` (mosaic data)."""
        for modality in modalities:
            self._check_modality(modality)
        observed = self._observed_modalities(adata, indices)
        columns = [self.modalities.index(m) for m in modalities]
        lacking = int((~observed[:, columns].any(axis=1)).sum())
        if lacking:
            raise ValueError(
                f"{lacking} of the selected cells have none of {list(modalities)}, so there is "
                "nothing to encode them from. Select cells that have one with `indices=`, or "
                "encode from the modalities they have."
            )

    def _encoding_mask(self, n_cells: int, modalities: Sequence[str]) -> torch.Tensor:
        """Cells x modalities mask that encodes from ``modalities`` only."""
        mask = torch.tensor([float(m in modalities) for m in self.modalities], device=self.device)
        return mask.expand(n_cells, -1)

    def get_accessibility_estimates(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        return_numpy: bool = False,
        regions: Sequence[str] | None = None,
        threshold: float | None = None,
    ) -> pd.DataFrame | np.ndarray | sparse.csr_matrix:
        """Return the probability that each region is accessible in each cell.

        :meth:`get_normalized_expression` with ``modality="atac"``; ``regions`` selects
        regions by name, and ``threshold`` (e.g. 0.1) returns a sparse result with the
        probabilities below it set to 0, as MULTIVI's does: for many cells x regions, a dense
        table would not fit in memory.
        """
        return self.get_normalized_expression(
            adata,
            indices,
            modality="atac",
            batch_size=batch_size,
            return_numpy=return_numpy,
            features=regions,
            threshold=threshold,
        )
