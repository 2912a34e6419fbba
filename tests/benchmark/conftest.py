from __future__ import annotations

import mudata as md
import pytest

from omnivi.data import simulate_cite_seq


def write_cite(path, n_cells: int = 240, seed: int = 0, **kwargs):
    """A small simulated CITE-seq file (modalities ``rna`` and ``adt``, global .obs)."""
    source = simulate_cite_seq(
        n_cells=n_cells, n_genes=80, n_proteins=12, n_batches=2, seed=seed, **kwargs
    )
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": source["rna"], "adt": source["protein"]}, obs=source.obs)
    mdata.write(path)
    return path


@pytest.fixture(scope="module")
def cite_file(tmp_path_factory):
    return write_cite(tmp_path_factory.mktemp("bench") / "cite.h5mu")
