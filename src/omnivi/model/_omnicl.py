"""OmniCL: an encoder-only contrastive model for annotation and batch-mixed embeddings."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from anndata import AnnData
from mudata import MuData
from scvi.model.base import ArchesMixin, BaseModelClass, UnsupervisedTrainingMixin

from omnivi.data._validation import check_nonnegative
from omnivi.model._annotation import AnnotationMixin
from omnivi.model._base import MultimodalSetupMixin
from omnivi.model._plans import ContrastiveTrainingPlan, trainer_defaults
from omnivi.model._query import QueryPreparationMixin
from omnivi.module import ContrastiveEncoder
from omnivi.module._contrastive_encoder import InputTransform


class OmniCL(
    MultimodalSetupMixin,
    AnnotationMixin,
    QueryPreparationMixin,
    ArchesMixin,
    UnsupervisedTrainingMixin,
    BaseModelClass,
):
    """Embed cells with contrastive objectives alone: cell types apart, batches mixed.

    An encoder without decoder, trained by the supervised contrastive cell-type term, the
    within-type batch-mixing term and the centroid-geometry term of
    :class:`~omnivi.module.ContrastiveObjective` (the CELLULAR recipe, on scvi-tools, for RNA
    or several modalities). A classifier on the learned embedding is fit at the end of
    training: :meth:`predict` annotates cells, :meth:`get_novelty_scores` flags cells of
    types the model has not seen, :meth:`get_cell_type_representations` returns a vector per
    type.

    Parameters
    ----------
    adata
        AnnData or MuData registered with :meth:`setup_anndata` or :meth:`setup_mudata`, with
        ``labels_key``. Non-negative values (counts, or normalised with
        ``input_transform="identity"``).
    n_hidden
        Width of each modality's block.
    n_fusion_hidden
        Width of the joint layer.
    n_latent
        Dimension of the embedding.
    dropout_rate
        Dropout after each hidden layer.
    input_transform
        ``"normalize_log1p"`` (counts scaled to 10,000 per cell, then log1p; default),
        ``"log1p"``, or ``"identity"`` for input that is normalised already.
    modality_dropout
        With several modalities, the probability during training that a cell has one of them
        hidden from the encoder, so that cells measured in fewer modalities (an RNA-only
        query of an RNA + protein reference) are embedded well. 0.2 by default, as in
        :class:`~omnivi.model.OmniVI`.
    contrastive_kwargs
        Options of :class:`~omnivi.module.ContrastiveObjective`: ``cell_type_weight`` (0.9),
        ``batch_weight`` (0.1), ``centroid_weight`` (1.0), ``temperature`` (0.25),
        ``temperature_range`` ((0.1, 2.0)).

    Examples
    --------
    >>> omnivi.model.OmniCL.setup_anndata(adata, batch_key="sample", labels_key="cell_type")
    >>> model = omnivi.model.OmniCL(adata)
    >>> model.train()
    >>> query.obs["predicted"] = model.predict(query)
    >>> novelty = model.get_novelty_scores(query)
    """

    _module_cls = ContrastiveEncoder
    _training_plan_cls = ContrastiveTrainingPlan

    def __init__(
        self,
        adata: AnnData | MuData,
        n_hidden: int = 1000,
        n_fusion_hidden: int = 500,
        n_latent: int = 100,
        dropout_rate: float = 0.2,
        input_transform: InputTransform = "normalize_log1p",
        modality_dropout: float = 0.2,
        contrastive_kwargs: dict | None = None,
    ):
        super().__init__(adata)
        self._require_labels("OmniCL")
        if self.adata is not None:
            for modality, key in zip(self.modalities, self._modality_keys(), strict=True):
                check_nonnegative(
                    self.adata_manager.get_from_registry(key),
                    f"The {modality} data",
                    "OmniCL reads counts, or non-negative normalised values (e.g. log1p) with "
                    "input_transform='identity'; register a layer that is not scaled to zero "
                    "mean.",
                )
        self.module = self._module_cls(
            n_features={m: self._n_features(m) for m in self.modalities},
            n_labels=self.summary_stats.n_labels,
            unlabeled_code=self.unlabeled_code,
            n_hidden=n_hidden,
            n_fusion_hidden=n_fusion_hidden,
            n_latent=n_latent,
            dropout_rate=dropout_rate,
            input_transform=input_transform,
            modality_dropout=modality_dropout,
            contrastive_kwargs=contrastive_kwargs,
        )
        self._model_summary_string = (
            f"OmniCL model: modalities {self.modalities}, n_latent {n_latent}, "
            f"{len(self.cell_types)} cell types, {self.summary_stats.n_batch} batch(es)."
        )
        self.init_params_ = self._get_init_params(locals())

    def train(
        self,
        max_epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 5e-5,
        warmup_fraction: float = 0.05,
        early_stopping: bool = False,
        plan_kwargs: dict | None = None,
        **kwargs,
    ):
        """Train the encoder, then fit the classifier on its embedding.

        Parameters
        ----------
        max_epochs
            Passes over the data.
        batch_size
            Minibatch size.
        lr, weight_decay
            Adam's peak learning rate and weight decay.
        warmup_fraction
            Fraction of the steps over which the learning rate warms up; it then follows a
            cosine to 0 (:class:`~omnivi.model.WarmupCosineTrainingPlan`).
        early_stopping
            Stop when ``validation_loss`` stops improving.
        plan_kwargs
            Further options of the training plan.
        **kwargs
            Passed to :meth:`scvi.model.base.UnsupervisedTrainingMixin.train` (e.g.
            ``train_size``, ``accelerator``).

        Notes
        -----
        ``model.history`` holds each contrastive term (``contrastive_cell_type``,
        ``contrastive_batch``, ``contrastive_centroid``, their weighted ``contrastive_total``)
        and the learned ``temperature``, for training and validation cells, beside
        ``train_loss`` and ``validation_loss``. It has no ELBO columns: the model has no
        likelihood (:class:`~omnivi.model.ContrastiveTrainingPlan`).
        """
        if getattr(self, "is_query_model_", False):
            raise RuntimeError(
                "This OmniCL model was made by load_query_data: its encoder reads no batch, so "
                "there is nothing to adapt to the query. Use it as it is (predict, "
                "get_novelty_scores, get_latent_representation)."
            )
        self.module.train()
        plan_kwargs = {
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_fraction": warmup_fraction,
            **(plan_kwargs or {}),
        }
        kwargs.setdefault("early_stopping_monitor", "validation_loss")
        kwargs = trainer_defaults(kwargs, self.adata.n_obs, batch_size, early_stopping)
        result = super().train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            early_stopping=early_stopping,
            plan_kwargs=plan_kwargs,
            **kwargs,
        )
        self.train_classifier()
        return result

    @classmethod
    def load_query_data(
        cls,
        adata: AnnData | MuData,
        reference_model: str | os.PathLike | OmniCL,
        **kwargs,
    ) -> OmniCL:
        """Return the reference model set up on a query, ready to annotate it.

        OmniCL's encoder reads neither batches nor labels, so scArches has nothing to adapt:
        the query model is the reference's weights, classifier and novelty reference on the
        query's registration, and needs no training. (Calling ``predict(query)`` on the
        reference model gives the same labels.)

        Parameters
        ----------
        adata
            The query, prepared by :meth:`prepare_query_mudata` or
            :meth:`prepare_query_anndata`.
        reference_model
            The reference model, or the folder it was saved to.
        **kwargs
            Options of :meth:`scvi.model.base.ArchesMixin.load_query_data`.
        """
        cls._check_laid_out_like(adata, reference_model)
        model = super().load_query_data(adata, reference_model, **kwargs)
        model.is_query_model_ = True
        model.is_trained_ = True
        return model

    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Return the embedding of each cell (cells x ``n_latent``).

        Parameters
        ----------
        adata
            Data with the training data's features and ``.obs`` columns; ``None`` for the
            training data. Its batches and labels may be ones the model never saw (the
            encoder reads neither).
        indices
            Cells to use; ``None`` for all.
        batch_size
            Minibatch size for the forward pass.
        normalize
            Scale each cell's vector to length 1: the geometry the contrastive terms train
            (they compare cosines), which the classifier, the novelty scores and
            :meth:`store_latent` use. ``False`` returns the encoder's output as it is.
        """
        self._check_if_trained(warn=False)
        adata = self._validate_query(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        self.module.eval()
        z = torch.cat(
            [
                self.module.inference(**self.module._get_inference_input(t))["z"].cpu()
                for t in loader
            ]
        ).numpy()
        if not normalize:
            return z
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
