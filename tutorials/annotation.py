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
# # Annotating new samples, and flagging cell types the reference never saw
#
# With trusted cell-type labels on some samples, omnivi annotates the cells of other
# samples. `OmniVI(..., contrastive_weight=100)` adds to the autoencoder's loss
# contrastive terms that pull cell types apart and mix samples within each type; after
# training, a classifier is fit on the learned latent. This notebook:
#
# 1. trains on 9 of the 12 samples of the mouse motor cortex RNA (`mop_rna_atac`) and
#    annotates the other 3, with probabilities (`predict(soft=True)`);
# 2. compares that with scvi-tools' SCANVI, set up as in the project's annotation
#    benchmark (`benchmarks/annotation.py`);
# 3. reads one vector per cell type (`get_cell_type_representations`);
# 4. leaves one cell type out of training and scores every held-out cell for novelty
#    (`get_novelty_scores`): do the cells of the missing type stand out?
#
# The split is the benchmark's: training samples 09A-09I, held-out samples 09J, 09K,
# 09L. The left-out type is the astrocytes (`Astro`).

# %%
import logging
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scvi
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

import omnivi

# The folder of the real data sets; None searches OMNIVI_DATA_DIR, then ../shared/data
# (omnivi.data.find_data_dir), and read_dataset says what to set if neither exists.
DATA_DIR = None
QUICK = os.environ.get("OMNIVI_TUTORIAL_QUICK") == "1"  # a smoke run: few epochs
MAX_EPOCHS = 3 if QUICK else 100  # OmniVI and SCVI, as in benchmarks/annotation.py
SCANVI_EPOCHS = 2 if QUICK else MAX_EPOCHS // 5  # SCANVI after SCVI: 20, as there
N_CELLS = 2000 if QUICK else None  # a quick run takes a random subset of the cells
TEST_SAMPLES = ["09J", "09K", "09L"]
LEFT_OUT = "Astro"
scvi.settings.seed = 0

scvi.settings.verbosity = logging.WARNING
for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings(
    "ignore", message=".*(does not have many workers|The number of training batches).*"
)

# %% [markdown]
# ## The data and the split
#
# The RNA modality of `mop_rna_atac` as an AnnData, with `sample` and `cell_type` as
# plain categories. Every object a model is set up with is a fresh copy, made before any
# setup: the reference, the held-out query, the reference without astrocytes, and the
# data SCANVI sees.

# %%
rna = omnivi.data.read_dataset("mop_rna_atac", DATA_DIR)["rna"].copy()
if N_CELLS is not None:
    rna = rna[np.sort(np.random.default_rng(0).choice(rna.n_obs, N_CELLS, replace=False))].copy()
rna.obs = rna.obs[["sample", "cell_type"]].astype(str).astype("category")
is_test = rna.obs["sample"].isin(TEST_SAMPLES).to_numpy()

reference = rna[~is_test].copy()
query = rna[is_test].copy()
without_left_out = rna[~is_test & (rna.obs["cell_type"] != LEFT_OUT).to_numpy()].copy()
kept_types = without_left_out.obs["cell_type"].cat.remove_unused_categories()
without_left_out.obs["cell_type"] = kept_types
novelty_query = rna[is_test].copy()

truth = query.obs["cell_type"].astype(str).to_numpy()
pd.DataFrame(
    {
        "training cells": reference.obs["cell_type"].value_counts(),
        "held-out cells": query.obs["cell_type"].value_counts(),
    }
)

# %% [markdown]
# ## Train with labels
#
# `setup_anndata` registers the batch (`sample`) and the labels. With
# `contrastive_weight=100` the contrastive terms enter the loss (the reconstruction loss
# is a sum over 1,677 genes, so the weight is large). `train` ends by fitting the
# classifier on the latent of the labelled training cells.

# %%
omnivi.model.OmniVI.setup_anndata(reference, batch_key="sample", labels_key="cell_type")
model = omnivi.model.OmniVI(reference, contrastive_weight=100)
model.train(max_epochs=MAX_EPOCHS, enable_progress_bar=False)

# %% [markdown]
# ## Annotate the held-out samples
#
# `predict(query)` gives labels, `predict(query, soft=True)` a cells x types table of
# probabilities. The query needs the training data's genes and `.obs` columns; its own
# labels are not read (here they are the truth we score against).

# %%
predicted = model.predict(query)
probabilities = model.predict(query, soft=True)
probabilities.round(2).head()


# %%
def classification_scores(truth, predicted) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1 over the true types."""
    truth, predicted = np.asarray(truth, dtype=str), np.asarray(predicted, dtype=str)
    return {
        "accuracy": accuracy_score(truth, predicted),
        "balanced accuracy": balanced_accuracy_score(truth, predicted),
        "macro F1": f1_score(truth, predicted, average="macro", labels=np.unique(truth)),
    }


classification_scores(truth, predicted)

# %% [markdown]
# The top probability is a confidence. How accurate are the cells at each level of it?
# If the probabilities mean something, accuracy rises with confidence, and cells below
# some level can be sent for a closer look.

# %%
confidence = probabilities.to_numpy().max(axis=1)
bins = pd.cut(confidence, [0, 0.5, 0.8, 0.95, 1.0], include_lowest=True)
pd.DataFrame({"correct": predicted == truth, "confidence": bins}).groupby(
    "confidence", observed=False
)["correct"].agg(cells="size", accuracy="mean").round(3)

# %% [markdown]
# ## SCANVI, as the benchmark sets it up
#
# scvi-tools' semi-supervised model: SCVI is trained on all 12 samples with the held-out
# samples' labels hidden (`"Unknown"`), then SCANVI starts from it and predicts those
# cells. Note the difference: SCANVI sees the held-out cells (without labels) during
# training, OmniVI does not.

# %%
scanvi_data = rna.copy()
hidden = scanvi_data.obs["cell_type"].astype(str).to_numpy().copy()
hidden[is_test] = "Unknown"
scanvi_data.obs["scanvi_labels"] = pd.Categorical(hidden)
scvi.model.SCVI.setup_anndata(scanvi_data, batch_key="sample", labels_key="scanvi_labels")
vae = scvi.model.SCVI(scanvi_data)
vae.train(max_epochs=MAX_EPOCHS, batch_size=256, enable_progress_bar=False)
scanvi = scvi.model.SCANVI.from_scvi_model(vae, unlabeled_category="Unknown")
scanvi.train(max_epochs=SCANVI_EPOCHS, batch_size=256, enable_progress_bar=False)
scanvi_predicted = np.asarray(scanvi.predict(scanvi_data))[is_test]

annotation = pd.DataFrame(
    {
        "OmniVI (contrastive)": classification_scores(truth, predicted),
        "SCANVI": classification_scores(truth, scanvi_predicted),
    }
).T
annotation.round(3)

# %% [markdown]
# Per type, the F1 of each method with the number of held-out cells of the type: the
# macro F1 above weighs every type equally, so small types move it as much as large ones.

# %%
types, counts = np.unique(truth, return_counts=True)
per_type = pd.DataFrame(
    {
        "held-out cells": counts,
        "OmniVI (contrastive)": f1_score(truth, predicted.astype(str), average=None, labels=types),
        "SCANVI": f1_score(truth, scanvi_predicted.astype(str), average=None, labels=types),
    },
    index=types,
)
per_type.round(2)

# %% [markdown]
# ## One vector per cell type
#
# `get_cell_type_representations` summarises each type in the latent: `"centroid"`
# (the mean), `"median"` or `"medoid"` (an actual cell). The cosine similarity of the
# centroids shows which types the model places close together: look whether related
# neuronal types (the excitatory layers L2/3, L4/5, L6; the inhibitory Pvalb, Sst, CGE,
# Npy) sit closer to each other than to the glia.

# %%
centroids = model.get_cell_type_representations("centroid")  # dimensions x types
unit = centroids / np.linalg.norm(centroids, axis=0)
similarity = unit.T @ unit
fig, ax = plt.subplots(figsize=(6.5, 5.5))
image = ax.imshow(similarity.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
ax.set_xticks(range(len(similarity)))
ax.set_xticklabels(similarity.columns, rotation=90)
ax.set_yticks(range(len(similarity)))
ax.set_yticklabels(similarity.index)
ax.set_title("cosine similarity of cell-type centroids")
fig.colorbar(image, ax=ax, shrink=0.8)
fig.tight_layout()

# %% [markdown]
# ## A cell type the reference never saw
#
# A classifier can only answer with the types it knows. To see what happens to cells of
# an unknown type, we train the same model on the training samples without their
# astrocytes, and score the held-out samples, which still contain astrocytes.
#
# `get_novelty_scores` returns per cell a `novelty_score`, a boolean `is_novel` and the
# classifier's `predicted_label`. The default score (`"mixing"`) pools the query with the
# labelled training cells in a PCA of the input and takes, for each query cell, the
# fraction of query cells among its 30 nearest neighbours: cells of known types mix with
# training cells of their type, cells of an unseen type are surrounded by query cells.
# The threshold behind `is_novel` is set for this query, so that about 5% of known-type
# cells would be called novel.

# %%
omnivi.model.OmniVI.setup_anndata(without_left_out, batch_key="sample", labels_key="cell_type")
novelty_model = omnivi.model.OmniVI(without_left_out, contrastive_weight=100)
novelty_model.train(max_epochs=MAX_EPOCHS, enable_progress_bar=False)

novelty = novelty_model.get_novelty_scores(novelty_query)
is_left_out = (novelty_query.obs["cell_type"] == LEFT_OUT).to_numpy()
novelty.head()

# %% [markdown]
# What the classifier calls the astrocytes it never saw, and how well the novelty score
# picks them out (AUROC over all held-out cells: 1 means every astrocyte scores above
# every other cell; precision and recall are those of `is_novel`):

# %%
print(f"{LEFT_OUT} cells of the held-out samples predicted as:")
print(novelty.loc[is_left_out, "predicted_label"].value_counts().head(5).to_dict())
novelty_table = pd.Series(
    {
        f"{LEFT_OUT} cells": int(is_left_out.sum()),
        "AUROC": roc_auc_score(is_left_out, novelty["novelty_score"]),
        "precision of is_novel": precision_score(
            is_left_out, novelty["is_novel"], zero_division=0
        ),
        "recall of is_novel": recall_score(is_left_out, novelty["is_novel"]),
        "other cells called novel": float(novelty.loc[~is_left_out, "is_novel"].mean()),
    }
)
novelty_table.round(3)

# %% [markdown]
# `novelty_summary` turns the per-cell calls into an answer for the whole query: does it
# hold cells of types the model has not seen? It answers yes when more than twice the
# 5% expected among known types are called novel, that is more than 10% of the query.
# An unseen type that makes up less of the query than that, however well the per-cell
# calls find it, does not raise the alarm on its own: read the per-cell calls (and the
# share of the query they make up) as well.

# %%
print(f"{LEFT_OUT} cells: {is_left_out.mean():.1%} of the held-out cells")
novelty_model.novelty_summary(novelty)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, 1, 31)
for cells, label in ((~is_left_out, "known types"), (is_left_out, LEFT_OUT)):
    ax.hist(novelty.loc[cells, "novelty_score"], bins=bins, alpha=0.6, density=True, label=label)
ax.axvline(novelty.attrs["threshold"], color="black", ls="--", lw=1, label="threshold")
ax.set(xlabel="novelty score (mixing)", ylabel="density")
ax.legend(frameon=False)
fig.tight_layout()

# %% [markdown]
# ## What to look at
#
# The latent of every cell (training and held-out samples) from the contrastive OmniVI
# model and from SCANVI, by cell type, by sample and by split. Types should form
# separate groups, samples should overlap within a type, and held-out cells should land
# on the training cells of their type.

# %%
everything = rna.copy()
obs = rna.obs[["cell_type", "sample"]].copy()
obs["split"] = pd.Categorical(np.where(is_test, "held out", "training"))
latents = {
    "OmniVI (contrastive)": model.get_latent_representation(everything),
    "SCANVI": scanvi.get_latent_representation(scanvi_data),
}
coordinates = {name: omnivi.tl.umap(z) for name, z in latents.items()}
fig = omnivi.pl.embedding_grid(
    coordinates, obs, color=["cell_type", "sample", "split"], n_columns=2
)

# %%
annotation.round(3)

# %% [markdown]
# Loss curves of the contrastive model: the ELBO terms of the autoencoder and the
# weighted contrastive loss (`contrastive_total`).

# %%
fig = omnivi.pl.loss_curves(model.history)
