"""Saved models on disk: reading them with clear errors, writing them without losing one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from scvi.data._constants import _MODEL_NAME_KEY
from scvi.model.base._save_load import _load_saved_files

MODEL_FILE = "model.pt"


def omnivi_version() -> str:
    """Return the installed omnivi version (``"0.0.0"`` in a source tree not installed)."""
    try:
        return version("omnivi")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


@dataclass(frozen=True)
class SavedModel:
    """What a saved model folder holds, read by :func:`read_saved_model`.

    Parameters
    ----------
    attributes
        The model's saved attributes (``registry_``, ``init_params_``, ``omnivi_version_``).
    features
        Feature names it was trained on (per modality for a MuData).
    state
        The module's parameters.
    """

    attributes: dict[str, Any]
    features: Any
    state: dict[str, Any]

    @property
    def model_class(self) -> str | None:
        """Name of the class that saved the model."""
        return self.attributes["registry_"].get(_MODEL_NAME_KEY)

    @property
    def version(self) -> str | None:
        """The omnivi version that saved the model (``None``: before versions were recorded)."""
        return self.attributes.get("omnivi_version_")


def read_saved_model(
    dir_path: str | os.PathLike, model_class: str, prefix: str | None = None
) -> SavedModel:
    """Read the model saved in ``dir_path``, raising a clear error for what cannot be loaded.

    Parameters
    ----------
    dir_path
        Folder written by ``model.save``.
    model_class
        Name of the class that is to load it.
    prefix
        Prefix of the file names, as given to ``model.save``.

    Raises
    ------
    FileNotFoundError
        If the folder or its ``model.pt`` does not exist.
    ValueError
        If the file is damaged or incomplete, or was saved by another class.
    """
    path = Path(dir_path)
    model_file = f"{prefix or ''}{MODEL_FILE}"
    if not (path / model_file).is_file():
        where = "does not exist" if not path.exists() else f"has no {model_file}"
        raise FileNotFoundError(
            f"No saved model at {str(path)!r}: the folder {where}. Pass the folder that "
            "model.save(...) wrote."
        )
    try:
        attributes, features, state, _ = _load_saved_files(
            str(path), load_adata=False, prefix=prefix, map_location="cpu"
        )
    except Exception as error:
        raise ValueError(
            f"The saved model in {str(path)!r} could not be read ({type(error).__name__}): "
            f"its {model_file} is damaged or incomplete, e.g. by a copy or save that was cut "
            "short. Save the model again, or restore the folder from a copy."
        ) from error
    saved = SavedModel(attributes, features, state)
    if saved.model_class is not None and saved.model_class != model_class:
        raise ValueError(
            f"The model in {str(path)!r} was saved by {saved.model_class}, not {model_class}: "
            f"load it with {saved.model_class}.load(...)."
        )
    return saved


def version_mismatch(saved: SavedModel, model_class: str, error: Exception) -> ValueError | None:
    """Explain ``error`` by the omnivi version that saved the model, if it is not this one.

    Parameters
    ----------
    saved
        The saved model.
    model_class
        Name of the class that failed to load it.
    error
        What loading raised (parameters that do not fit, an option the class no longer has).

    Returns
    -------
    ``None`` if the installed version saved the model (the error has another cause).
    """
    current = omnivi_version()
    if saved.version == current:
        return None
    by = f"omnivi {saved.version}" if saved.version else "an omnivi version before 0.1.0"
    return ValueError(
        f"This {model_class} was saved by {by} and does not fit omnivi {current}'s "
        f"{model_class} ({type(error).__name__}: {error}). Load it with the version that "
        "saved it, or train the model again with this one."
    )


def save_atomically(
    dir_path: str | os.PathLike, overwrite: bool, write: Callable[[str], None]
) -> None:
    """Write a model folder so that a good folder is never replaced by a half-written one.

    ``write(folder)`` saves into a new temporary folder beside ``dir_path``, which then takes
    ``dir_path``'s place; the previous folder is removed only after that. A save that fails or
    is interrupted leaves the previous model as it was (and, at worst, a temporary folder).

    Parameters
    ----------
    dir_path
        The model folder.
    overwrite
        Replace an existing folder; otherwise an existing one is an error.
    write
        Writes the model into the folder it is given.
    """
    target = Path(dir_path).resolve()
    if target.exists() and not overwrite:
        raise ValueError(
            f"{str(dir_path)!r} already exists. Pass overwrite=True to replace the model "
            "saved there, or choose another folder."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    try:
        write(str(staging))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    if target.exists():
        previous = staging.with_name(staging.name.replace(".saving-", ".previous-"))
        target.rename(previous)
    try:
        staging.rename(target)
    except BaseException:
        if previous is not None:
            previous.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
