"""Registration shared by omnivi's models: AnnData of RNA, or MuData of several modalities."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.data._constants import (
    _FIELD_REGISTRIES_KEY,
    _MANAGER_UUID_KEY,
    _MODEL_NAME_KEY,
    _SCVI_UUID_KEY,
    _SETUP_ARGS_KEY,
    _SETUP_METHOD_NAME,
    _STATE_REGISTRY_KEY,
)
from scvi.data._utils import _assign_adata_uuid
from scvi.model._utils import parse_device_args
from scvi.model.base import BaseModelClass
from scvi.model.base._save_load import _initialize_model

from omnivi._constants import (
    COUNT_LIKELIHOODS,
    LATENT_OBSM_KEY,
    LAYER_ARGS,
    MODALITIES,
    MODALITY_MASK_KEY,
    MODALITY_REGISTRY_KEYS,
)
from omnivi.data import RequestedOrderLoader
from omnivi.data._loading import with_cell_axis
from omnivi.data._mosaic import is_mosaic, modality_presence, pad_mosaic
from omnivi.data._query import check_same_features
from omnivi.data._validation import (
    check_counts,
    check_global_obs_keys,
    check_modalities,
    check_modalities_share_cells,
    check_mosaic_in_memory,
    check_nonnegative,
    check_registrable,
    matrix_rows,
)
from omnivi.model._saved import (
    SavedModel,
    omnivi_version,
    read_saved_model,
    save_atomically,
    version_mismatch,
)
from omnivi.model._setup import anndata_fields, mudata_fields

#: Padded copies of mosaic MuData, by scvi-tools uuid -> the user's object they stand for.
_PADDED_FROM: dict[str, weakref.ref] = {}


def _forget_padded(store: dict, uuid: str) -> None:
    """Drop the padded MuData registered under ``uuid`` from a model class's ``store``."""
    store.pop(uuid, None)
    _PADDED_FROM.pop(uuid, None)


class MultimodalSetupMixin:
    """``setup_anndata`` / ``setup_mudata``, views of the registry and ``store_latent``.

    Shared by omnivi's models; they provide ``get_latent_representation``.
    """

    def __init__(self, adata: AnnData | MuData | None = None, registry: dict | None = None):
        if adata is None and registry is None:
            raise ValueError(
                f"{type(self).__name__} needs data: pass an AnnData or MuData registered with "
                f"{type(self).__name__}.setup_anndata / setup_mudata, or registry="
                "datamodule.registry for a data module that streams cells from disk."
            )
        if registry is not None:
            # A data module names the model it expects (scvi-tools' default: SCVI); a copy of
            # its registry records this class, as setup_anndata does, for save and load.
            registry = {**registry, _MODEL_NAME_KEY: type(self).__name__}
        # Mosaic MuData was registered as a padded MuData, which the model reads, and
        # outputs for ``adata=None`` (e.g. ``store_latent()``) go to the user's object.
        super().__init__(self._registered_object(adata), registry)
        if adata is not None:
            self._adata = adata
        # Saved with the model (scvi-tools saves attributes ending in "_"); a loaded model
        # gets the version that saved it.
        self.omnivi_version_ = omnivi_version()

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
                from_reference="source_registry" in kwargs,
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
            Cells x features per modality. A cell may lack some of the modalities (mosaic
            data): the model then pads them internally, without changing ``mdata``, leaves
            them out of that cell's loss and gives the cell a joint latent from what it has.
            Its ``.obs`` columns are then read from ``mdata.obs``.
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
        layers = {"rna": rna_layer, "protein": protein_layer, "atac": atac_layer}
        check_registrable(mdata, "mdata")
        check_modalities(mdata, modalities)
        modelled = {
            modalities[LAYER_ARGS[m]]: layers[m]
            for m in MODALITIES
            if modalities.get(LAYER_ARGS[m])
        }
        obs_keys = {
            "batch_key": batch_key,
            "labels_key": labels_key,
            "categorical_covariate_keys": categorical_covariate_keys,
            "continuous_covariate_keys": continuous_covariate_keys,
        }
        mosaic = is_mosaic(mdata, list(modelled))
        from_reference = "source_registry" in kwargs  # a query: it may lack a modality
        registered = mdata
        if mosaic:
            check_mosaic_in_memory(mdata)
            if not from_reference:
                check_modalities_share_cells(modality_presence(mdata, list(modelled)))
            check_global_obs_keys(mdata, modalities, obs_keys)
            registered = pad_mosaic(mdata, modelled)
        field_list = mudata_fields(
            registered,
            layers=layers,
            obs_keys=obs_keys,
            modalities=modalities,
            unlabeled_category=unlabeled_category,
            mosaic=mosaic,
            from_reference=from_reference,
        )
        adata_manager = AnnDataManager(fields=field_list, setup_method_args=setup_method_args)
        adata_manager.register_fields(registered, **kwargs)
        if mosaic:  # the user's object points to the padded MuData that was registered
            for key in (_SCVI_UUID_KEY, _MANAGER_UUID_KEY):
                mdata.uns[key] = registered.uns[key]
            uuid = registered.uns[_SCVI_UUID_KEY]
            _PADDED_FROM[uuid] = weakref.ref(mdata)
            # Nothing but the class-level store would hold the padded MuData once the user's
            # object is gone (a model keeps its own reference): drop it with the object.
            weakref.finalize(mdata, _forget_padded, cls._setup_adata_manager_store, uuid)
        cls.register_manager(adata_manager)

    @classmethod
    def _registered_object(cls, adata: AnnData | MuData | None) -> AnnData | MuData | None:
        """Return the object registered for ``adata``: its padded MuData if it is mosaic data.

        Any other object (including a copy of mosaic data) is returned as it is.
        """
        if adata is None or _SCVI_UUID_KEY not in adata.uns:
            return adata
        uuid = adata.uns[_SCVI_UUID_KEY]
        source = _PADDED_FROM.get(uuid)
        manager = cls._setup_adata_manager_store.get(uuid)
        if source is None or source() is not adata or manager is None:
            return adata
        return manager.adata

    def _register_query(self, mdata: MuData, extend_categories: bool) -> None:
        """Register a query MuData with this model's setup (padding it if it is mosaic).

        ``extend_categories`` accepts batches and labels the model has not seen.
        """
        registry = self.adata_manager.registry
        type(self).setup_mudata(
            mdata,
            source_registry=registry,
            extend_categories=extend_categories,
            **registry[_SETUP_ARGS_KEY],
        )
        self._register_manager_for_instance(
            type(self)._setup_adata_manager_store[mdata.uns[_SCVI_UUID_KEY]]
        )

    def _validate_anndata(
        self, adata: AnnData | MuData | None = None, copy_if_view: bool = True
    ) -> AnnData | MuData:
        """Validate ``adata`` against the setup; a new MuData is registered by ``setup_mudata``.

        So a mosaic query is padded like the training data, which scvi-tools' transfer of the
        setup would refuse.
        """
        if adata is None and self.adata is None:
            raise ValueError(
                f"This {type(self).__name__} was built from a data module's registry and holds "
                "no data: pass the cells as `dataloader=datamodule.inference_dataloader()`, or "
                f"as `adata` registered with {type(self).__name__}.setup_anndata / setup_mudata "
                "like the training data."
            )
        if (
            adata is not None
            and self.adata_manager is not None
            and self.get_anndata_manager(adata) is None
        ):
            self._check_laid_out_like(adata, self)
            if isinstance(adata, MuData):
                self._register_query(adata, extend_categories=False)
        return super()._validate_anndata(adata, copy_if_view=copy_if_view)

    def _modality_names(self) -> list[str]:
        """Names in the registered MuData of this model's modalities (empty for AnnData)."""
        registry = self.adata_manager.data_registry
        names = [getattr(registry[key], "mod_key", None) for key in self._modality_keys()]
        return [name for name in names if name is not None]

    def get_anndata_manager(
        self, adata: AnnData | MuData, required: bool = False
    ) -> AnnDataManager | None:
        """Return the manager of ``adata`` (of its padded MuData for mosaic data).

        A copy or subset of registered data (``query[:100].copy()``) counts as unregistered
        and gets an identifier of its own: scvi-tools would transfer the training data's
        setup to it, which refuses the new batches a copy of a query carries.
        """
        adata = self._registered_object(adata)
        if self._is_copy_of_registered(adata):
            _assign_adata_uuid(adata, overwrite=True)
        return super().get_anndata_manager(adata, required=required)

    def _is_copy_of_registered(self, adata: AnnData | MuData | None) -> bool:
        """Whether ``adata`` carries the identifier of other data registered with this model."""
        if adata is None or _SCVI_UUID_KEY not in adata.uns:
            return False
        store = type(self)._per_instance_manager_store.get(self.id, {})
        manager = store.get(adata.uns[_SCVI_UUID_KEY])
        return manager is not None and manager.adata is not adata

    def save(self, dir_path: str | os.PathLike, overwrite: bool = False, **kwargs) -> None:
        """Save the model to the folder ``dir_path``.

        The model is written to a new folder beside ``dir_path``, which then replaces it: a
        save that fails or is interrupted never leaves a half-written model in place of the
        one saved there before. See :meth:`scvi.model.base.BaseModelClass.save` for the
        options (``save_anndata``, ``prefix``, ...).

        Parameters
        ----------
        dir_path
            Folder to save to.
        overwrite
            Replace a model already saved in ``dir_path``.
        **kwargs
            Options of :meth:`scvi.model.base.BaseModelClass.save`; a model built from a data
            module's registry needs ``datamodule=`` (the module it was trained with).
        """
        if self.from_datamodule and kwargs.get("datamodule") is None:
            raise ValueError(
                "This model was built from a data module's registry: save it with "
                "model.save(dir_path, datamodule=datamodule), as scvi-tools needs."
            )
        save_atomically(
            dir_path,
            overwrite,
            lambda folder: super(MultimodalSetupMixin, self).save(
                folder, overwrite=True, **kwargs
            ),
        )

    @classmethod
    def load(cls, dir_path: str | os.PathLike, adata: AnnData | MuData | None = None, **kwargs):
        """Load a saved model; ``adata`` must have the features it was trained on.

        See :meth:`scvi.model.base.BaseModelClass.load` for the options. A folder without a
        model, a damaged file, a model of another class or one saved by an omnivi version
        whose model differs are refused with an error that says so. Data with other
        features is refused with a pointer to ``prepare_query_mudata`` /
        ``prepare_query_anndata``, which lay it out like the training data.
        """
        saved = read_saved_model(dir_path, cls.__name__, kwargs.get("prefix"))
        registry = saved.attributes["registry_"]
        if adata is not None:
            cls._check_features(adata, registry, saved.features)
        try:
            if registry.get(_SETUP_METHOD_NAME) == "setup_datamodule" and adata is None:
                return cls._load_from_registry(saved, **kwargs)
            return super().load(str(dir_path), adata=adata, **kwargs)
        except (RuntimeError, TypeError, KeyError) as error:
            explained = version_mismatch(saved, cls.__name__, error)
            if explained is None:
                raise
            raise explained from error

    @classmethod
    def _load_from_registry(
        cls, saved: SavedModel, accelerator: str = "auto", device: int | str = "auto", **kwargs
    ) -> BaseModelClass:
        """Rebuild a model trained from a data module from its saved registry.

        scvi-tools' :meth:`~scvi.model.base.BaseModelClass.load` rebuilds such a model's module
        with SCVI's arguments; this builds it as the model's constructor does.
        """
        _, _, torch_device = parse_device_args(accelerator, device, return_device="torch")
        attributes = dict(saved.attributes)
        registry = attributes.pop("registry_")
        model = _initialize_model(cls, None, registry, attributes, None)
        state = {k: v for k, v in saved.state.items() if k != "pyro_param_store"}
        model.module.load_state_dict(state)
        model.to_device(torch_device)
        model.module.eval()
        return model

    @classmethod
    def _check_laid_out_like(
        cls, adata: AnnData | MuData, reference: str | os.PathLike | BaseModelClass
    ) -> None:
        """Raise, naming ``prepare_query_*``, unless ``adata`` has the reference's features."""
        if isinstance(reference, BaseModelClass):
            registry, features = reference.registry_, reference.get_var_names()
        else:
            saved = read_saved_model(reference, cls.__name__)
            registry, features = saved.attributes["registry_"], saved.features
        cls._check_features(adata, registry, features)

    @classmethod
    def _check_features(cls, adata: AnnData | MuData, registry: dict, features) -> None:
        """Raise, naming ``prepare_query_*``, unless ``adata`` has the model's ``features``.

        ``registry`` is the model's scvi-tools registry, ``features`` its feature names (per
        modality for a MuData).
        """
        if isinstance(features, dict):  # a MuData: the modalities the model reads
            setup = registry[_SETUP_ARGS_KEY]["modalities"]
            modelled = {setup.get(LAYER_ARGS[m]) for m in MODALITIES}
            features = {mod: names for mod, names in features.items() if mod in modelled}
        if isinstance(features, dict) and not isinstance(adata, MuData):
            raise ValueError(
                f"The model was trained on a MuData of {list(features)}; pass the object that "
                f"{cls.__name__}.prepare_query_anndata(adata, model) returns, a MuData laid out "
                "like the training data."
            )
        check_same_features(adata, features, cls.__name__)

    # ------------------------------------------------------------------- registry views
    @property
    def modalities(self) -> list[str]:
        """Modalities this model was set up with, among ``"rna"``, ``"protein"``, ``"atac"``."""
        fields = self.registry_[_FIELD_REGISTRIES_KEY]
        return [m for m in MODALITIES if MODALITY_REGISTRY_KEYS[m] in fields]

    @property
    def from_datamodule(self) -> bool:
        """Whether the model was built from a data module's registry instead of data.

        Such a model trains with ``train(datamodule=...)`` and computes its outputs from a
        ``dataloader`` (e.g. ``datamodule.inference_dataloader()``).
        """
        return self.registry_.get(_SETUP_METHOD_NAME) == "setup_datamodule"

    def _modality_keys(self) -> list[str]:
        """Registry keys of this model's modalities."""
        return [MODALITY_REGISTRY_KEYS[m] for m in self.modalities]

    def _manager_of(self, adata: AnnData | MuData | None) -> AnnDataManager:
        """Return the manager of registered ``adata``; this model's for ``None``."""
        if adata is None:
            return self.adata_manager
        return self.get_anndata_manager(adata, required=True)

    def _observed_modalities(
        self, adata: AnnData | MuData | None = None, indices: Sequence[int] | None = None
    ) -> np.ndarray:
        """Return cells x modalities, true where a cell has the modality (all unless mosaic)."""
        manager = self._manager_of(adata)
        n_cells = manager.adata.n_obs if indices is None else len(indices)
        if MODALITY_MASK_KEY not in manager.data_registry:
            return np.ones((n_cells, len(self.modalities)), dtype=bool)
        observed = np.asarray(manager.get_from_registry(MODALITY_MASK_KEY)) > 0
        return observed if indices is None else observed[np.asarray(indices)]

    def _make_data_loader(
        self,
        adata: AnnData | MuData,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
        shuffle: bool = False,
        **kwargs,
    ):
        """scvi-tools' loader; from a file, its minibatches keep the order of ``indices``.

        scvi-tools reads the cells of a minibatch from a backed object in increasing order;
        cells asked for in another order are put back in it
        (:class:`~omnivi.data.RequestedOrderLoader`, with dense minibatches).
        """
        manager = self.get_anndata_manager(adata)
        backed = manager is not None and manager.adata.isbacked
        if indices is None or shuffle or not backed or _ascending(indices):
            return super()._make_data_loader(adata, indices, batch_size, shuffle, **kwargs)
        batch_size = batch_size or settings.batch_size
        kwargs["load_sparse_tensor"] = False
        loader = super()._make_data_loader(adata, indices, batch_size, shuffle, **kwargs)
        return RequestedOrderLoader(loader, indices, batch_size)

    def _input_matrices(
        self, adata: AnnData | MuData | None = None, indices: Sequence[int] | None = None
    ) -> list:
        """Return each modality's registered data as CSR (rows ``indices``; ``None`` for all).

        Data on disk is read a block of rows at a time (:func:`matrix_rows`).
        """
        manager = self._manager_of(adata)
        return [matrix_rows(manager.get_from_registry(k), indices) for k in self._modality_keys()]

    def _n_cats_per_cov(self) -> list[int] | None:
        """Return the number of categories of each categorical covariate; ``None`` without any."""
        field = self.registry_[_FIELD_REGISTRIES_KEY].get(REGISTRY_KEYS.CAT_COVS_KEY, {})
        n_cats = field.get(_STATE_REGISTRY_KEY, {}).get("n_cats_per_key")
        return list(n_cats) if n_cats else None

    def _n_features(self, modality: str) -> int:
        return len(self._feature_names(modality))

    def _feature_names(self, modality: str) -> pd.Index:
        """Return the names of ``modality``'s features, as registered (later data has them too)."""
        field = self.registry_[_FIELD_REGISTRIES_KEY][MODALITY_REGISTRY_KEYS[modality]]
        return pd.Index(field[_STATE_REGISTRY_KEY]["column_names"])

    def _external_loader(
        self,
        dataloader: Iterable[dict[str, torch.Tensor]],
        adata: AnnData | MuData | None,
        indices: Sequence[int] | None,
    ) -> Iterable[dict[str, torch.Tensor]]:
        """Return ``dataloader`` to compute outputs from, refusing data passed beside it."""
        if adata is not None or indices is not None:
            raise ValueError(
                "Pass the cells either as `dataloader` or as `adata` / `indices`, not both."
            )
        return map(with_cell_axis, dataloader)

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
        """Whether a ``labels_key`` was registered (labels a data module carries are not used)."""
        if self.from_datamodule:
            return False
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
        if self.from_datamodule:
            raise ValueError(
                f"{what} needs cell-type labels, which omnivi reads only from data registered "
                f"with `{type(self).__name__}.setup_anndata` / `setup_mudata`, not from a data "
                "module. Train from a data module without labels."
            )
        if not self.has_labels:
            raise ValueError(
                f"{what} needs cell-type labels: register them with "
                f"`{type(self).__name__}.setup_anndata(..., labels_key=...)` (or setup_mudata)."
            )


def _ascending(indices: Sequence[int] | np.ndarray) -> bool:
    """Whether ``indices`` (positions, or a boolean mask) list cells in increasing order."""
    indices = np.asarray(indices)
    return indices.dtype == bool or bool(np.all(np.diff(indices) >= 0))
