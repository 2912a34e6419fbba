# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # RNA and chromatin accessibility (ATAC) with OmniVI
#
# Paired RNA + ATAC assays (10x Multiome, SNARE-seq and others) measure gene expression
# and open chromatin in the same nucleus. ATAC data are wide and sparse: tens of thousands
# of regions, each seen open in few cells. This notebook:
#
# 1. integrates RNA and ATAC of mouse primary motor cortex with `OmniVI`, correcting for
#    the sample;
# 2. compares the joint latent with the classic alternative, a PCA of the RNA next to a
#    latent semantic indexing (LSI) of the ATAC, concatenated, and with Harmony run on
#    that concatenation;
# 3. reads denoised accessibility: the probability that each region is open in each cell.
#
# The data is `mop_rna_atac` (from the scMoMaT repository): 12 samples (`sample`), cell
# types in `cell_type`. The labels only score the embeddings.

# %%
import logging
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scvi

import omnivi

# The folder of the real data sets; None searches OMNIVI_DATA_DIR, then ../shared/data
# (omnivi.data.find_data_dir), and read_dataset says what to set if neither exists.
DATA_DIR = None
QUICK = os.environ.get("OMNIVI_TUTORIAL_QUICK") == "1"  # a smoke run: few epochs
MAX_EPOCHS = 3 if QUICK else 100
N_CELLS = 2000 if QUICK else None  # a quick run takes a random subset of the cells
scvi.settings.seed = 0

scvi.settings.verbosity = logging.WARNING
for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings(
    "ignore", message=".*(does not have many workers|The number of training batches).*"
)

# %% [markdown]
# ## The data
#
# A MuData with `rna` (gene counts) and `atac` (region counts), every cell in both. We
# copy `sample` and `cell_type` from the RNA modality's `.obs` into the global `.obs` as
# plain categories, as the project's benchmarks do.

# %%
mdata = omnivi.data.read_dataset("mop_rna_atac", DATA_DIR)
if N_CELLS is not None:
    keep = np.random.default_rng(0).choice(mdata.n_obs, N_CELLS, replace=False)
    mdata = mdata[mdata.obs_names[np.sort(keep)]].copy()
for key in ("sample", "cell_type"):
    mdata.obs[key] = mdata["rna"].obs[key].reindex(mdata.obs_names).astype(str).astype("category")
print(mdata)
print(f"{mdata.obs['sample'].nunique()} samples, {mdata.obs['cell_type'].nunique()} cell types")
mdata.obs["cell_type"].value_counts().to_frame("cells").T

# %% [markdown]
# ## The classic embedding
#
# `omnivi.benchmark.concatenated_pca` is the baseline of the project's benchmark: RNA
# normalised, log-transformed, scaled and reduced to 30 principal components; ATAC
# TF-IDF-transformed and reduced by LSI (a truncated SVD), keeping components 2-31 because
# the first follows sequencing depth. Each block is divided by the square root of its
# total variance, so that both modalities weigh the same, and the blocks are put side by
# side. Harmony (`omnivi.benchmark.harmony`, harmonypy at its defaults) then removes the
# sample effect from it. Both are computed before any model setup.

# %%
start = time.perf_counter()
concat_pca = omnivi.benchmark.concatenated_pca(mdata, modalities=["rna", "atac"])
harmony = omnivi.benchmark.harmony(concat_pca, mdata.obs["sample"])
seconds = time.perf_counter() - start
print(f"concat-PCA {concat_pca.shape}, Harmony {harmony.shape}, {seconds:.0f} s")

# %% [markdown]
# ## OmniVI
#
# `setup_mudata` with `rna_layer` and `atac_layer` models both. The ATAC decoder
# reconstructs the binarised counts (open or not) with a Bernoulli likelihood; the
# counts themselves are left as they are. Two defaults matter for data this wide:
#
# - ATAC's reconstruction loss is weighted `n_genes / n_regions` (printed below): the
#   loss is a sum over features, and without the weight the many correlated regions
#   would outweigh the RNA;
# - each training step reconstructs a random quarter of the regions
#   (`atac_region_fraction=0.25`), an unbiased estimate of the full loss that makes steps
#   cheaper. Outputs always use every region.
#
# `MAX_EPOCHS` is 100 here rather than scvi-tools' default for this many cells (400):
# every epoch passes over 25,734 regions of 10,309 cells, and the project's benchmark
# measured about 4,000 training cells per second for this data on two CPU cores
# (`benchmarks/results/`), that is a few seconds per epoch. The cell prints the time on
# your machine; a GPU is used if there is one. Leave out `max_epochs` to train for the
# default 400 epochs, as the project's benchmark does: there OmniVI scored 0.626 and
# Harmony on the concatenated PCA 0.610 (`benchmarks/results/mop_rna_atac.md`; scored
# with the RNA's PCA as the unintegrated reference, so not the same figures as below).

# %%
omnivi.model.OmniVI.setup_mudata(
    mdata, batch_key="sample", modalities={"rna_layer": "rna", "atac_layer": "atac"}
)
model = omnivi.model.OmniVI(mdata)
print(model)
print("reconstruction weights:", model.module.modality_weights)

start = time.perf_counter()
model.train(max_epochs=MAX_EPOCHS, enable_progress_bar=False)
seconds = time.perf_counter() - start
epochs = len(model.history["elbo_train"])
print(f"{epochs} epochs in {seconds:.0f} s ({seconds / epochs:.1f} s per epoch)")

# %%
embeddings = {
    "OmniVI": model.get_latent_representation(),
    "concat-PCA": concat_pca,
    "Harmony (concat-PCA)": harmony,
}

# %% [markdown]
# ## Scores
#
# scib-metrics (`omnivi.benchmark.scib_scores`, the scoring of `omnivi benchmark`): bio
# conservation, batch correction and their 0.6 / 0.4 total, unscaled, with the
# concatenated PCA as the unintegrated reference of the principal-component regression.
# Beside it, the cross-validated 15-nearest-neighbour accuracy of the cell types and the
# normalised entropy of samples among each cell's 30 neighbours.

# %%
obs = mdata.obs[["sample", "cell_type"]].copy()
scib = omnivi.benchmark.scib_scores(
    obs, embeddings, batch_key="sample", label_key="cell_type", unintegrated="concat-PCA"
)
scores = pd.DataFrame(scib).T[["Bio conservation", "Batch correction", "Total"]]
for name, z in embeddings.items():
    scores.loc[name, "kNN cell-type accuracy"] = omnivi.tl.knn_label_accuracy(z, obs["cell_type"])
    scores.loc[name, "sample mixing entropy"] = omnivi.tl.batch_mixing_entropy(z, obs["sample"])
scores.round(3)

# %% [markdown]
# ## Accessibility estimates
#
# `get_accessibility_estimates` returns, for each cell, the probability that each region
# is open, decoded from the joint latent: a denoised version of the sparse binary ATAC
# matrix. By default it returns a dense cells x regions table: 10,309 cells x 25,734
# regions would take about 1 GB of float32, and an atlas far more. Three arguments keep it
# small: `indices` (some cells), `regions` (some regions, by name) and `threshold` (all of
# them, as a sparse table that keeps only probabilities above the threshold, built
# minibatch by minibatch). First all cells, thresholded at 0.1:

# %%
sparse_estimates = model.get_accessibility_estimates(threshold=0.1, return_numpy=True)
print(
    f"{sparse_estimates.shape[0]} cells x {sparse_estimates.shape[1]} regions, "
    f"{sparse_estimates.nnz / np.prod(sparse_estimates.shape):.1%} of the entries >= 0.1, "
    f"{(sparse_estimates.data.nbytes + sparse_estimates.indices.nbytes) / 1e6:.0f} MB "
    f"(dense: {np.prod(sparse_estimates.shape) * 4 / 1e6:.0f} MB)"
)

# %% [markdown]
# For the comparisons below, dense estimates of a subset of cells: up to 30 cells of each
# type (at most 450 cells x 25,734 regions).

# %%
rng = np.random.default_rng(0)
cell_types = mdata.obs["cell_type"].astype(str).to_numpy()
chosen = np.sort(
    np.concatenate(
        [
            rng.choice(np.flatnonzero(cell_types == t), min(30, (cell_types == t).sum()), False)
            for t in np.unique(cell_types)
        ]
    )
)
accessibility = model.get_accessibility_estimates(indices=chosen)
print(
    f"{accessibility.shape[0]} cells x {accessibility.shape[1]} regions, "
    f"{accessibility.memory_usage(deep=False).sum() / 1e6:.0f} MB"
)

atac = mdata["atac"][mdata.obs_names[chosen]]
observed = pd.DataFrame(
    (atac.X > 0).toarray().astype(np.float32), index=accessibility.index, columns=atac.var_names
)

# %% [markdown]
# Over these cells, how often each region was seen open against its mean estimated
# probability: the estimates should follow the observed frequencies, region by region.

# %%
mean_observed, mean_estimated = observed.mean(axis=0), accessibility.mean(axis=0)
print(
    "correlation over regions of observed frequency and mean estimate: "
    f"{np.corrcoef(mean_observed, mean_estimated)[0, 1]:.3f}"
)

# %% [markdown]
# Cell-type specific regions: for a few types, the five regions whose mean estimate in
# that type exceeds most its mean in the other types. Each column of the heat maps is a
# region, each row a cell type; left the observed fraction of the (up to 30) cells of the
# type with the region open, right the mean estimate. With so few cells per type the
# observed fractions are noisy; the estimates pool information over similar cells and
# over correlated regions.

# %%
labels_chosen = pd.Series(cell_types[chosen], index=accessibility.index)
estimated_by_type = accessibility.groupby(labels_chosen).mean()
observed_by_type = observed.groupby(labels_chosen).mean()
examples = [t for t in ("L2/3", "Pvalb", "Astro", "Oligo") if t in estimated_by_type.index]
regions, marks = [], []
for t in examples:
    others = estimated_by_type.drop(index=t).mean(axis=0)
    regions += list((estimated_by_type.loc[t] - others).sort_values().index[-5:])
    marks += [t] * 5

fig, axes = plt.subplots(1, 2, figsize=(13, 6), sharey=True)
panels = (("observed fraction open", observed_by_type), ("mean estimate", estimated_by_type))
vmax = max(table[regions].to_numpy().max() for _, table in panels)  # one colour scale
for ax, (title, table) in zip(axes, panels, strict=True):
    image = ax.imshow(table[regions].to_numpy(), aspect="auto", vmin=0, vmax=vmax)
    ax.set_title(title)
    ax.set_xticks(range(len(regions)))
    labels = [f"{region} ({cell_type})" for region, cell_type in zip(regions, marks, strict=True)]
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(table.index)))
    ax.set_yticklabels(table.index, fontsize=8)
_ = fig.colorbar(image, ax=axes, shrink=0.8)

# %% [markdown]
# ## What to look at
#
# UMAPs of the three embeddings, by cell type (upper row of each) and by sample (lower
# row). The concatenated PCA is not batch-corrected: cells of one type split by sample
# there if the samples differ technically. Harmony and OmniVI should overlap the samples
# within each type while keeping the types apart; compare the rare types (Endo, Peri,
# MGC, OPC) too, which an over-corrected embedding merges into neighbours.

# %%
coordinates = {name: omnivi.tl.umap(z) for name, z in embeddings.items()}
fig = omnivi.pl.embedding_grid(coordinates, obs, color=["cell_type", "sample"], n_columns=3)

# %%
scores.round(3)

# %%
fig = omnivi.pl.loss_curves(model.history)
