"""Cell annotation on a trained embedding: classifier, novelty, cell-type representations."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scipy.spatial.distance import cdist
from scvi import REGISTRY_KEYS
from scvi.data._constants import _SCVI_UUID_KEY
from scvi.train import ClassifierTrainingPlan, Trainer
from sklearn.neighbors import KNeighborsClassifier

from omnivi.data._mosaic import is_mosaic
from omnivi.model._embedding_loader import embedding_loader
from omnivi.model._input_pca import InputPCA
from omnivi.model._label_geometry import inverse_frequency_weights
from omnivi.model._novelty import (
    mean_reference_distance,
    mixing_threshold,
    query_neighbour_fraction,
)

RepresentationMethod = Literal["centroid", "median", "medoid"]
NoveltyMethod = Literal["mixing", "distance"]
NOVELTY_METHODS = ("mixing", "distance")
_MAX_REFERENCE_CELLS = 20_000
_MAX_MEDOID_CELLS = 2_000
_MIN_CALIBRATION_CELLS = 10


def _as_indices(indices: Sequence[int] | None, n_obs: int) -> np.ndarray:
    return np.arange(n_obs) if indices is None else np.asarray(indices)


class AnnotationMixin:
    """Classifier, per-cell novelty and cell-type representations for an omnivi model.

    The model must provide ``get_latent_representation`` and a module with ``classifier``
    (a :class:`~omnivi.nn.LatentClassifier`, present when labels were registered) and
    optionally ``contrastive`` (a :class:`~omnivi.module.ContrastiveObjective`).
    """

    novelty_k: int = 30
    novelty_false_positive_rate: float = 0.05

    # ------------------------------------------------------------------ before training
    def _registered_codes(self) -> np.ndarray:
        return np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()

    # ------------------------------------------------------------------ after training
    def _reference_indices(self) -> np.ndarray:
        """Training cells (all registered cells if the split is unknown) that carry a label."""
        indices = _as_indices(getattr(self, "train_indices", None), self.adata.n_obs)
        return indices[self._registered_codes()[indices] != self.unlabeled_code]

    def _calibration_indices(self) -> np.ndarray | None:
        indices = getattr(self, "validation_indices", None)
        if indices is None or len(indices) == 0:
            return None
        indices = np.asarray(indices)
        return indices[self._registered_codes()[indices] != self.unlabeled_code]

    def train_classifier(
        self,
        max_epochs: int = 100,
        lr: float = 1e-3,
        batch_size: int = 256,
        weight_decay: float = 1e-4,
        balance_classes: bool = True,
        early_stopping: bool = True,
        **trainer_kwargs,
    ) -> None:
        """Fit the cell-type classifier on the frozen embedding of the labelled training cells.

        Called at the end of ``train()``; call it again to refit. Trained by Lightning
        (:class:`scvi.train.ClassifierTrainingPlan`, cross-entropy on logits) on the device
        the model is on, with early stopping on the labelled validation cells. Also records
        the reference that :meth:`get_novelty_scores` compares cells with.

        Parameters
        ----------
        max_epochs
            Most passes over the labelled training cells.
        lr, weight_decay
            Adam's learning rate and weight decay.
        batch_size
            Minibatch size.
        balance_classes
            Weight each cell inversely to its type's frequency, so that rare types count as
            much as common ones.
        early_stopping
            Stop when the loss of the labelled validation cells stops falling (patience 10);
            ignored when there are fewer than 10 of them.
        **trainer_kwargs
            Options of :class:`scvi.train.Trainer` (by default the model's device, one
            process, no progress bar).
        """
        self._require_labels("The classifier")
        reference = self._reference_indices()
        z = self.get_latent_representation(indices=reference)
        codes = self._registered_codes()[reference]
        classifier = self.module.classifier
        weights = None
        if balance_classes:
            n_classes = classifier.layers[-1].out_features
            weights = torch.as_tensor(
                inverse_frequency_weights(codes, n_classes, self.unlabeled_code),
                dtype=torch.float32,
            )
        calibration = self._calibration_indices()
        validation = None
        if calibration is not None and len(calibration) >= _MIN_CALIBRATION_CELLS:
            validation = embedding_loader(
                self.get_latent_representation(indices=calibration),
                self._registered_codes()[calibration],
                batch_size,
            )
        classifier.reset_parameters()
        classifier.requires_grad_(True)
        classifier.train()
        plan = ClassifierTrainingPlan(
            classifier,
            lr=lr,
            weight_decay=weight_decay,
            loss=partial(torch.nn.CrossEntropyLoss, weight=weights),
        )
        trainer = Trainer(
            max_epochs=max_epochs,
            **{
                **self._local_device(),
                "early_stopping": early_stopping and validation is not None,
                "early_stopping_monitor": "validation_loss",
                "early_stopping_patience": 10,
                "check_val_every_n_epoch": 1 if validation is not None else None,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                **trainer_kwargs,
            },
        )
        trainer.fit(plan, embedding_loader(z, codes, batch_size, shuffle=True), validation)
        classifier.requires_grad_(False)  # trained apart: no gradient in the module's training
        classifier.eval()
        self._record_novelty_reference(z, reference)

    def _local_device(self) -> dict[str, Any]:
        """Trainer options that keep a fit on this model's device, in this process."""
        device = self.device
        if device.type == "cuda":
            return {"accelerator": "gpu", "devices": [device.index or 0]}
        return {"accelerator": device.type, "devices": 1}

    def _record_novelty_reference(self, z: np.ndarray, reference: np.ndarray) -> None:
        """Keep (a sample of) the reference cells and calibrate the distance threshold.

        The reference cells are kept in the learned embedding (for ``"distance"``), and in a
        PCA of their input fit on them, with their batches (for ``"mixing"``, calibrated per
        query by :func:`~omnivi.model._novelty.mixing_threshold`). The distance threshold is
        the ``1 - novelty_false_positive_rate`` quantile of the distances of held-out
        labelled cells: the validation cells, else a random tenth of the reference.
        """
        rng = np.random.default_rng(0)
        calibration = self._calibration_indices()
        if calibration is None or len(calibration) < _MIN_CALIBRATION_CELLS:
            held_out = rng.random(len(reference)) < 0.1
            calibration, reference, z = reference[held_out], reference[~held_out], z[~held_out]
        if len(reference) > _MAX_REFERENCE_CELLS:
            kept = rng.choice(len(reference), _MAX_REFERENCE_CELLS, replace=False)
            reference, z = reference[kept], z[kept]
        matrices = self._input_matrices(indices=reference)
        observed = self._observed_modalities(indices=reference)
        self.novelty_space_ = InputPCA().fit(matrices, observed)
        batches = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
        self.novelty_reference_ = {
            "data": self.adata_manager.adata.uns[_SCVI_UUID_KEY],
            "indices": reference,
            "types": self._registered_codes()[reference],
            "batches": batches.ravel()[reference],
            "observed": observed,
            "embedding": z.astype(np.float32),
            "input": self.novelty_space_.transform(matrices),
        }
        calibration_z = self.get_latent_representation(indices=calibration)
        distances = mean_reference_distance(z, calibration_z, self.novelty_k)
        self.novelty_thresholds_ = {
            "distance": float(np.quantile(distances, 1 - self.novelty_false_positive_rate))
        }

    # ------------------------------------------------------------------------ outputs
    def _validate_query(self, adata: AnnData | MuData | None) -> AnnData | MuData:
        """Register query data for embedding and annotation, whatever labels it carries.

        The query's labels are not used: they may name types the model has not seen. Its
        batches may be new too, as long as the encoder does not read them (the default):
        categories unseen in training are accepted, and their codes are never read. A mosaic
        MuData query (e.g. from ``prepare_query_anndata``) is padded like training data.
        """
        if adata is None or self.get_anndata_manager(adata) is not None:
            return self._validate_anndata(adata)
        self._check_laid_out_like(adata, self)
        mosaic = isinstance(adata, MuData) and is_mosaic(adata, self._modality_names())
        labels_key = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY).original_key
        obs = adata.obs
        mod_key = getattr(
            self.adata_manager.data_registry[REGISTRY_KEYS.LABELS_KEY], "mod_key", None
        )
        if mod_key is not None and not mosaic:
            obs = adata[mod_key].obs
        if self.has_labels and labels_key not in obs:
            raise KeyError(
                f"The query has no {labels_key!r} column, which the model was set up with. Add "
                f"one (unknown labels are fine, e.g. query.obs[{labels_key!r}] = 'unknown')."
            )
        if isinstance(adata, MuData):
            self._register_query(adata, extend_categories=True)
        else:
            self._register_manager_for_instance(
                self.adata_manager.transfer_fields(adata, extend_categories=True)
            )
        return adata

    def _check_annotation_ready(self) -> None:
        self._require_labels("Annotation")
        self._check_if_trained(warn=False)
        if getattr(self, "novelty_thresholds_", None) is None:
            raise RuntimeError("The classifier is not fit yet; call `model.train_classifier()`.")

    def _label_mapping(self) -> np.ndarray:
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        return np.asarray(state.categorical_mapping)

    @torch.inference_mode()
    def _class_probabilities(self, z: np.ndarray) -> np.ndarray:
        """Classifier probabilities (cells x label codes; 0 for the unlabeled code)."""
        classifier = self.module.classifier
        device = next(classifier.parameters()).device
        logits = classifier(torch.as_tensor(z, dtype=torch.float32, device=device))
        if self.unlabeled_code >= 0:
            logits[:, self.unlabeled_code] = float("-inf")
        return torch.softmax(logits, dim=-1).cpu().numpy()

    def predict(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        soft: bool = False,
    ) -> np.ndarray | pd.DataFrame:
        """Predict the cell type of each cell.

        Parameters
        ----------
        adata
            Data with the training data's features and ``.obs`` columns; ``None`` for the
            training data. Its labels are ignored and may name unseen types.
        indices
            Cells to use; ``None`` for all.
        soft
            Return per-type probabilities instead of labels.

        Returns
        -------
        An array of labels, or with ``soft=True`` a cells x types DataFrame of probabilities.
        """
        self._check_annotation_ready()
        adata = self._validate_query(adata)
        probabilities = self._class_probabilities(
            self.get_latent_representation(adata, indices=indices)
        )
        mapping = self._label_mapping()
        if not soft:
            return mapping[probabilities.argmax(axis=1)]
        obs_names = adata.obs_names if indices is None else adata.obs_names[np.asarray(indices)]
        keep = np.arange(len(mapping)) != self.unlabeled_code
        return pd.DataFrame(probabilities[:, keep], index=obs_names, columns=mapping[keep])

    def get_novelty_scores(
        self,
        adata: AnnData | MuData | None = None,
        indices: Sequence[int] | None = None,
        method: NoveltyMethod = "mixing",
        write_to_obs: bool = False,
        key_prefix: str = "omnivi_",
    ) -> pd.DataFrame:
        """Score how unlike every known cell type each cell is, and call novel cells.

        - ``"mixing"`` (default) scores a query population. Query cells and the labelled
          training cells are pooled in a PCA of the input data fit on the training cells,
          and the score is the fraction of query cells among each query cell's
          ``novelty_k`` (30) nearest other cells. Cells of known types mix with training
          cells of their type; cells of a type the model never saw have query cells around
          them, and score near 1. It works in the input space, not the learned embedding,
          because training with labels maps cells of unseen types onto known ones.
          The threshold is set for each query from pseudo-queries of training cells that
          copy it: training batches in turn play the query, with as many cells of each
          predicted type, against the other batches' cells in the query's ratio to the
          training cells (:func:`~omnivi.model._novelty.mixing_threshold`); the threshold
          is the highest score that ``novelty_false_positive_rate`` (5%) of these
          known-type cells exceed in any of them. So a query of any size or composition
          that differs from the training data no more than its batches differ from each
          other has at most about that rate of known-type cells called novel; a query from
          a batch farther from the training data than they are has more (on mouse cortex,
          up to 12% for a type with few cells in each batch). A warning says when the
          threshold cannot copy the query (one training batch; too few training cells of
          the query's types), and ``"distance"`` (in the batch-corrected embedding) suits a
          query from a much more distant technology better. The query should be a
          population (at least 20 cells).
        - ``"distance"`` scores cells one at a time: the mean distance to the
          ``novelty_k`` nearest training cells in the learned embedding, with a threshold
          exceeded by 5% of the validation cells.

        Parameters
        ----------
        adata
            Query data with the training data's features and ``.obs`` columns (its labels
            are ignored and may name unseen types); ``None`` for the registered data, e.g.
            its cells with the unlabeled category, chosen with ``indices``. Training cells
            that are scored are then left out of the reference they are compared with. In
            mosaic data, ``"mixing"`` compares cells in the modalities all scored cells have.
        indices
            Cells to use; ``None`` for all.
        method
            ``"mixing"`` or ``"distance"``, as above.
        write_to_obs
            Also write the columns to ``adata.obs`` (names prefixed by ``key_prefix``).
        key_prefix
            Prefix of the ``.obs`` columns written.

        Returns
        -------
        A DataFrame indexed by cell with ``novelty_score`` (float), ``is_novel`` (bool) and
        ``predicted_label`` (the classifier's label, meaningful where ``is_novel`` is false);
        ``attrs["method"]`` and ``attrs["threshold"]`` record how it was made.
        """
        if method not in NOVELTY_METHODS:
            raise ValueError(f"method must be one of {NOVELTY_METHODS}, got {method!r}.")
        self._check_annotation_ready()
        adata = self._validate_query(adata)
        obs_names = adata.obs_names if indices is None else adata.obs_names[np.asarray(indices)]
        z = self.get_latent_representation(adata, indices=indices)
        predicted = self._class_probabilities(z).argmax(axis=1)
        if method == "distance":
            scores = mean_reference_distance(
                self.novelty_reference_["embedding"], z, self.novelty_k
            )
            threshold = self.novelty_thresholds_["distance"]
        else:
            scores, threshold = self._mixing_scores(adata, indices)
        result = pd.DataFrame(
            {
                "novelty_score": scores,
                "is_novel": scores > threshold,
                "predicted_label": self._label_mapping()[predicted],
            },
            index=obs_names,
        )
        result.attrs.update({"method": method, "threshold": threshold})
        if write_to_obs:
            for column in result:
                adata.obs[f"{key_prefix}{column}"] = result[column].reindex(adata.obs_names)
        return result

    def _mixing_scores(
        self, adata: AnnData | MuData, indices: Sequence[int] | None
    ) -> tuple[np.ndarray, float]:
        """Return the ``"mixing"`` scores of the query cells and this query's threshold.

        Query and reference are compared in the modalities every query cell has; when the
        training data itself is scored, its scored cells are left out of the reference.
        The threshold's pseudo-queries copy the query's types as the nearest training cells
        in this space tell them (the space the score counts neighbours in, so a cell the
        classifier gets wrong still counts where it lies). Where the threshold may not hold,
        a warning says why.
        """
        reference = self.novelty_reference_
        shared = np.flatnonzero(self._observed_modalities(adata, indices).all(axis=0))
        if len(shared) == 0:
            raise ValueError(
                "No modality is measured in every cell scored, and the mixing score compares "
                "cells in the modalities they share. Score each group of cells with the same "
                "modalities separately (indices=...), or use method='distance'."
            )
        kept = reference["observed"][:, shared].all(axis=1)
        manager = self.get_anndata_manager(adata, required=True)
        if manager.adata.uns[_SCVI_UUID_KEY] == reference["data"]:  # the training data
            kept &= ~np.isin(reference["indices"], _as_indices(indices, manager.adata.n_obs))
        if kept.sum() < self.novelty_k:
            raise ValueError(
                f"The mixing score compares the scored cells with {self.novelty_k} "
                f"(novelty_k) or more reference cells that are not scored themselves and have "
                f"their modalities; {int(kept.sum())} remain, because the training data scored "
                "here includes the model's reference cells. Score query data, or a part of the "
                "training data (indices=...), or use method='distance'."
            )
        pool = reference["input"][kept][:, self.novelty_space_.columns(shared)]
        matrices = self._input_matrices(adata, indices)
        query = self.novelty_space_.transform([matrices[i] for i in shared], shared)
        types = reference["types"][kept]
        nearest_types = KNeighborsClassifier(self.novelty_k).fit(pool, types).predict(query)
        query_batches = np.asarray(manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)).ravel()
        threshold, problems = mixing_threshold(
            pool,
            types,
            reference["batches"][kept],
            nearest_types,
            query_batches[_as_indices(indices, manager.adata.n_obs)],
            self.novelty_k,
            self.novelty_false_positive_rate,
        )
        for problem in problems:
            warnings.warn(
                f"Novelty calls may not keep their false-positive rate: {problem}.",
                UserWarning,
                stacklevel=3,
            )
        return query_neighbour_fraction(pool, query, self.novelty_k), threshold

    def novelty_summary(self, novelty: pd.DataFrame) -> dict[str, float | int | bool | str]:
        """Summarise per-cell novelty calls over a data set.

        Parameters
        ----------
        novelty
            The output of :meth:`get_novelty_scores`.

        Returns
        -------
        ``n_cells``, ``n_novel``, ``fraction_novel``, the ``expected_fraction`` of novel calls
        among known cell types (the calibration's false-positive rate), the ``method`` and
        ``threshold``, and ``contains_novel_cells``: whether the fraction called novel is more
        than twice the expected one (evidence for cell types the model has not seen).
        """
        n_novel = int(novelty["is_novel"].sum())
        fraction = n_novel / max(len(novelty), 1)
        return {
            "n_cells": len(novelty),
            "n_novel": n_novel,
            "fraction_novel": fraction,
            "expected_fraction": self.novelty_false_positive_rate,
            "method": novelty.attrs.get("method"),
            "threshold": novelty.attrs.get("threshold"),
            "contains_novel_cells": fraction > 2 * self.novelty_false_positive_rate,
        }

    def get_cell_type_representations(
        self,
        method: RepresentationMethod = "centroid",
        adata: AnnData | MuData | None = None,
    ) -> pd.DataFrame:
        """Return one vector per cell type in the embedding.

        Parameters
        ----------
        method
            ``"centroid"``: the mean embedding of the type's cells; ``"median"``: the
            coordinate-wise median; ``"medoid"``: the embedding of the cell with the smallest
            summed distance to the type's other cells (on at most 2,000 cells per type).
        adata
            Labelled data set up like the training data; ``None`` for the training data.

        Returns
        -------
        A DataFrame of embedding dimensions x cell types.
        """
        self._require_labels("Cell-type representations")
        if method not in ("centroid", "median", "medoid"):
            raise ValueError(f"method must be 'centroid', 'median' or 'medoid', got {method!r}.")
        adata = self._validate_anndata(adata)
        manager = self.get_anndata_manager(adata, required=True)
        codes = np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
        z = self.get_latent_representation(adata)
        mapping = manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY).categorical_mapping
        rng = np.random.default_rng(0)
        vectors = {}
        for code in np.unique(codes[codes != self.unlabeled_code]):
            members = z[codes == code]
            if method == "centroid":
                vectors[mapping[code]] = members.mean(axis=0)
            elif method == "median":
                vectors[mapping[code]] = np.median(members, axis=0)
            else:
                if len(members) > _MAX_MEDOID_CELLS:
                    members = members[rng.choice(len(members), _MAX_MEDOID_CELLS, replace=False)]
                summed = cdist(members, members).sum(axis=1)
                vectors[mapping[code]] = members[summed.argmin()]
        return pd.DataFrame(vectors, index=pd.RangeIndex(z.shape[1], name="dimension"))
