"""A small simulator of CITE-seq-like data, so examples run without a download."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

RARE_TYPE = "rare"


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, theta: float) -> np.ndarray:
    """Sample negative-binomial counts as a gamma-Poisson mixture."""
    return rng.poisson(rng.gamma(theta, mean / theta)).astype(np.float32)


def simulate_cite_seq(
    n_cells: int = 3000,
    n_genes: int = 400,
    n_proteins: int = 30,
    n_batches: int = 3,
    n_cell_types: int = 6,
    rare_fraction: float = 0.02,
    seed: int = 0,
) -> md.MuData:
    """Simulate CITE-seq counts with batch effects and one rare cell population.

    Each cell type raises its own set of marker genes and proteins. The rare population
    (``cell_type == "rare"``) differs from its parent type only in a handful of genes, so it
    carries little of the total variance: the case where variance-based PCA tends to miss
    it. Batches shift gene means and sequencing depth, and change protein background.

    Parameters
    ----------
    n_cells
        Number of cells.
    n_genes
        Number of genes in modality ``"rna"``.
    n_proteins
        Number of proteins in modality ``"protein"``.
    n_batches
        Number of batches (``obs["batch"]``).
    n_cell_types
        Number of common cell types; the rare population comes on top.
    rare_fraction
        Fraction of cells in the rare population.
    seed
        Random seed.

    Returns
    -------
    MuData with modalities ``"rna"`` and ``"protein"`` holding sparse integer counts in
    ``.X``, and ``obs["batch"]`` and ``obs["cell_type"]`` in the global ``.obs``.
    """
    rng = np.random.default_rng(seed)
    types = [f"type_{i}" for i in range(n_cell_types)]
    n_rare = max(round(rare_fraction * n_cells), 1)
    common = rng.choice(
        n_cell_types, size=n_cells - n_rare, p=rng.dirichlet(np.full(n_cell_types, 5.0))
    )
    type_index = np.concatenate([common, np.full(n_rare, n_cell_types)])
    batch = rng.integers(n_batches, size=n_cells)

    # Genes: a baseline, per-type markers, and a rare subtype of type 0 with a few markers.
    gene_base = rng.normal(0.0, 1.0, n_genes)
    gene_effect = np.zeros((n_cell_types + 1, n_genes))
    for t in range(n_cell_types):
        markers = rng.choice(n_genes, size=max(n_genes // 10, 1), replace=False)
        gene_effect[t, markers] = rng.normal(1.5, 0.4, markers.size)
    rare_markers = rng.choice(n_genes, size=min(8, n_genes), replace=False)
    gene_effect[n_cell_types] = gene_effect[0]
    gene_effect[n_cell_types, rare_markers] += 3.0
    batch_gene_shift = rng.normal(0.0, 0.4, (n_batches, n_genes))
    log_mean = gene_base + gene_effect[type_index] + batch_gene_shift[batch]
    proportions = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
    proportions /= proportions.sum(axis=1, keepdims=True)
    depth = np.exp(rng.normal(np.log(1500.0), 0.3, n_cells) + rng.normal(0, 0.3, n_batches)[batch])
    rna = _negative_binomial(rng, proportions * depth[:, None], theta=8.0)

    # Proteins: foreground from cell-type markers on top of a batch-specific background.
    prot_base = rng.normal(1.5, 0.8, n_proteins)
    prot_effect = np.zeros((n_cell_types + 1, n_proteins))
    for t in range(n_cell_types):
        markers = rng.choice(n_proteins, size=max(n_proteins // 6, 1), replace=False)
        prot_effect[t, markers] = rng.normal(2.5, 0.5, markers.size)
    prot_effect[n_cell_types] = prot_effect[0]
    background = np.exp(rng.normal(2.0, 0.3, (n_batches, n_proteins)))
    foreground = np.exp(prot_base + prot_effect[type_index])
    protein = _negative_binomial(rng, background[batch] + foreground, theta=20.0)

    cell_names = pd.Index([f"cell_{i}" for i in range(n_cells)])
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"batch_{b}" for b in batch]),
            "cell_type": pd.Categorical(np.array([*types, RARE_TYPE])[type_index]),
        },
        index=cell_names,
    )
    rna_adata = ad.AnnData(
        sp.csr_matrix(rna),
        obs=pd.DataFrame(index=cell_names),
        var=pd.DataFrame(index=[f"gene_{i:04d}" for i in range(n_genes)]),
    )
    protein_adata = ad.AnnData(
        sp.csr_matrix(protein),
        obs=pd.DataFrame(index=cell_names),
        var=pd.DataFrame(index=[f"protein_{i:02d}" for i in range(n_proteins)]),
    )
    with md.set_options(pull_on_update=False):  # nothing to pull; avoids mudata's warning
        mdata = md.MuData({"rna": rna_adata, "protein": protein_adata})
    mdata.obs = mdata.obs.join(obs)
    return mdata
