"""Shared fixtures of the omnivi test suite.

Real data sets are located with :func:`omnivi.data.find_data_dir` ($OMNIVI_DATA_DIR, then
``../shared/data`` seen from the current directory), falling back to the ``shared/data``
folder beside this checkout; tests that need them skip when none is found. Data are only
read, never copied into the repository.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from omnivi.data import find_data_dir, simulate_cite_seq

SKIP_REASON = "real data sets not found: set OMNIVI_DATA_DIR or place them in ../shared/data"

CITE_FILE = "bmmc_cite_small.h5mu"
MULTIOME_FILE = "bmmc_multiome_small.h5mu"
MOP_FILE = "mop_rna_atac.h5mu"


def pytest_configure(config):
    scvi.settings.seed = 0
    # Lightning's banners ("GPU available: False", tips) are noise in test logs.
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Noise from dependencies on every small training run or MuData construction.
    config.addinivalue_line("filterwarnings", "ignore:The number of training batches:UserWarning")
    config.addinivalue_line(
        "filterwarnings", "ignore:Cannot join columns with the same name:UserWarning"
    )


@pytest.fixture(autouse=True)
def _seed():
    """Reset the global seed before every test, so each test is deterministic alone."""
    scvi.settings.seed = 0


# --------------------------------------------------------------------------- real data
def locate_data_dir() -> Path | None:
    """The real-data folder, or ``None``; also tries ``shared/data`` beside the checkout."""
    found = find_data_dir()
    if found is not None:
        return found
    beside_checkout = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return beside_checkout if beside_checkout.is_dir() else None


def _real_file(real_data_dir: Path, name: str) -> Path:
    path = real_data_dir / name
    if not path.exists():
        pytest.skip(f"{name} not found in {real_data_dir}")
    return path


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    folder = locate_data_dir()
    if folder is None:
        pytest.skip(SKIP_REASON)
    return folder


@pytest.fixture(scope="session")
def real_file(real_data_dir):
    """``real_file(name)``: the path of one real data set; skips the test if it is absent."""
    return lambda name: _real_file(real_data_dir, name)


@pytest.fixture
def cite_mdata(real_data_dir) -> md.MuData:
    """bmmc_cite_small: 600 cells, 'rna' (1000 genes) + 'adt' (134 proteins)."""
    return md.read_h5mu(_real_file(real_data_dir, CITE_FILE))


@pytest.fixture
def multiome_mdata(real_data_dir) -> md.MuData:
    """bmmc_multiome_small: 500 cells, 'rna' (600 genes) + 'atac' (600 peaks)."""
    return md.read_h5mu(_real_file(real_data_dir, MULTIOME_FILE))


@pytest.fixture(scope="session")
def mop_rna_session(real_data_dir):
    mdata = md.read_h5mu(_real_file(real_data_dir, MOP_FILE))
    return mdata["rna"].copy()


@pytest.fixture
def mop_rna(mop_rna_session):
    """The RNA modality of mop_rna_atac as an AnnData (10,309 cells x 1677 genes); a copy."""
    return mop_rna_session.copy()


# ---------------------------------------------------------------------- synthetic data
@pytest.fixture(scope="session")
def synthetic_session() -> md.MuData:
    return simulate_cite_seq(n_cells=600, n_genes=200, n_proteins=20, seed=0)


@pytest.fixture
def synthetic_mdata(synthetic_session) -> md.MuData:
    """Simulated CITE-seq: 600 cells, 'rna' (200 genes) + 'protein' (20), obs batch/cell_type.

    A fresh copy per test, so tests can register, modify or break it freely.
    """
    return synthetic_session.copy()


@pytest.fixture
def synthetic_rna(synthetic_session):
    """RNA of the simulated CITE-seq as an AnnData, with batch and cell_type in its .obs."""
    adata = synthetic_session["rna"].copy()
    adata.obs = adata.obs.join(synthetic_session.obs[["batch", "cell_type"]])
    return adata


# -------------------------------------------------------------------------- helpers
def snapshot(obj) -> dict:
    """What a failed setup must leave unchanged: .obs, .uns keys and every matrix."""

    def dense(matrix):
        if matrix is None:
            return None
        return matrix.toarray().copy() if sp.issparse(matrix) else np.array(matrix, copy=True)

    def of_anndata(adata) -> dict:
        return {
            "obs": adata.obs.copy(),
            "obs_columns": list(adata.obs.columns),
            "obsm": sorted(adata.obsm.keys()),
            "uns": sorted(adata.uns.keys()),
            "X": dense(adata.X),
            "layers": {k: dense(v) for k, v in adata.layers.items()},
            "shape": adata.shape,
        }

    state = (
        of_anndata(obj)
        if not isinstance(obj, md.MuData)
        else {
            "obs": obj.obs.copy(),
            "obs_columns": list(obj.obs.columns),
            "obsm": sorted(obj.obsm.keys()),
            "uns": sorted(obj.uns.keys()),
            "shape": obj.shape,
            "mod": {k: of_anndata(v) for k, v in obj.mod.items()},
        }
    )
    return state


def assert_unchanged(before: dict, after: dict) -> None:
    """Compare two :func:`snapshot` results, field by field."""
    assert before.keys() == after.keys()
    for key, value in before.items():
        other = after[key]
        if key == "mod":
            assert value.keys() == other.keys()
            for mod in value:
                assert_unchanged(value[mod], other[mod])
        elif isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, other)
        elif key == "layers":
            assert value.keys() == other.keys()
            for name in value:
                np.testing.assert_array_equal(value[name], other[name])
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, other)
        else:
            assert value == other, f"{key} changed: {value} -> {other}"


def without_registration(state: dict) -> dict:
    """A :func:`snapshot` without scvi-tools' registration entries and ``.obsm["X_omnivi"]``.

    What a model may add to the user's object: ``_scvi_*`` columns of ``.obs`` and keys of
    ``.uns``, and the latent that ``store_latent`` is documented to write.
    """
    state = dict(state)
    if "obs" in state:
        registered = [c for c in state["obs"].columns if c.startswith("_scvi")]
        state["obs"] = state["obs"].drop(columns=registered)
        state["obs_columns"] = [c for c in state["obs_columns"] if not c.startswith("_scvi")]
    state["uns"] = [k for k in state["uns"] if not k.startswith("_scvi")]
    state["obsm"] = [k for k in state["obsm"] if k != "X_omnivi"]
    if "mod" in state:
        state["mod"] = {name: without_registration(s) for name, s in state["mod"].items()}
    return state


@pytest.fixture
def unchanged():
    """``unchanged(before, obj)`` asserts that ``obj`` still matches ``before = snapshot(obj)``.

    ``registration_allowed=True`` lets the model's registration entries and documented
    outputs differ (:func:`without_registration`).
    """

    def check(before: dict, obj, registration_allowed: bool = False) -> None:
        after = snapshot(obj)
        if registration_allowed:
            before, after = without_registration(before), without_registration(after)
        assert_unchanged(before, after)

    return check


@pytest.fixture(name="snapshot")
def snapshot_fixture():
    """The :func:`snapshot` helper, for tests (conftest is not importable as a module)."""
    return snapshot


def knn_accuracy(embedding: np.ndarray, labels, k: int = 15, seed: int = 0) -> float:
    """Mean 5-fold cross-validated kNN label accuracy of an embedding."""
    folds = KFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(
        KNeighborsClassifier(n_neighbors=k), embedding, np.asarray(labels), cv=folds
    )
    return float(np.mean(scores))


def random_embedding_accuracy(shape: tuple[int, int], labels, seed: int = 0) -> float:
    """kNN accuracy of a random Gaussian embedding of ``shape``: the chance baseline."""
    return knn_accuracy(np.random.default_rng(seed).normal(size=shape), labels)


@pytest.fixture(name="knn_accuracy")
def knn_accuracy_fixture():
    """The :func:`knn_accuracy` helper."""
    return knn_accuracy


@pytest.fixture(name="random_embedding_accuracy")
def random_embedding_accuracy_fixture():
    """The :func:`random_embedding_accuracy` helper."""
    return random_embedding_accuracy
