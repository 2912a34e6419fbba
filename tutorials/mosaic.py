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
# # Mosaic data: cells that lack a modality
#
# Studies grow by pieces: one batch profiled by RNA alone, another by a protein panel
# alone, others by CITE-seq. OmniVI takes such a MuData as it is. Every cell gets a joint
# latent from the modalities it has, a modality a cell lacks adds nothing to its loss,
# and the paired cells tie the single-modality batches together. The decoders then
# impute what a cell lacks. This notebook:
#
# 1. shows the layout of a mosaic MuData and trains OmniVI on it;
# 2. checks the integration: scib-metrics against a padded concatenated PCA (and Harmony
#    on it), and label transfer between the RNA-only and the protein-only batch, which
#    share no feature;
# 3. imputes protein for the RNA-only cells and RNA for the protein-only cells, and checks
#    the imputation on paired cells.
#
# The data is `pbmc_cite_mosaic` (human PBMC, from the scmidas quick-start data): batch
# `p1` has RNA only, `p2` protein (ADT) only, `p3` and `p4` both (in the file the batches
# are called `p1_0` ... `p4_0`); cell types in `celltype`.

# %%
import logging
import os
import warnings

import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import scvi
from scipy import sparse
from sklearn.neighbors import KNeighborsClassifier

import omnivi

# The folder of the real data sets; None searches OMNIVI_DATA_DIR, then ../shared/data
# (omnivi.data.find_data_dir), and read_dataset says what to set if neither exists.
DATA_DIR = None
QUICK = os.environ.get("OMNIVI_TUTORIAL_QUICK") == "1"  # a smoke run: few epochs
MAX_EPOCHS = 3 if QUICK else 200  # as in benchmarks/mosaic.py
scvi.settings.seed = 0

scvi.settings.verbosity = logging.WARNING
for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings(
    "ignore", message=".*(does not have many workers|The number of training batches).*"
)

# %% [markdown]
# ## The layout
#
# In a mosaic MuData each modality holds only the cells measured in it; the global
# `.obs` is the union of the cells and holds the batch and cell-type columns. Which
# batch has which modality:

# %%
mdata = omnivi.data.read_dataset("pbmc_cite_mosaic", DATA_DIR)
for key in ("batch", "celltype"):
    mdata.obs[key] = mdata.obs[key].astype(str).astype("category")
has = pd.DataFrame(
    {mod: mdata.obs_names.isin(mdata[mod].obs_names) for mod in ("rna", "adt")},
    index=mdata.obs_names,
)
print(mdata)
has.groupby(mdata.obs["batch"].to_numpy()).sum()

# %%
batch = mdata.obs["batch"].astype(str).to_numpy()
both, rna_present = (has["rna"] & has["adt"]).to_numpy(), has["rna"].to_numpy()
measured_in = np.select([both, rna_present], ["RNA + ADT", "RNA only"], "ADT only")
mdata.obs["measured"] = pd.Categorical(measured_in)
rna_only = np.flatnonzero(measured_in == "RNA only")
adt_only = np.flatnonzero(measured_in == "ADT only")
paired = np.flatnonzero(measured_in == "RNA + ADT")
print(f"RNA only {len(rna_only)}, ADT only {len(adt_only)}, paired {len(paired)} cells")

# %% [markdown]
# ## The baseline: a padded concatenated PCA
#
# The classic embedding of such data puts each modality's PCA side by side, computed on
# the cells that have the modality, and gives the other cells zeros in that block
# (`omnivi.benchmark.concatenated_pca`, the benchmark's "padded concat-PCA"). It expects
# the modalities named `rna` and `protein`, so we hand it a renamed MuData and put its
# rows back into `mdata`'s order. Harmony then corrects it for batch, which here
# largely coincides with what each cell was measured in.

# %%
with md.set_options(pull_on_update=False):
    renamed = md.MuData({"rna": mdata["rna"].copy(), "protein": mdata["adt"].copy()})
rows = renamed.obs_names.get_indexer(mdata.obs_names)
assert (rows >= 0).all()
padded_pca = omnivi.benchmark.concatenated_pca(renamed, modalities=["rna", "protein"])[rows]
harmony = omnivi.benchmark.harmony(padded_pca, batch)

# %% [markdown]
# ## OmniVI on the mosaic MuData
#
# Set up as for paired data. OmniVI sees that some cells lack a modality, pads the
# modalities internally (without changing `mdata`) and keeps a cells x modalities mask
# of what was measured: a cell's missing modality is masked out of the fusion and of its
# loss. Training with `modality_dropout=0.2` (the default) also hides one modality of
# paired cells now and then, so that the fusion learns to work from either one.

# %%
omnivi.model.OmniVI.setup_mudata(
    mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "adt"}
)
model = omnivi.model.OmniVI(mdata)
model.train(max_epochs=MAX_EPOCHS, enable_progress_bar=False)
latent = model.get_latent_representation()
print(f"{np.isfinite(latent).all(axis=1).sum()} of {mdata.n_obs} cells have a latent")

embeddings = {
    "OmniVI": latent,
    "padded concat-PCA": padded_pca,
    "Harmony (padded concat-PCA)": harmony,
}

# %% [markdown]
# ## Integration
#
# The hardest test here: the RNA-only cells (`p1`) and the protein-only cells (`p2`)
# share no feature, so only the paired batches can put them in one space. A
# 15-nearest-neighbour classifier fit on one of these batches' embedding and labels
# predicts the cell types of the other; its accuracy says whether the same types landed
# in the same place.

# %%
celltype = mdata.obs["celltype"].astype(str).to_numpy()


def label_transfer(z: np.ndarray, source: np.ndarray, target: np.ndarray) -> float:
    """Accuracy of a 15-nearest-neighbour classifier from ``source`` cells to ``target``."""
    knn = KNeighborsClassifier(15).fit(z[source], celltype[source])
    return float((knn.predict(z[target]) == celltype[target]).mean())


scores = pd.DataFrame(
    {
        name: {
            "kNN RNA-only -> ADT-only": label_transfer(z, rna_only, adt_only),
            "kNN ADT-only -> RNA-only": label_transfer(z, adt_only, rna_only),
        }
        for name, z in embeddings.items()
    }
).T
scib = omnivi.benchmark.scib_scores(
    mdata.obs,
    embeddings,
    batch_key="batch",
    label_key="celltype",
    unintegrated="padded concat-PCA",
)
scores = scores.join(pd.DataFrame(scib).T[["Bio conservation", "Batch correction", "Total"]])
scores.round(3)

# %% [markdown]
# ## Imputation
#
# `get_normalized_expression` decodes any modality for any cell from its joint latent;
# for a cell that lacks the modality this is its imputation. Protein for the RNA-only
# cells, RNA for the protein-only cells (scaled to 10,000 counts per cell):

# %%
imputed_protein = model.get_normalized_expression(modality="protein", indices=rna_only)
imputed_rna = model.get_normalized_expression(modality="rna", indices=adt_only)
print(f"imputed protein {imputed_protein.shape}, imputed RNA {imputed_rna.shape}")

# %% [markdown]
# A check against measurements: for the paired cells, predict each modality from the
# other alone (`from_modalities`) and correlate the prediction with what was measured,
# per feature across cells (log1p of both). This is an optimistic check, because the
# model has seen these cells' both modalities in training; `benchmarks/mosaic.py` hides
# the protein of cells from training for a strict one.


# %%
def per_feature_pearson(predicted: pd.DataFrame, measured: np.ndarray) -> pd.Series:
    """Pearson correlation per column of log1p predicted and measured values."""
    a, b = np.log1p(predicted.to_numpy()), np.log1p(measured)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    return pd.Series(r, index=predicted.columns)


def measured_values(mod: str, cells: np.ndarray) -> np.ndarray:
    """Return the counts of ``cells`` (rows of mdata) in modality ``mod``, dense."""
    return sparse.csr_matrix(mdata[mod][mdata.obs_names[cells]].X).toarray()


protein_from_rna = model.get_normalized_expression(
    modality="protein", indices=paired, from_modalities=["rna"]
)
rna_counts = measured_values("rna", paired)
rna_from_protein = model.get_normalized_expression(
    modality="rna", indices=paired, from_modalities=["protein"]
)
rna_measured = rna_counts / np.maximum(rna_counts.sum(axis=1, keepdims=True), 1) * 1e4
checks = {
    "protein from RNA": per_feature_pearson(protein_from_rna, measured_values("adt", paired)),
    "RNA from protein": per_feature_pearson(rna_from_protein, rna_measured),
}
pd.DataFrame(
    {
        name: {
            "features": r.notna().sum(),
            "median r": r.median(),
            "share with r > 0.5": (r > 0.5).mean(),
        }
        for name, r in checks.items()
    }
).T.round(3)

# %% [markdown]
# Imputed protein of the RNA-only cells, by cell type, next to the protein measured in
# the paired cells: the same markers should come out high in the same types (T cell
# markers in the T cells, CD14 in monocytes, CD19 in B cells).

# %%
candidates = ("cd3.1", "cd4.1", "cd8", "cd14", "cd16", "cd19", "cd56.1")
markers = [p for p in candidates if p in imputed_protein.columns]
adt_paired = pd.DataFrame(
    measured_values("adt", paired), index=mdata.obs_names[paired], columns=mdata["adt"].var_names
)
imputed_by_type = np.log1p(imputed_protein[markers]).groupby(celltype[rna_only]).mean()
measured_by_type = np.log1p(adt_paired[markers]).groupby(celltype[paired]).mean()
types = sorted(set(imputed_by_type.index) & set(measured_by_type.index))
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (title, table) in zip(
    axes,
    (
        ("imputed, RNA-only cells (p1)", imputed_by_type.loc[types]),
        ("measured, paired cells (p3, p4)", measured_by_type.loc[types]),
    ),
    strict=True,
):
    scaled = table / table.max(axis=0)  # each marker relative to its highest type
    image = ax.imshow(scaled.to_numpy(), aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_title(title)
    ax.set_xticks(range(len(markers)))
    ax.set_xticklabels(markers, rotation=90)
    ax.set_yticks(range(len(types)))
    ax.set_yticklabels(types)
_ = fig.colorbar(image, ax=axes, shrink=0.8, label="mean log1p, relative to the top type")

# %% [markdown]
# ## What to look at
#
# UMAPs of the three embeddings by cell type and by what each cell was measured in. In
# the padded PCA a single-modality cell has zeros in the other modality's block, which
# tends to set these cells apart from the paired ones. In an integrated embedding the
# RNA-only, protein-only and paired cells of one type overlap.

# %%
coordinates = {name: omnivi.tl.umap(z) for name, z in embeddings.items()}
fig = omnivi.pl.embedding_grid(coordinates, mdata.obs, color=["celltype", "measured"], n_columns=3)

# %%
scores.round(3)

# %%
fig = omnivi.pl.loss_curves(model.history)
