"""Building the scvi-tools fields that register data for OmniVI."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import fields

from omnivi._constants import LAYER_ARGS, MODALITY_MASK_KEY, MODALITY_REGISTRY_KEYS
from omnivi.data._mosaic import MODALITY_MASK_OBSM_KEY
from omnivi.data._validation import (
    check_cell_order,
    check_finite,
    check_obs_columns,
    check_obs_values,
    check_registrable,
    check_unique_obs_names,
    get_matrix,
)

_OBS_ARGS = ("batch_key", "labels_key", "categorical_covariate_keys", "continuous_covariate_keys")


#: The unlabeled category of labels registered without one: no cell carries it at setup; a
#: query's cells whose label the reference does not know are coded as it.
DEFAULT_UNLABELED = "_omnivi_unlabeled"


class ReferenceLabelsField(fields.LabelsWithUnlabeledObsField):
    """Cell-type labels with an unlabeled category; data set up from a reference keeps its set.

    At setup, as scvi-tools' :class:`~scvi.data.fields.LabelsWithUnlabeledObsField`. Data set
    up from a registry (a query, a copy, a saved model's data) never adds a label: a cell
    whose label the reference does not know (``"unknown"``, a new type) is coded as the
    unlabeled category, so the classifier and the supervised objectives never grow an output.
    Only the registry's code column (``_scvi_labels``) is written; the label column itself is
    left as it is.
    """

    def transfer_field(self, state_registry: dict, adata_target: AnnData, **kwargs) -> dict:
        """Code the target's labels with the reference's mapping; unknown ones as unlabeled."""
        self.validate_field(adata_target)
        mapping = np.asarray(state_registry[self.CATEGORICAL_MAPPING_KEY])
        unlabeled = state_registry[self.UNLABELED_CATEGORY]
        labels = pd.Series(np.asarray(self._get_original_column(adata_target)).ravel()).astype(str)
        codes = pd.Index(mapping.astype(str)).get_indexer(labels)
        codes[codes < 0] = int(np.flatnonzero(mapping == unlabeled)[0])
        getattr(adata_target, self.attr_name)[self.attr_key] = codes
        return {
            self.CATEGORICAL_MAPPING_KEY: mapping,
            self.ORIGINAL_ATTR_KEY: self._original_attr_key,
            self.UNLABELED_CATEGORY: unlabeled,
        }


MuDataReferenceLabelsField = fields.MuDataWrapper(ReferenceLabelsField)


def labels_field(
    labels_key: str | None,
    unlabeled_category: str | None,
    mod_key: str | bool | None = False,
):
    """Return the field registering labels (:class:`ReferenceLabelsField`), if any are named.

    ``mod_key=False`` builds an AnnData field; otherwise a MuData field reading that
    modality's ``.obs`` (``None``: the global ``.obs``). Without ``labels_key``, every cell
    gets the one default label, as in scvi-tools.
    """
    if unlabeled_category is not None and labels_key is None:
        raise ValueError(
            f"unlabeled_category={unlabeled_category!r} was given without a labels_key; name "
            "the .obs column of cell-type labels with labels_key=..."
        )
    on_mudata = mod_key is not False
    if labels_key is None:
        if on_mudata:
            return fields.MuDataCategoricalObsField(
                REGISTRY_KEYS.LABELS_KEY, None, mod_key=mod_key
            )
        return fields.CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, None)
    unlabeled = DEFAULT_UNLABELED if unlabeled_category is None else unlabeled_category
    if on_mudata:
        return MuDataReferenceLabelsField(
            REGISTRY_KEYS.LABELS_KEY, labels_key, unlabeled, mod_key=mod_key
        )
    return ReferenceLabelsField(REGISTRY_KEYS.LABELS_KEY, labels_key, unlabeled)


def anndata_fields(
    adata: AnnData,
    layer: str | None,
    batch_key: str | None,
    labels_key: str | None,
    categorical_covariate_keys: list[str] | None,
    continuous_covariate_keys: list[str] | None,
    unlabeled_category: str | None = None,
    from_reference: bool = False,
) -> list:
    """Validate an RNA-only AnnData and return the fields that register it.

    ``from_reference``: the setup is a reference's, transferred to a query, whose cells
    without a label are coded as unlabeled.
    """
    check_registrable(adata, "adata")
    check_unique_obs_names(adata, "adata")
    categorical = [batch_key, labels_key, *(categorical_covariate_keys or [])]
    continuous = continuous_covariate_keys or []
    check_obs_columns(adata, [*categorical, *continuous], "adata")
    must_have_values = [key for key in categorical if not (from_reference and key == labels_key)]
    check_obs_values(adata, must_have_values, continuous, "adata")
    check_finite(get_matrix(adata, layer), f"adata layer {layer or '.X'!r}")
    return [
        fields.LayerField(MODALITY_REGISTRY_KEYS["rna"], layer, is_count_data=False),
        fields.CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
        labels_field(labels_key, unlabeled_category),
        fields.CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, categorical_covariate_keys),
        fields.NumericalJointObsField(REGISTRY_KEYS.CONT_COVS_KEY, continuous_covariate_keys),
    ]


def mudata_fields(
    mdata: MuData,
    layers: Mapping[str, str | None],
    obs_keys: Mapping[str, str | list[str] | None],
    modalities: Mapping[str, str],
    unlabeled_category: str | None = None,
    mosaic: bool = False,
    from_reference: bool = False,
) -> list:
    """Validate a MuData and return the fields that register it.

    The modality names in ``modalities`` must exist in ``mdata``
    (:func:`~omnivi.data._validation.check_modalities`, run by ``setup_mudata`` before it
    looks for mosaic data).

    Parameters
    ----------
    mdata
        The user's MuData.
    layers
        Layer per omnivi modality (``"rna"``, ``"protein"``, ``"atac"``); ``None`` for ``.X``.
    obs_keys
        The ``setup_mudata`` arguments that name ``.obs`` columns, by argument name.
    modalities
        Mapping from ``setup_mudata`` argument to modality name in ``mdata``.
    unlabeled_category
        Label value of unlabeled cells, if any.
    mosaic
        ``mdata`` is the padded MuData of mosaic data (:func:`~omnivi.data._mosaic.pad_mosaic`):
        its cells x modalities mask is registered too.
    from_reference
        The setup is a reference's, transferred to a query: cells without a label are coded
        as unlabeled.
    """
    valid = set(LAYER_ARGS.values()) | set(_OBS_ARGS)
    unknown = set(modalities) - valid
    if unknown:
        raise ValueError(
            f"Unknown key(s) {sorted(unknown)} in `modalities`; valid keys are {sorted(valid)}, "
            "e.g. modalities={'rna_layer': 'rna', 'protein_layer': 'adt'}."
        )
    present = [m for m, arg in LAYER_ARGS.items() if modalities.get(arg) is not None]
    if not present:
        raise ValueError(
            "No modality given. Name at least one in `modalities`, e.g. "
            "modalities={'rna_layer': 'rna', 'protein_layer': 'adt', 'atac_layer': 'atac'}."
        )
    if not mosaic:
        check_cell_order(mdata, [modalities[LAYER_ARGS[m]] for m in present])
    for arg in _OBS_ARGS:
        keys = obs_keys.get(arg)
        keys = [keys] if isinstance(keys, str) or keys is None else keys
        mod = modalities.get(arg)
        holder, where = (mdata[mod], f"mdata[{mod!r}]") if mod else (mdata, "mdata")
        check_obs_columns(holder, keys, where)
        if arg == "continuous_covariate_keys":
            check_obs_values(holder, [], keys, where)
        elif not (from_reference and arg == "labels_key"):
            check_obs_values(holder, keys, [], where)

    layer_fields = []
    for m in present:
        mod, layer = modalities[LAYER_ARGS[m]], layers[m]
        if mdata[mod].n_vars == 0:
            raise ValueError(f"Modality {mod!r} has no features: there is nothing to model.")
        check_finite(get_matrix(mdata[mod], layer), f"modality {mod!r} layer {layer or '.X'!r}")
        layer_fields.append(
            fields.MuDataLayerField(
                MODALITY_REGISTRY_KEYS[m],
                layer,
                mod_key=mod,
                is_count_data=False,
                mod_required=True,
            )
        )
    return [
        *layer_fields,
        fields.MuDataCategoricalObsField(
            REGISTRY_KEYS.BATCH_KEY, obs_keys["batch_key"], mod_key=modalities.get("batch_key")
        ),
        labels_field(
            obs_keys["labels_key"], unlabeled_category, mod_key=modalities.get("labels_key")
        ),
        fields.MuDataCategoricalJointObsField(
            REGISTRY_KEYS.CAT_COVS_KEY,
            obs_keys["categorical_covariate_keys"],
            mod_key=modalities.get("categorical_covariate_keys"),
        ),
        fields.MuDataNumericalJointObsField(
            REGISTRY_KEYS.CONT_COVS_KEY,
            obs_keys["continuous_covariate_keys"],
            mod_key=modalities.get("continuous_covariate_keys"),
        ),
        *([fields.MuDataObsmField(MODALITY_MASK_KEY, MODALITY_MASK_OBSM_KEY)] if mosaic else []),
    ]
