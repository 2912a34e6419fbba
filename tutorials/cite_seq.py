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
# # RNA and surface protein (CITE-seq) with OmniVI
#
# CITE-seq measures RNA and a panel of surface proteins (antibody-derived tags, ADT) in
# the same cells. This notebook integrates both into one latent space per cell, corrected
# for batch, and asks what the protein adds:
#
# 1. set up a MuData of RNA and ADT counts and train `OmniVI` on it, watching training in
#    TensorBoard;
# 2. compare the joint latent with an `OmniVI` model of the RNA alone and with a PCA of the
#    RNA, by scib-metrics and by eye (UMAPs);
# 3. read denoised protein values (antibody background removed);
# 4. save the model and load it back.
#
# The data is `bmmc_cite_small`: human bone marrow from the NeurIPS 2021 multimodal
# challenge, two batches (donor/site samples `s1d1` and `s1d2`) with cell-type labels.
# The labels are used only to score the embeddings; no model here reads them.

# %%
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scvi
from lightning.pytorch.loggers import TensorBoardLogger
from scvi.train._logger import SimpleLogger  # scvi-tools' default logger (fills model.history)

import omnivi

# The folder of the real data sets; None searches OMNIVI_DATA_DIR, then ../shared/data
# (omnivi.data.find_data_dir), and read_dataset says what to set if neither exists.
DATA_DIR = None
QUICK = os.environ.get("OMNIVI_TUTORIAL_QUICK") == "1"  # a smoke run: few epochs
MAX_EPOCHS = 3 if QUICK else 400  # 400: scvi-tools' default for a data set this small
scvi.settings.seed = 0

# Keep the output readable: no Lightning banners or per-fit notices.
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
# `read_dataset` returns a MuData with one AnnData per modality, raw counts in `.X`:
# `rna` (genes) and `adt` (proteins). In the files from the NeurIPS repository the
# per-cell columns live in each modality's `.obs`; depending on the mudata version the
# global `.obs` holds them as `cell_type` or prefixed as `rna:cell_type`. We copy batch
# and cell type from the RNA modality into the global `.obs`, so that the rest of the
# notebook does not depend on that.

# %%
mdata = omnivi.data.read_dataset("bmmc_cite_small", DATA_DIR)
for key in ("batch", "cell_type"):
    mdata.obs[key] = mdata["rna"].obs[key].reindex(mdata.obs_names).astype(str).astype("category")
print(mdata)
print(mdata.obs["batch"].value_counts().to_dict())
print(f"{mdata.obs['cell_type'].nunique()} cell types")

# %% [markdown]
# For the RNA-only model and the PCA we take the RNA as an AnnData of its own, in the
# same cell order as the MuData, with the two columns beside it. It is copied before any
# setup, so that the two models' registrations do not touch each other.

# %%
rna = mdata["rna"][mdata.obs_names].copy()
rna.obs = mdata.obs[["batch", "cell_type"]].copy()

# %% [markdown]
# ## Set up and train
#
# `setup_mudata` names which modality is which (`rna_layer`, `protein_layer`; `None`
# layers mean `.X`) and which `.obs` column holds the batch. Nothing in `mdata` is
# changed except scvi-tools' registration entries.
#
# OmniVI encodes each modality with its own branch, fuses them into one latent, and
# decodes RNA with a negative binomial and protein with a background/foreground mixture.
# Batch enters the decoders, so the latent need not carry it.

# %%
omnivi.model.OmniVI.setup_mudata(
    mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "adt"}
)
model = omnivi.model.OmniVI(mdata)
model

# %% [markdown]
# ### Watching training in TensorBoard
#
# `train` passes extra keyword arguments to scvi-tools' `Trainer`, which is a Lightning
# trainer: its `logger` argument takes any Lightning logger. We give it two: scvi-tools'
# own logger, which fills `model.history` (used for the loss curves at the end), and a
# `TensorBoardLogger` writing into a temporary folder. Passing a TensorBoard logger
# alone would leave `model.history` empty.
#
# While the cell runs (or afterwards), start TensorBoard in a terminal with the command
# the cell prints and open the address it shows: the *Scalars* tab has the same
# quantities as `model.history` (ELBO, reconstruction loss of each modality, KL), for
# the training and the validation cells.

# %%
log_dir = Path(tempfile.mkdtemp(prefix="omnivi-tensorboard-"))
print(f"tensorboard --logdir {log_dir}")
loggers = [SimpleLogger(), TensorBoardLogger(save_dir=str(log_dir), name="cite_seq")]
start = time.perf_counter()
model.train(max_epochs=MAX_EPOCHS, logger=loggers, enable_progress_bar=False)
print(f"{MAX_EPOCHS} epochs in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# ## What the protein adds
#
# Two embeddings of the same cells from the RNA alone, to compare the joint latent with:
#
# - `OmniVI` set up with `setup_anndata` on the RNA counts, trained the same way;
# - the classic PCA of the RNA (normalised to 10,000 counts per cell, log1p, scaled,
#   30 components), computed by the same helper the project's benchmark uses. PCA does
#   not correct for batch.

# %%
omnivi.model.OmniVI.setup_anndata(rna, batch_key="batch")
rna_model = omnivi.model.OmniVI(rna)
rna_model.train(max_epochs=MAX_EPOCHS, enable_progress_bar=False)

embeddings = {
    "OmniVI (RNA + protein)": model.get_latent_representation(),
    "OmniVI (RNA only)": rna_model.get_latent_representation(),
    "PCA (RNA)": omnivi.benchmark.rna_pca(rna),
}
{name: z.shape for name, z in embeddings.items()}

# %% [markdown]
# Two quick measures first: the cross-validated accuracy of a 15-nearest-neighbour
# classifier of the cell types in each embedding (higher: neighbours share their
# type), and the normalised entropy of batches among each cell's 30 neighbours (1:
# batches fully mixed, 0: every neighbourhood from one batch).

# %%
labels = mdata.obs["cell_type"].to_numpy()
batches = mdata.obs["batch"].to_numpy()
quick_scores = pd.DataFrame(
    {
        name: {
            "kNN cell-type accuracy": omnivi.tl.knn_label_accuracy(z, labels),
            "batch mixing entropy": omnivi.tl.batch_mixing_entropy(z, batches),
        }
        for name, z in embeddings.items()
    }
).T.round(3)
quick_scores

# %% [markdown]
# The scib-metrics benchmark scores bio conservation (cell types kept apart: silhouette,
# clustering agreement, isolated labels, cLISI) and batch correction (iLISI, kBET,
# graph connectivity, silhouette of batches, and principal component regression against
# the unintegrated embedding, here the RNA PCA). The total weighs them 0.6 / 0.4. The
# values are not min-max scaled, so they can be compared with the project's benchmark
# tables. `omnivi.benchmark.scib_scores` is the scoring function of `omnivi benchmark`.

# %%
scib = omnivi.benchmark.scib_scores(
    mdata.obs, embeddings, batch_key="batch", label_key="cell_type", unintegrated="PCA (RNA)"
)
scib_table = pd.DataFrame(scib).T[["Bio conservation", "Batch correction", "Total"]]
scib_table.round(3)

# %% [markdown]
# ## Denoised protein
#
# ADT counts carry a background: antibodies bound unspecifically or floating free in the
# droplet, so a cell shows some counts of markers it does not express.
# `get_normalized_expression(modality="protein")` returns, for each cell and protein, the
# foreground rate of the protein likelihood times the probability that the counts are
# foreground (as totalVI does without background): the protein signal with the background
# removed, decoded from the joint latent.
#
# Below, two markers that T cells express one or the other of, CD4 and CD8, in the
# measured counts (CLR-transformed, as usual for ADT) and in the denoised values. In the
# measured values the background spreads cells over the plane; in the denoised values
# look for groups of cells that are high in one marker and near zero in the other.

# %%
denoised = model.get_normalized_expression(modality="protein")
adt = mdata["adt"][mdata.obs_names].copy()
omnivi.pp.clr(adt)  # writes adt.layers["clr"]; the counts stay in .X
measured = pd.DataFrame(adt.layers["clr"], index=adt.obs_names, columns=adt.var_names)

pair = [p for p in ("CD4", "CD8") if p in denoised.columns]
if len(pair) < 2:  # another panel: the two proteins of highest variance
    pair = list(measured.var().sort_values().index[-2:])
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].scatter(measured[pair[0]], measured[pair[1]], s=4, alpha=0.5)
axes[0].set(title="measured (CLR)", xlabel=pair[0], ylabel=pair[1])
axes[1].scatter(np.log1p(denoised[pair[0]]), np.log1p(denoised[pair[1]]), s=4, alpha=0.5)
axes[1].set(title="denoised (log1p)", xlabel=pair[0], ylabel=pair[1])
fig.tight_layout()

# %% [markdown]
# The denoised values should still follow the measurement across cells. The correlation
# of each protein's denoised and measured values over the cells:

# %%
correlation = pd.Series(
    {p: np.corrcoef(np.log1p(denoised[p]), measured[p])[0, 1] for p in denoised.columns}
)
print(
    f"Pearson correlation, denoised vs measured, over {len(correlation)} proteins: "
    f"median {correlation.median():.2f}, lowest {correlation.min():.2f} "
    f"({correlation.idxmin()})"
)

# %% [markdown]
# ## Save and load
#
# `save` writes the weights and the setup (not the data, with `save_anndata=False`);
# `load` needs data with the same features, which it sets up as the training data was.
# The loaded model gives the same latent.

# %%
model_dir = Path(tempfile.mkdtemp(prefix="omnivi-model-")) / "cite_seq"
model.save(str(model_dir), save_anndata=False, overwrite=True)
loaded = omnivi.model.OmniVI.load(str(model_dir), adata=mdata)
difference = np.abs(
    loaded.get_latent_representation() - embeddings["OmniVI (RNA + protein)"]
).max()
print(f"saved to {model_dir}; largest difference of the loaded model's latent: {difference:.1e}")

# %% [markdown]
# ## What to look at
#
# UMAPs of the three embeddings, coloured by cell type (top row of each) and by batch
# (bottom row). In a good integration the two batches overlap within each cell type,
# and cell types form separate groups. The PCA is not batch-corrected, so a shift
# between batches there is the batch effect the models remove.

# %%
coordinates = {name: omnivi.tl.umap(z) for name, z in embeddings.items()}
fig = omnivi.pl.embedding_grid(coordinates, mdata.obs, color=["cell_type", "batch"], n_columns=3)

# %% [markdown]
# The scib-metrics of the three embeddings (higher is better in every column), and the
# loss curves of the joint model: training and validation losses should level off; a
# validation loss that rises again while the training loss keeps falling would mean
# overfitting (then train for fewer epochs, or with `early_stopping=True`).

# %%
scib_table.round(3)

# %%
fig = omnivi.pl.loss_curves(model.history)
