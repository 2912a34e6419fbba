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
# # Mapping an RNA-only query onto a CITE-seq reference
#
# A reference model trained once on RNA + protein can take new data without retraining
# it: scArches reference mapping adds the query's batch to the model and trains only the
# weights that read it. A query with RNA alone then gets, in a few calls,
#
# - a latent in the reference's space,
# - labels transferred from the reference's classifier, with probabilities,
# - imputed surface proteins it never measured,
# - novelty scores (cells unlike any reference type).
#
# Reference: `pbmc10k_cite` (10x PBMC, RNA + 14 proteins, one batch). Query: `pbmc5k_rna`
# (10x PBMC from another run, RNA only, the same 4,000 genes). The reference has no
# cell-type labels, so we make some first: clusters of its RNA + protein, named by the
# protein each cluster is highest in.

# %%
import logging
import os
import warnings

import anndata as ad
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import scanpy as sc
import scvi
from scipy import sparse
from sklearn.neighbors import kneighbors_graph

import omnivi

# The folder of the real data sets; None searches OMNIVI_DATA_DIR, then ../shared/data
# (omnivi.data.find_data_dir), and read_dataset says what to set if neither exists.
DATA_DIR = None
QUICK = os.environ.get("OMNIVI_TUTORIAL_QUICK") == "1"  # a smoke run: few epochs
MAX_EPOCHS = 3 if QUICK else 100  # the reference model
QUERY_EPOCHS = max(MAX_EPOCHS // 2, 1)  # scArches training of the query: 50
N_CELLS = 1500 if QUICK else None  # a quick run takes this many cells of each data set
RESOLUTION = 0.5  # Leiden resolution of the reference clusters
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
# The reference MuData has `rna` and `prot`; the query is an AnnData of RNA counts. Each
# gets a batch column naming its data set.

# %%
reference = omnivi.data.read_dataset("pbmc10k_cite", DATA_DIR)
query_rna = omnivi.data.read_dataset("pbmc5k_rna", DATA_DIR)
if N_CELLS is not None:
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(reference.n_obs, N_CELLS, replace=False))
    reference = reference[reference.obs_names[keep]].copy()
    query_rna = query_rna[np.sort(rng.choice(query_rna.n_obs, N_CELLS, replace=False))].copy()
reference.obs["batch"] = "pbmc10k"
query_rna.obs["batch"] = "pbmc5k"
print(reference)
print(query_rna)
print(
    f"query genes found in the reference: "
    f"{query_rna.var_names.isin(reference['rna'].var_names).sum()} of {query_rna.n_vars}"
)

# %% [markdown]
# ## Labels for the reference
#
# Without annotation at hand, clusters serve as labels. We cluster the classic joint
# embedding (`omnivi.benchmark.concatenated_pca`: RNA PCA and protein CLR PCA, equally
# weighted, side by side) with Leiden on a 15-nearest-neighbour graph, and name each
# cluster by the protein whose cluster mean (CLR) stands out most against the other
# clusters. The names are a guide (a cluster of CD14 monocytes shows up as `CD14+`); look
# at the heat map before trusting them. With your own data, use your annotation instead.

# %%
with md.set_options(pull_on_update=False):
    cite = md.MuData({"rna": reference["rna"].copy(), "protein": reference["prot"].copy()})
joint = omnivi.benchmark.concatenated_pca(cite, modalities=["rna", "protein"])
joint = joint[cite.obs_names.get_indexer(reference.obs_names)]  # the reference's cell order

graph = kneighbors_graph(joint, n_neighbors=15, include_self=False)
graph = graph.maximum(graph.T)  # symmetric
clusters = sc.AnnData(obs=pd.DataFrame(index=reference.obs_names))
sc.tl.leiden(
    clusters,
    adjacency=graph,
    resolution=RESOLUTION,
    flavor="igraph",
    n_iterations=2,
    directed=False,
    random_state=0,
)

protein = reference["prot"][reference.obs_names].copy()
omnivi.pp.clr(protein)
short = [name.replace("_TotalSeqB", "") for name in protein.var_names]
clr = pd.DataFrame(protein.layers["clr"], index=protein.obs_names, columns=short)
means = clr.groupby(clusters.obs["leiden"].to_numpy()).mean()
standing_out = (means - means.mean()) / means.std()
names = {c: f"{c}: {standing_out.loc[c].idxmax()}+" for c in means.index}
reference.obs["cluster"] = pd.Categorical(clusters.obs["leiden"].map(names).to_numpy())
reference.obs["cluster"].value_counts().to_frame("cells").T

# %%
fig, ax = plt.subplots(figsize=(7, 0.35 * len(means) + 1.5))
image = ax.imshow(standing_out.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3)
ax.set_xticks(range(len(short)))
ax.set_xticklabels(short, rotation=90)
ax.set_yticks(range(len(means)))
ax.set_yticklabels([names[c] for c in means.index])
ax.set_title("mean protein (CLR) per cluster, standardised across clusters")
fig.colorbar(image, ax=ax, shrink=0.8)
fig.tight_layout()

# %% [markdown]
# ## The reference model
#
# `OmniVI` on RNA + protein, with the clusters registered as labels. With the default
# `contrastive_weight=0` the labels do not shape the latent (they came from another
# embedding, so pulling the latent towards them would be circular); they only train the
# classifier fit at the end of `train`, which the query model will use.

# %%
omnivi.model.OmniVI.setup_mudata(
    reference,
    batch_key="batch",
    labels_key="cluster",
    modalities={"rna_layer": "rna", "protein_layer": "prot"},
)
model = omnivi.model.OmniVI(reference)
model.train(max_epochs=MAX_EPOCHS, enable_progress_bar=False)

# %% [markdown]
# ## Map the query
#
# Three calls:
#
# - `prepare_query_anndata` lays the query out like the reference's data: a MuData with
#   the reference's genes in its order (missing genes as zeros, with a warning if many
#   are missing) and a protein modality without cells, so the query is mosaic data. Its
#   labels column must exist; `"unknown"` marks cells without a label. The user's query
#   object is not changed;
# - `load_query_data` builds the query model from the reference's weights, with the new
#   batch added;
# - `train` updates only what scArches trains: by default the weights that read the new
#   batch (the batch columns of the decoders' first layers; the encoders read no batch
#   unless the reference was built with `encode_covariates=True`).

# %%
query_rna.obs["cluster"] = "unknown"
query = omnivi.model.OmniVI.prepare_query_anndata(query_rna, model)
query_model = omnivi.model.OmniVI.load_query_data(query, model)
query_model.train(max_epochs=QUERY_EPOCHS, enable_progress_bar=False)
query

# %% [markdown]
# ## What the query gets
#
# Latent, labels with probabilities, and imputed proteins (the protein decoder's output
# for cells encoded from their RNA):

# %%
query_latent = query_model.get_latent_representation()
query_labels = query_model.predict()
query_probabilities = query_model.predict(soft=True)
imputed = query_model.get_normalized_expression(modality="protein")
imputed.columns = [name.replace("_TotalSeqB", "") for name in imputed.columns]

transferred = pd.DataFrame(
    {
        "query cells": pd.Series(query_labels).value_counts(),
        "median probability": pd.Series(query_probabilities.to_numpy().max(axis=1))
        .groupby(query_labels)
        .median(),
        "reference cells": reference.obs["cluster"].astype(str).value_counts(),
    }
)
transferred.round(2)

# %% [markdown]
# Are the imputed proteins plausible? The query has no protein to compare with, but most
# of these proteins have a gene whose RNA is measured. In the reference, the measured
# protein and its gene's RNA correlate to some degree across cells; an imputation that
# follows the query's biology should correlate with the query's RNA to a similar degree.
# (RNA: normalised to 10,000 counts, log1p; protein: log1p.)

# %%
GENES = {
    "CD3": "CD3D",
    "CD4": "CD4",
    "CD8a": "CD8A",
    "CD14": "CD14",
    "CD16": "FCGR3A",
    "CD19": "CD19",
    "CD56": "NCAM1",
    "CD127": "IL7R",
    "CD25": "IL2RA",
    "PD-1": "PDCD1",
    "TIGIT": "TIGIT",
}


def log_normalised(adata: ad.AnnData, genes: list[str]) -> pd.DataFrame:
    """log1p of RNA counts scaled to 10,000 per cell, for ``genes``."""
    counts = sparse.csr_matrix(adata.X)
    totals = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1)
    selected = counts[:, adata.var_names.get_indexer(genes)].toarray()
    return pd.DataFrame(
        np.log1p(selected / totals[:, None] * 1e4), index=adata.obs_names, columns=genes
    )


pairs = {p: g for p, g in GENES.items() if p in imputed.columns and g in query_rna.var_names}
reference_rna = log_normalised(reference["rna"][reference.obs_names], list(pairs.values()))
query_genes = log_normalised(query_rna, list(pairs.values()))
measured = np.log1p(
    pd.DataFrame(reference["prot"][reference.obs_names].X.toarray(), columns=short)
)
plausibility = pd.DataFrame(
    {
        "gene": pairs,
        "reference: measured protein vs RNA": {
            p: np.corrcoef(measured[p], reference_rna[g])[0, 1] for p, g in pairs.items()
        },
        "query: imputed protein vs RNA": {
            p: np.corrcoef(np.log1p(imputed[p]), query_genes[g])[0, 1] for p, g in pairs.items()
        },
    }
)
plausibility.round(2)

# %% [markdown]
# ## Novelty
#
# Does the query hold cells unlike any reference cluster? The default `"mixing"` score
# sets its threshold from the reference's own batches playing the query. This reference
# has a single batch, so that threshold knows no batch effect; omnivi warns about it
# (printed below), and the fraction called novel may then exceed the target 5% only
# because pbmc5k is another run. The `"distance"` score compares each cell with its 30
# nearest reference cells in the latent, with a threshold from the reference's
# validation cells, which share the reference's run too.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    mixing = query_model.get_novelty_scores(method="mixing")
for warning in caught:
    if "Novelty calls" in str(warning.message):
        print("warning:", warning.message)
distance = query_model.get_novelty_scores(method="distance")
pd.DataFrame(
    {
        "mixing": query_model.novelty_summary(mixing),
        "distance": query_model.novelty_summary(distance),
    }
)

# %% [markdown]
# Read these calls with care. pbmc5k and pbmc10k are both blood cells of healthy donors,
# so few truly new types are expected, yet both scores may call far more than 5% of the
# query novel: with one reference batch, neither threshold has seen how far another run
# moves cells of known types (the mixing score, which compares the query with the
# reference directly, the most). Here a call means "unlike the reference's run" more than
# "a new cell type". Which transferred labels the cells called novel by distance carry:
# spread over many labels, they point to the difference between the runs; one new type
# would gather under one or two labels.

# %%
distance.loc[distance["is_novel"], "predicted_label"].value_counts().to_frame("novel cells")

# %% [markdown]
# ## What to look at
#
# Reference and query together: OmniVI's latents (the reference model's for the
# reference cells, the query model's for the query), next to a PCA of the RNA of both
# data sets without any correction. Coloured by data set and by label (clusters for the
# reference, transferred labels for the query). After mapping, query cells should lie
# on reference cells of the label they were given; in the uncorrected PCA the two runs
# may separate.

# %%
both_rna = ad.concat(
    [reference["rna"][reference.obs_names], query_rna], label="dataset", keys=["pbmc10k", "pbmc5k"]
)
obs = pd.DataFrame(
    {
        "dataset": both_rna.obs["dataset"].to_numpy(),
        "label": np.concatenate(
            [reference.obs["cluster"].astype(str).to_numpy(), query_labels.astype(str)]
        ),
    }
).astype("category")
latents = {
    "OmniVI (reference mapping)": np.vstack([model.get_latent_representation(), query_latent]),
    "PCA (RNA, uncorrected)": omnivi.benchmark.rna_pca(both_rna),
}
coordinates = {name: omnivi.tl.umap(z) for name, z in latents.items()}
fig = omnivi.pl.embedding_grid(coordinates, obs, color=["dataset", "label"], n_columns=2)

# %% [markdown]
# Imputed proteins on the query cells, on the OmniVI UMAP above (query cells only):

# %%
umap = coordinates["OmniVI (reference mapping)"][reference.n_obs :]  # the query's rows
markers = [p for p in ("CD3", "CD4", "CD8a", "CD14", "CD16", "CD19") if p in imputed.columns]
fig, axes = plt.subplots(1, len(markers), figsize=(3.2 * len(markers), 3.2), squeeze=False)
for ax, protein_name in zip(axes[0], markers, strict=True):
    values = np.log1p(imputed[protein_name].to_numpy())
    ax.scatter(*umap.T, c=values, s=2, cmap="viridis")
    ax.set_title(f"imputed {protein_name} (log1p)")
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
fig = omnivi.pl.loss_curves(model.history)
