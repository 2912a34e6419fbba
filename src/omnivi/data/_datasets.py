"""Locating and reading the real data sets that tests and benchmarks use."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import anndata as ad
import mudata as md

#: Environment variable that points at the folder of real data sets.
DATA_DIR_ENV = "OMNIVI_DATA_DIR"

#: Readers of the file types omnivi reads, by suffix.
READERS = {".h5mu": md.read_h5mu, ".h5ad": ad.read_h5ad}


def read_data_file(path: str | os.PathLike) -> md.MuData | ad.AnnData:
    """Read an ``.h5mu`` (MuData) or ``.h5ad`` (AnnData) file, with a clear error otherwise.

    Parameters
    ----------
    path
        The file.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If it is of another type, or cannot be read as the type its suffix names.
    """
    path = Path(path)
    reader = READERS.get(path.suffix)
    if reader is None:
        raise ValueError(
            f"{path} is neither an .h5mu (MuData) nor an .h5ad (AnnData) file; write your data "
            "with mdata.write('data.h5mu') or adata.write_h5ad('data.h5ad')."
        )
    if not path.is_file():
        raise FileNotFoundError(f"No file {path}.")
    try:
        with warnings.catch_warnings():  # mudata's notices about its next release
            warnings.simplefilter("ignore", FutureWarning)
            return reader(path)
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"Could not read {path} as {'MuData' if path.suffix == '.h5mu' else 'AnnData'}: "
            f"{error}. Is it a complete file written by mudata / anndata?"
        ) from error


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
    for suffix in READERS:
        file = folder / f"{name}{suffix}"
        if file.exists():
            return read_data_file(file)
    available = sorted(p.stem for p in folder.glob("*.h5*"))
    raise FileNotFoundError(f"No data set {name!r} in {folder}; available: {available}.")
