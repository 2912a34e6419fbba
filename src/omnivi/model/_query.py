"""Reference mapping: prepare query data for a reference model and map it with scArches."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from anndata import AnnData
from mudata import MuData
from scvi.data._constants import _SETUP_ARGS_KEY, _SETUP_METHOD_NAME
from scvi.model.base import ArchesMixin

from omnivi._constants import LAYER_ARGS
from omnivi.data._query import align_features, empty_modality

if TYPE_CHECKING:
    from scvi.model.base import BaseModelClass


class QueryPreparationMixin:
    """Lay query data out like a reference model's data, for mapping or annotation.

    A prepared query is a new object in memory: the user's query is never modified (a query
    backed by its file is read a block of rows at a time into it). For a model set up
    with ``setup_mudata`` the prepared query is a MuData with the reference's modalities;
    a modality the query lacks is added without cells, so the query is mosaic data
    (its cells get a latent from what they have, and the missing modality imputed).
    """

    @classmethod
    def _reference_registry(cls, reference_model: str | os.PathLike | BaseModelClass) -> dict:
        if isinstance(reference_model, str | os.PathLike):
            return cls.load_registry(str(reference_model))
        return reference_model.registry_

    @classmethod
    def prepare_query_mudata(
        cls,
        mdata: MuData,
        reference_model: str | os.PathLike | BaseModelClass,
    ) -> MuData:
        """Return a copy of a query MuData laid out like the reference model's data.

        Each of the reference's modalities gets the reference's features in its order
        (features the query lacks are zero, extra ones dropped); a modality the query lacks
        is added with no cells, and modalities the reference does not model are left out
        (with a warning). ``mdata.obs`` is kept as the global ``.obs``.

        Parameters
        ----------
        mdata
            The query, with the modality names the reference was set up with.
        reference_model
            The reference model, or the folder it was saved to.

        Returns
        -------
        A new MuData for :meth:`load_query_data`.
        """
        registry = cls._reference_registry(reference_model)
        if registry[_SETUP_METHOD_NAME] != "setup_mudata":
            raise ValueError(
                "The reference was set up with setup_anndata (RNA alone); prepare an AnnData "
                "query with prepare_query_anndata."
            )
        setup_args = registry[_SETUP_ARGS_KEY]
        features = ArchesMixin.prepare_query_mudata(
            mdata, reference_model, return_reference_var_names=True
        )
        modelled = {
            setup_args["modalities"][arg]: setup_args[arg]
            for arg in LAYER_ARGS.values()
            if setup_args["modalities"].get(arg) is not None
        }
        unmodelled = [mod for mod in mdata.mod if mod not in modelled]
        if unmodelled:
            warnings.warn(
                f"The reference models {list(modelled)}; the query's {unmodelled} are left out.",
                UserWarning,
                stacklevel=2,
            )
        if not any(mod in mdata.mod for mod in modelled):
            raise ValueError(
                f"The query has none of the reference's modalities {list(modelled)} (it has "
                f"{list(mdata.mod)}). Name its modalities as the reference's."
            )
        modalities = {
            mod: (
                align_features(mdata[mod], features[mod], layer, f"query modality {mod!r}")
                if mod in mdata.mod
                else empty_modality(features[mod], layer)
            )
            for mod, layer in modelled.items()
        }
        query = MuData(modalities)
        query.obs = _global_obs(mdata, setup_args).reindex(query.obs_names)
        return query

    @classmethod
    def prepare_query_anndata(
        cls,
        adata: AnnData,
        reference_model: str | os.PathLike | BaseModelClass,
    ) -> AnnData | MuData:
        """Return a copy of an RNA query laid out like the reference model's data.

        For a reference set up with ``setup_anndata``: an AnnData with the reference's genes
        in its order (genes the query lacks are zero). For a multimodal reference (e.g. RNA
        and protein): a MuData whose RNA modality is the aligned query and whose other
        modalities have no cells, so that :meth:`load_query_data` maps the cells from their
        RNA and the other modalities can be imputed.

        Parameters
        ----------
        adata
            The query's RNA, cells x genes.
        reference_model
            The reference model, or the folder it was saved to.

        Returns
        -------
        A new AnnData or MuData for :meth:`load_query_data`.
        """
        registry = cls._reference_registry(reference_model)
        setup_args = registry[_SETUP_ARGS_KEY]
        if registry[_SETUP_METHOD_NAME] == "setup_anndata":
            genes = ArchesMixin.prepare_query_anndata(
                adata, reference_model, return_reference_var_names=True
            )
            return align_features(adata, genes, setup_args["layer"])
        rna = setup_args["modalities"].get("rna_layer")
        if rna is None:
            raise ValueError(
                "The reference models no RNA, so an AnnData of RNA cannot be mapped onto it; "
                "pass a MuData with the reference's modalities to prepare_query_mudata."
            )
        query = MuData({rna: adata})
        query.obs = adata.obs.copy()
        return cls.prepare_query_mudata(query, reference_model)


def _global_obs(mdata: MuData, setup_args: dict):
    """``mdata.obs`` with the ``.obs`` columns the reference read from modalities added."""
    obs = mdata.obs.copy()
    for arg, mod in setup_args["modalities"].items():
        if arg in LAYER_ARGS.values() or mod not in mdata.mod:
            continue
        keys = setup_args.get(arg)
        for key in [keys] if isinstance(keys, str) else keys or []:
            if key not in obs and key in mdata[mod].obs:
                obs[key] = mdata[mod].obs[key].reindex(obs.index)
    return obs
