"""Registration shared by omnivi's models: AnnData of RNA, or MuData of several modalities."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from omnivi._constants import (
    COUNT_LIKELIHOODS,
    LATENT_OBSM_KEY,
    MODALITIES,
    MODALITY_REGISTRY_KEYS,
)
from omnivi.data._validation import check_counts, check_nonnegative
from omnivi.model._setup import anndata_fields, mudata_fields


class MultimodalSetupMixin:
    """``setup_anndata`` / ``setup_mudata``, views of the registry and ``store_latent``.

    Shared by omnivi's models; they provide ``get_latent_representation``.
    """

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
        unlabeled_category: str | None = None,
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
        unlabeled_category
            Value of ``labels_key`` that marks cells without a label (they take no part in the
            supervised objectives, the classifier or the cell-type representations).
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
                unlabeled_category,
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
        unlabeled_category: str | None = None,
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
        unlabeled_category
            Value of ``labels_key`` that marks cells without a label (they take no part in the
            supervised objectives, the classifier or the cell-type representations).
        modalities
            Which modality of ``mdata`` each argument refers to. A modality is modelled when its
            layer argument is named here: ``{"rna_layer": "rna", "protein_layer": "adt"}``
            models RNA and protein. ``.obs`` arguments (``"batch_key"``, ...) mapped to a
            modality read that modality's ``.obs``; unmapped ones read ``mdata.obs``.
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.

        Examples
        --------
        >>> omnivi.model.OmniVI.setup_mudata(
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
            unlabeled_category=unlabeled_category,
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

    def _modality_keys(self) -> list[str]:
        """Registry keys of this model's modalities."""
        return [MODALITY_REGISTRY_KEYS[m] for m in self.modalities]

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

    def store_latent(
        self,
        adata: AnnData | MuData | None = None,
        key: str = LATENT_OBSM_KEY,
        **kwargs,
    ) -> np.ndarray:
        """Compute the latent (embedding) of each cell and write it to ``adata.obsm[key]``.

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

    # ------------------------------------------------------------------------- labels
    @property
    def has_labels(self) -> bool:
        """Whether a ``labels_key`` was registered."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        return state.original_key != "_scvi_labels"

    @property
    def cell_types(self) -> np.ndarray:
        """The registered cell-type labels, in code order, without the unlabeled category."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        mapping = np.asarray(state.categorical_mapping)
        unlabeled = state.get("unlabeled_category")
        return mapping[mapping != unlabeled] if unlabeled is not None else mapping

    @property
    def unlabeled_code(self) -> int:
        """Label code of unlabeled cells, ``-1`` if there is no unlabeled category."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        unlabeled = state.get("unlabeled_category")
        mapping = list(state.categorical_mapping)
        return mapping.index(unlabeled) if unlabeled in mapping else -1

    def _require_labels(self, what: str) -> None:
        if not self.has_labels:
            raise ValueError(
                f"{what} needs cell-type labels: register them with "
                f"`{type(self).__name__}.setup_anndata(..., labels_key=...)` (or setup_mudata)."
            )
