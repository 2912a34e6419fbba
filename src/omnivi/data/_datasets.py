"""Locating and reading the real data sets that tests and benchmarks use."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import mudata as md

#: Environment variable that points at the folder of real data sets.
DATA_DIR_ENV = "OMNIVI_DATA_DIR"


def find_data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """Find the folder holding the real data sets, or ``None`` if there is none.

    The folder is, in order of preference: ``path``; the environment variable
    ``OMNIVI_DATA_DIR``; ``../shared/data`` seen from the current directory (the layout of a
    checkout next to the shared data).

    Parameters
    ----------
    path
        Explicit folder; returned if it exists.
    """
    candidates = [path, os.environ.get(DATA_DIR_ENV), Path.cwd().parent / "shared" / "data"]
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_dir():
            return Path(candidate)
    return None


def read_dataset(name: str, data_dir: str | os.PathLike | None = None) -> md.MuData | ad.AnnData:
    """Read a data set by file name (without suffix) from the real-data folder.

    Parameters
    ----------
    name
        File stem, e.g. ``"bmmc_cite_small"`` or ``"pbmc5k_rna"``.
    data_dir
        Folder to read from; see :func:`find_data_dir` for the default.

    Returns
    -------
    A MuData for ``.h5mu`` files, an AnnData for ``.h5ad`` files.
    """
    folder = find_data_dir(data_dir)
    if folder is None:
        raise FileNotFoundError(
            f"No data folder found. Set {DATA_DIR_ENV} to the folder holding the data sets, or "
            "pass `data_dir`."
        )
    for suffix, reader in ((".h5mu", md.read_h5mu), (".h5ad", ad.read_h5ad)):
        file = folder / f"{name}{suffix}"
        if file.exists():
            return reader(file)
    available = sorted(p.stem for p in folder.glob("*.h5*"))
    raise FileNotFoundError(f"No data set {name!r} in {folder}; available: {available}.")
