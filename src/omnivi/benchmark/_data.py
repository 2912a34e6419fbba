"""The data set a benchmark runs on: validated once into a description, rebuilt per method."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
from mudata import MuData
from scipy import sparse

from omnivi._constants import MODALITIES
from omnivi._workflow import guess_modalities
from omnivi.data._datasets import read_data_file
from omnivi.data._mosaic import is_mosaic
from omnivi.data._validation import _stored_values, check_unique_cells, get_matrix


@dataclass(frozen=True)
class BenchmarkData:
    """Where a benchmark's data set is and how to read it; built by :func:`describe_data`.

    Parameters
    ----------
    path
        The ``.h5mu`` or ``.h5ad`` file.
    modalities
        omnivi modality (``"rna"``, ``"protein"``, ``"atac"``) -> its name in the MuData
        (``""`` for the AnnData of an ``.h5ad`` file).
    layers
        omnivi modality -> layer of counts in that modality; absent or ``None`` for ``.X``.
    batch_key, label_key
        The ``.obs`` columns of batches and cell types.
    obs_owner
        ``.obs`` column -> the modality whose ``.obs`` holds it; absent if the global
        ``.obs`` does.
    mosaic
        Whether some cells lack one of the modalities.
    n_cells, n_batches, n_labels
        Sizes of the data set.
    n_features
        omnivi modality -> number of features.
    """

    path: str
    modalities: dict[str, str]
    batch_key: str
    label_key: str
    layers: dict[str, str | None] = field(default_factory=dict)
    obs_owner: dict[str, str] = field(default_factory=dict)
    mosaic: bool = False
    n_cells: int = 0
    n_batches: int = 0
    n_labels: int = 0
    n_features: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """File name without suffix."""
        return Path(self.path).stem

    def to_json(self) -> str:
        """Return the description as JSON (what a worker process is given)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchmarkData:
        """Return the description written by :meth:`to_json`."""
        return cls(**json.loads(text))


def _modality(source: MuData | ad.AnnData, name: str) -> ad.AnnData:
    return source[name] if isinstance(source, MuData) else source


def _find_obs_owner(source: MuData | ad.AnnData, key: str, names: list[str]) -> str | None:
    """Return the modality whose ``.obs`` holds ``key``; ``None`` for the global ``.obs``."""
    if key in source.obs.columns:
        return None
    if isinstance(source, MuData):
        for name in names:
            if key in source[name].obs.columns:
                return name
    raise KeyError(
        f"Column {key!r} is in no .obs of the data; the global .obs has "
        f"{list(source.obs.columns)}. Name an existing column of batches (--batch-key) or "
        "cell types (--label-key)."
    )


def _obs_column(source: MuData | ad.AnnData, key: str, owner: str | None) -> pd.Series:
    """``key`` for every cell of ``source`` (global order), from the ``.obs`` that holds it."""
    if owner is None:
        return source.obs[key]
    return source[owner].obs[key].reindex(source.obs_names)


def _check_counts(matrix, modality: str) -> None:
    values = _stored_values(matrix)
    if (values < 0).any() or not np.array_equal(values, np.round(values)):
        raise ValueError(
            f"The {modality} data holds negative or non-integer values, but the models compared "
            "(SCVI, TOTALVI, MULTIVI, OmniVI) and the baselines' normalisation read raw counts. "
            f"Name the layer of raw counts, e.g. --layers {modality}=counts."
        )


def describe_data(
    path: str | Path,
    modalities: Mapping[str, str] | None,
    batch_key: str,
    label_key: str,
    layers: Mapping[str, str | None] | None = None,
) -> BenchmarkData:
    """Read a data set once, check it, and describe how each method should read it.

    Parameters
    ----------
    path
        An ``.h5mu`` file (one or more modalities) or an ``.h5ad`` file (RNA).
    modalities
        omnivi modality -> modality name in the MuData, e.g. ``{"rna": "gex", "protein":
        "adt"}``; ``None`` guesses from common names (``rna``/``gex``, ``adt``/``prot``,
        ``atac``/``peaks``). Ignored for ``.h5ad`` files, which hold RNA.
    batch_key, label_key
        ``.obs`` columns (global, or of one modality) of batches and cell types.
    layers
        omnivi modality -> layer of raw counts; ``.X`` where absent.

    Returns
    -------
    The description every method is built from.
    """
    path = Path(path)
    source = read_data_file(path)
    if isinstance(source, MuData):
        modalities = dict(modalities or guess_modalities(source))
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown:
            raise ValueError(f"Unknown modality {unknown}; choose among {list(MODALITIES)}.")
        missing = {m: name for m, name in modalities.items() if name not in source.mod}
        if missing:
            raise KeyError(
                f"The MuData has no modality {sorted(missing.values())}; it has "
                f"{list(source.mod)}. Name them with --modalities, e.g. rna=gex,protein=adt."
            )
        check_unique_cells(source, list(modalities.values()))
    else:
        modalities = {"rna": ""}
    if "rna" not in modalities:
        raise ValueError(
            "The benchmark needs RNA: its unintegrated baseline is a PCA of the RNA, and most "
            "peers model it. Name the RNA modality with --modalities rna=NAME."
        )
    layers = {m: layer for m, layer in (layers or {}).items() if layer is not None}
    names = [name for name in modalities.values() if name]
    n_features = {}
    for modality, name in modalities.items():
        matrix = get_matrix(_modality(source, name), layers.get(modality))
        _check_counts(matrix, modality)
        n_features[modality] = int(matrix.shape[1])
    owners, values = {}, {}
    for key in dict.fromkeys((batch_key, label_key)):
        owner = _find_obs_owner(source, key, names)
        if owner is not None:
            owners[key] = owner
        column = _obs_column(source, key, owner)
        missing = int(column.isna().sum())
        if missing:
            raise ValueError(
                f"{missing} cells have no value in {key!r}; every cell needs a batch and a "
                "cell type for scib-metrics. Drop those cells, or give them a value such as "
                "'unknown'."
            )
        values[key] = column
    n_batches = values[batch_key].nunique()
    if n_batches < 2:
        raise ValueError(
            f"{batch_key!r} holds one batch only: there is nothing to integrate. Name the "
            ".obs column that tells the batches apart."
        )
    mosaic = isinstance(source, MuData) and is_mosaic(source, names)
    return BenchmarkData(
        path=str(path.resolve()),
        modalities=modalities,
        batch_key=batch_key,
        label_key=label_key,
        layers=layers,
        obs_owner=owners,
        mosaic=mosaic,
        n_cells=int(source.n_obs),
        n_batches=int(n_batches),
        n_labels=int(values[label_key].nunique()),
        n_features=n_features,
    )


def _obs_frame(source: MuData | ad.AnnData, data: BenchmarkData) -> pd.DataFrame:
    keys = list(dict.fromkeys((data.batch_key, data.label_key)))
    return pd.DataFrame(
        {
            key: _obs_column(source, key, data.obs_owner.get(key)).astype(str).to_numpy()
            for key in keys
        },
        index=source.obs_names.copy(),
    ).astype("category")


def load_obs(data: BenchmarkData) -> pd.DataFrame:
    """Return the batch and label of every cell (as strings), in the file's order of cells."""
    return _obs_frame(read_data_file(data.path), data)


def load_data(data: BenchmarkData) -> MuData:
    """Build the MuData every method reads, from the file that ``data`` describes.

    The modalities are named ``"rna"``, ``"protein"``, ``"atac"``, in that order (MULTIVI
    needs RNA before ATAC), and hold the raw counts in ``.X``: sparse float32, protein dense
    (TOTALVI refuses sparse protein). The batch and label columns are strings, in the global
    ``.obs`` of every cell and in each modality's ``.obs`` of its cells. The file itself is only
    read.
    """
    source = read_data_file(data.path)
    obs = _obs_frame(source, data)
    mods = {}
    for modality in MODALITIES:
        if modality not in data.modalities:
            continue
        part = _modality(source, data.modalities[modality])
        matrix = get_matrix(part, data.layers.get(modality))
        matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        if modality == "protein":
            matrix = matrix.toarray()
        mods[modality] = ad.AnnData(
            matrix, obs=obs.loc[part.obs_names].copy(), var=pd.DataFrame(index=part.var_names)
        )
    with md.set_options(pull_on_update=False):
        mdata = MuData(mods)
    mdata.obs = obs.loc[mdata.obs_names].copy()
    return mdata
