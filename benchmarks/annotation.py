"""Benchmark omnivi's cell annotation and novelty detection on held-out samples.

Protocol (``mop_rna_atac``, RNA, label ``cell_type``, batch ``sample``):

- **Annotation.** Train on samples 09A-09I, predict the cell types of 09J, 09K and 09L
  (whole samples held out). Compared in the same run: ``OmniVI`` with the contrastive
  objectives (``contrastive_weight``), the encoder-only ``OmniCL``, scvi-tools' ``SCANVI``
  (pre-trained SCVI on all 12 samples with the held-out labels hidden, the usual
  semi-supervised use) and a logistic regression on a PCA of the training samples. Reported
  on the held-out cells: accuracy, balanced accuracy, macro F1; and scib-metrics of each
  embedding on all cells.
- **Novelty.** For each of Astro, L6 and Pvalb: drop that type from the training samples,
  train again, score the held-out samples' cells; report the per-cell AUROC of the novelty
  score for the left-out type, and precision / recall of the boolean ``is_novel`` call.
  The classifier's maximum-probability rule (rescaled as in the CELLULAR package) is
  reported beside it.
- **Label ceiling.** How far the labels can be told apart at all: a class-balanced
  logistic regression on all standardised log-normalised genes (and with the ATAC's LSI
  added), scored by 5-fold stratified cross-validation over the cells of all 12 samples, so
  with no sample held out. The macro F1 of each method is also given over the types with
  at least 10 held-out cells.
- **Loss speed.** One evaluation of the contrastive loss (three terms) on a minibatch of 256
  embeddings, vectorised (:class:`omnivi.module.ContrastiveObjective`) against a
  per-anchor Python loop of the same loss written below; the two are checked to agree.

Usage::

    . .venv/bin/activate   # with the bench extras: OMNIVI_EXTRAS=test,bench
    python benchmarks/annotation.py             # full run, writes benchmarks/results/
    python benchmarks/annotation.py --quick     # smoke test: few epochs, temp folder
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import command_line, machine_info, quiet_libraries, scib_scores

DATASET = "mop_rna_atac"
BATCH_KEY, LABEL_KEY = "sample", "cell_type"
TEST_SAMPLES = ("09J", "09K", "09L")
NOVEL_TYPES = ("Astro", "L6", "Pvalb")
UNLABELED = "Unknown"
SEED = 0
BATCH_SIZE = 256
N_PCS = 50
OMNIVI_CONTRASTIVE_WEIGHT = 100.0
EPOCHS = {"OmniVI": 100, "OmniCL": 50, "SCVI": 100, "SCANVI": 20}
QUICK_EPOCHS = {"OmniVI": 3, "OmniCL": 3, "SCVI": 3, "SCANVI": 2}
TARGET_F1 = 0.75
MIN_CELLS_FOR_F1 = 10
CEILING_FOLDS, CEILING_LSI_COMPONENTS, CEILING_C = 5, 50, 0.003
TARGET_AUROC = 0.9
TARGET_LOSS_SPEEDUP = 50.0


# ------------------------------------------------------------------------------ data
def load_rna(data_dir: str | None):
    """The RNA of the data set with plain string batch and label columns."""
    from omnivi.data import read_dataset

    rna = read_dataset(DATASET, data_dir)["rna"]
    adata = rna.copy()
    adata.obs = adata.obs[[BATCH_KEY, LABEL_KEY]].astype(str).astype("category")
    return adata


def split(adata, left_out: str | None = None):
    """Training cells (samples 09A-09I, without ``left_out``) and held-out cells (09J-09L)."""
    test = adata.obs[BATCH_KEY].isin(TEST_SAMPLES).to_numpy()
    train = ~test
    if left_out is not None:
        train &= (adata.obs[LABEL_KEY] != left_out).to_numpy()
    reference = adata[train].copy()
    reference.obs[LABEL_KEY] = reference.obs[LABEL_KEY].cat.remove_unused_categories()
    return reference, adata[test].copy()


# ------------------------------------------------------------------------------ models
def fit_omnivi(reference, epochs: int):
    """OmniVI with the contrastive objectives, on RNA alone."""
    from omnivi.model import OmniVI

    OmniVI.setup_anndata(reference, batch_key=BATCH_KEY, labels_key=LABEL_KEY)
    model = OmniVI(reference, contrastive_weight=OMNIVI_CONTRASTIVE_WEIGHT)
    model.train(max_epochs=epochs, batch_size=BATCH_SIZE, enable_progress_bar=False)
    return model


def fit_omnicl(reference, epochs: int):
    """The encoder-only contrastive model, on RNA alone."""
    from omnivi.model import OmniCL

    OmniCL.setup_anndata(reference, batch_key=BATCH_KEY, labels_key=LABEL_KEY)
    model = OmniCL(reference)
    model.train(max_epochs=epochs, batch_size=BATCH_SIZE, enable_progress_bar=False)
    return model


def fit_scanvi(adata, epochs: dict[str, int]):
    """SCVI then SCANVI on all cells, the held-out samples' labels hidden.

    Returns the model, its predictions for every cell and its latent.
    """
    import scvi

    data = adata.copy()
    hidden = data.obs[BATCH_KEY].isin(TEST_SAMPLES)
    labels = data.obs[LABEL_KEY].astype(str)
    labels[hidden.to_numpy()] = UNLABELED
    data.obs["scanvi_labels"] = labels.astype("category")
    scvi.model.SCVI.setup_anndata(data, batch_key=BATCH_KEY, labels_key="scanvi_labels")
    vae = scvi.model.SCVI(data)
    vae.train(max_epochs=epochs["SCVI"], batch_size=BATCH_SIZE, enable_progress_bar=False)
    model = scvi.model.SCANVI.from_scvi_model(vae, unlabeled_category=UNLABELED)
    model.train(max_epochs=epochs["SCANVI"], batch_size=BATCH_SIZE, enable_progress_bar=False)
    return model.predict(data), model.get_latent_representation(data)


def pca_logistic_regression(reference, query):
    """Logistic regression on the first 50 PCs of log-normalised training RNA."""
    import scanpy as sc
    from sklearn.linear_model import LogisticRegression

    def logged(adata):
        out = adata.copy()
        sc.pp.normalize_total(out, target_sum=1e4)
        sc.pp.log1p(out)
        return out

    ref, qry = logged(reference), logged(query)
    sc.pp.pca(ref, n_comps=N_PCS, random_state=SEED)
    mean = np.asarray(ref.X.mean(axis=0)).ravel()
    x_query = (np.asarray(qry.X.todense()) - mean) @ ref.varm["PCs"]
    classifier = LogisticRegression(max_iter=2000, class_weight="balanced")
    classifier.fit(ref.obsm["X_pca"], ref.obs[LABEL_KEY].astype(str))
    return classifier.predict(x_query)


def label_ceiling(data_dir: str | None, n_folds: int) -> dict[str, dict[str, Any]]:
    """Cross-validated logistic regression on every cell: how separable the labels are.

    Features are the standardised ``log1p`` of median-scaled RNA counts (all genes), alone
    and with the ATAC's LSI (TF-IDF, truncated SVD, first component dropped) beside them.
    """
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from omnivi import pp
    from omnivi.data import read_dataset

    mdata = read_dataset(DATASET, data_dir)
    rna, atac = mdata["rna"].copy(), mdata["atac"].copy()
    pp.normalize_log1p(rna)
    pp.tfidf(atac)
    genes = rna.layers["log1p_norm"]
    genes = genes.toarray() if sparse.issparse(genes) else np.asarray(genes)
    lsi = TruncatedSVD(CEILING_LSI_COMPONENTS, random_state=SEED)
    regions = lsi.fit_transform(atac.layers["tfidf"])[:, 1:]
    labels = rna.obs[LABEL_KEY].astype(str).to_numpy()
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=SEED)
    ceiling = {}
    for name, features in (("RNA", genes), ("RNA + ATAC", np.hstack([genes, regions]))):
        classifier = make_pipeline(
            StandardScaler(),
            LogisticRegression(max_iter=3000, C=CEILING_C, class_weight="balanced"),
        )
        predicted = cross_val_predict(classifier, features, labels, cv=folds, n_jobs=-1)
        ceiling[name] = classification_scores(labels, predicted)
    return ceiling


# ----------------------------------------------------------------------------- metrics
def classification_scores(truth, predicted) -> dict[str, Any]:
    """Accuracy, balanced accuracy and macro F1 (over the true types, and over those with at
    least ``MIN_CELLS_FOR_F1`` cells)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    truth, predicted = np.asarray(truth, dtype=str), np.asarray(predicted, dtype=str)
    types, counts = np.unique(truth, return_counts=True)
    per_type = f1_score(truth, predicted, average=None, labels=types)
    return {
        "accuracy": accuracy_score(truth, predicted),
        "balanced_accuracy": balanced_accuracy_score(truth, predicted),
        "macro_f1": float(per_type.mean()),
        "macro_f1_common_types": float(per_type[counts >= MIN_CELLS_FOR_F1].mean()),
        "f1_per_type": dict(zip(types.tolist(), per_type.round(4).tolist(), strict=True)),
    }


def rescaled_max_probability(probabilities: np.ndarray) -> np.ndarray:
    """CELLULAR's rule: the top class probability p rescaled to (p - 1/K) / (1 - 1/K)."""
    k = probabilities.shape[1]
    return (probabilities.max(axis=1) - 1 / k) / (1 - 1 / k)


def novelty_scores(model, query, is_novel: np.ndarray) -> dict[str, float]:
    """AUROC and call precision / recall of the default novelty score (``"mixing"``), AUROC
    of the ``"distance"`` score and of 1 - CELLULAR's rescaled max probability."""
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    novelty = model.get_novelty_scores(query)
    distance = model.get_novelty_scores(query, method="distance")["novelty_score"]
    uncertainty = 1 - rescaled_max_probability(model.predict(query, soft=True).to_numpy())
    return {
        "auroc": roc_auc_score(is_novel, novelty["novelty_score"]),
        "precision": precision_score(is_novel, novelty["is_novel"], zero_division=0),
        "recall": recall_score(is_novel, novelty["is_novel"]),
        "fraction_called_novel": float(novelty["is_novel"].mean()),
        "auroc_distance": roc_auc_score(is_novel, distance),
        "auroc_max_probability": roc_auc_score(is_novel, uncertainty),
    }


def scib_with_pca(adata, embeddings: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """scib-metrics of each embedding (and an unintegrated PCA) on all cells."""
    import scanpy as sc

    scored = adata.copy()
    sc.pp.normalize_total(scored, target_sum=1e4)
    sc.pp.log1p(scored)
    pca = sc.pp.pca(scored.X, n_comps=N_PCS, random_state=SEED)
    return scib_scores(adata.obs, {"PCA": pca, **embeddings}, BATCH_KEY, LABEL_KEY, "PCA")


# ------------------------------------------------------------------------- loss speed
def looped_contrastive_loss(objective, z, labels, batches, class_weights, reference_distances):
    """The three contrastive terms with a Python loop over anchor cells (reference only)."""
    import torch
    import torch.nn.functional as F

    temperature = objective.temperature
    unit = F.normalize(z, dim=-1)
    n = len(z)
    cell_type_terms, cell_type_weights, same_batch_share = [], [], []
    for i in range(n):
        similarities = torch.stack([unit[i] @ unit[j] / temperature for j in range(n) if j != i])
        others = [j for j in range(n) if j != i]
        log_prob = similarities - torch.logsumexp(similarities, dim=0)
        positive = [k for k, j in enumerate(others) if labels[j] == labels[i]]
        if positive:
            cell_type_terms.append(-log_prob[positive].mean())
            cell_type_weights.append(class_weights[labels[i]])
        same_type = [k for k, j in enumerate(others) if labels[j] == labels[i]]
        same_batch = [k for k in same_type if batches[others[k]] == batches[i]]
        if same_batch and len(same_batch) < len(same_type):
            same_batch_share.append(
                torch.exp(similarities[same_batch]).sum()
                / torch.exp(similarities[same_type]).sum()
            )
    weights = torch.stack(cell_type_weights)
    cell_type = (weights * torch.stack(cell_type_terms)).sum() / weights.sum()
    batch = torch.stack(same_batch_share).mean()
    present = sorted(set(labels.tolist()))
    centroids = torch.stack([z[labels == code].mean(0) for code in present])
    pairs = [(a, b) for a in range(len(present)) for b in range(a + 1, len(present))]
    distances = torch.stack([torch.dist(centroids[a], centroids[b]) for a, b in pairs])
    reference = torch.stack([reference_distances[present[a], present[b]] for a, b in pairs])
    centroid = torch.mean((distances / distances.max() - reference / reference.max()) ** 2)
    weights = objective.weights
    return (
        weights["cell_type"] * cell_type
        + weights["batch"] * batch
        + weights["centroid"] * centroid
    )


def time_loss(model, reference, n_repeats: int) -> dict[str, float]:
    """Time one forward evaluation of the loss on 256 cells, vectorised vs looped."""
    import torch
    from scvi import REGISTRY_KEYS

    objective = model.module.contrastive
    statistics = model.trainer.lightning_module.loss_kwargs  # the training cells' weights
    weights, distances = statistics["class_weights"].cpu(), statistics["reference_distances"].cpu()
    rng = np.random.default_rng(SEED)
    cells = rng.choice(reference.n_obs, BATCH_SIZE, replace=False)
    z = torch.as_tensor(model.get_latent_representation(indices=cells))
    manager = model.adata_manager
    labels = torch.as_tensor(
        np.asarray(manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()[cells]
    ).long()
    batches = torch.as_tensor(
        np.asarray(manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)).ravel()[cells]
    ).long()

    def timed(function) -> tuple[float, float]:
        times, value = [], None
        for _ in range(n_repeats):
            start = time.perf_counter()
            with torch.no_grad():
                value = function()
            times.append(time.perf_counter() - start)
        return float(np.median(times)), float(value)

    vectorised_s, vectorised = timed(
        lambda: objective(z, labels, batches, weights, distances)["total"]
    )
    looped_s, looped = timed(
        lambda: looped_contrastive_loss(objective, z, labels, batches, weights, distances)
    )
    if not np.isclose(vectorised, looped, rtol=1e-4, atol=1e-5):
        raise AssertionError(f"Vectorised loss {vectorised} != looped loss {looped}.")
    return {
        "n_cells": BATCH_SIZE,
        "loss_value": vectorised,
        "vectorised_seconds": vectorised_s,
        "looped_seconds": looped_s,
        "speedup": looped_s / vectorised_s,
    }


# ------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fit every model, score, and return all figures."""
    import scvi
    import torch

    quiet_libraries()
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    started = time.perf_counter()
    adata = load_rna(args.data_dir)
    test_mask = adata.obs[BATCH_KEY].isin(TEST_SAMPLES).to_numpy()
    reference, query = split(adata)
    truth = query.obs[LABEL_KEY].to_numpy()
    results: dict[str, Any] = {"annotation": {}, "seconds": {}, "novelty": {}}
    results["test_cells_per_type"] = {
        str(k): int(v) for k, v in query.obs[LABEL_KEY].value_counts().items()
    }

    predictions, embeddings, models = {}, {}, {}
    for name, fit in (("OmniVI", fit_omnivi), ("OmniCL", fit_omnicl)):
        scvi.settings.seed = SEED
        start = time.perf_counter()
        model = fit(reference.copy(), epochs[name])
        results["seconds"][name] = time.perf_counter() - start
        predictions[name] = model.predict(query)
        embeddings[name] = model.get_latent_representation(adata.copy())
        models[name] = model
        print(f"  {name}: trained in {results['seconds'][name]:.0f} s", flush=True)
    scvi.settings.seed = SEED
    start = time.perf_counter()
    scanvi_labels, embeddings["SCANVI"] = fit_scanvi(adata, epochs)
    results["seconds"]["SCANVI"] = time.perf_counter() - start
    predictions["SCANVI"] = np.asarray(scanvi_labels)[test_mask]
    start = time.perf_counter()
    predictions["PCA + logistic regression"] = pca_logistic_regression(reference, query)
    results["seconds"]["PCA + logistic regression"] = time.perf_counter() - start
    for name, predicted in predictions.items():
        results["annotation"][name] = classification_scores(truth, predicted)
        print(f"  {name}: {results['annotation'][name]}", flush=True)

    print("--- label ceiling", flush=True)
    results["ceiling_folds"] = 2 if args.quick else CEILING_FOLDS
    results["ceiling"] = label_ceiling(args.data_dir, results["ceiling_folds"])
    for name, scores in results["ceiling"].items():
        print(f"  {name}: macro F1 {scores['macro_f1']:.3f}", flush=True)

    print("--- scib-metrics of the embeddings", flush=True)
    results["scib"] = scib_with_pca(adata, embeddings)

    print("--- loss speed", flush=True)
    torch.manual_seed(SEED)
    results["loss_speed"] = time_loss(
        models["OmniCL"], models["OmniCL"].adata, 3 if args.quick else 7
    )

    for left_out in NOVEL_TYPES:
        reduced, query = split(adata, left_out=left_out)
        is_novel = (query.obs[LABEL_KEY] == left_out).to_numpy()
        results["novelty"][left_out] = {"n_novel_cells": int(is_novel.sum())}
        for name, fit in (("OmniVI", fit_omnivi), ("OmniCL", fit_omnicl)):
            scvi.settings.seed = SEED
            model = fit(reduced.copy(), epochs[name])
            results["novelty"][left_out][name] = novelty_scores(model, query, is_novel)
            print(f"  {left_out} left out, {name}: {results['novelty'][left_out][name]}")
    results["machine"] = machine_info()
    results["quick"] = args.quick
    results["epochs"] = epochs
    results["wall_seconds"] = time.perf_counter() - started
    results["targets"] = targets(results)
    return results


def targets(results: dict) -> list[dict[str, Any]]:
    """The issue's targets, checked for each omnivi model."""
    scanvi_f1 = results["annotation"]["SCANVI"]["macro_f1"]
    needed = max(scanvi_f1, TARGET_F1)
    checks = []
    for name in ("OmniVI", "OmniCL"):
        f1 = results["annotation"][name]["macro_f1"]
        checks.append(
            {
                "target": f"{name} macro F1 >= max(SCANVI {scanvi_f1:.3f}, {TARGET_F1})",
                "value": round(f1, 4),
                "passed": f1 >= needed,
            }
        )
        for left_out in NOVEL_TYPES:
            auroc = results["novelty"][left_out][name]["auroc"]
            checks.append(
                {
                    "target": f"{name} novelty AUROC, {left_out} left out >= {TARGET_AUROC}",
                    "value": round(auroc, 4),
                    "passed": auroc >= TARGET_AUROC,
                }
            )
    speedup = results["loss_speed"]["speedup"]
    checks.append(
        {
            "target": f"vectorised loss >= {TARGET_LOSS_SPEEDUP:g}x the loop",
            "value": round(speedup, 1),
            "passed": speedup >= TARGET_LOSS_SPEEDUP,
        }
    )
    return checks


# --------------------------------------------------------------------------- report
def markdown_report(results: dict) -> str:
    """The results as markdown tables."""
    machine = results["machine"]
    out = ["# omnivi annotation benchmark", ""]
    if results["quick"]:
        out += ["**Quick smoke run (few epochs): not a benchmark result.**", ""]
    out += [
        f"`{DATASET}` RNA; train on samples 09A-09I, test on {', '.join(TEST_SAMPLES)}. "
        f"{machine['cores']} cores, torch {machine['torch']}, scvi-tools "
        f"{machine['scvi-tools']}, omnivi {machine['omnivi']}; {machine['date']}; total "
        f"{results['wall_seconds'] / 60:.1f} min. Epochs: "
        + ", ".join(f"{k} {v}" for k, v in results["epochs"].items())
        + f"; OmniVI contrastive_weight {OMNIVI_CONTRASTIVE_WEIGHT:g}.",
        "",
        "## Annotation of the held-out samples",
        "",
        f"| method | accuracy | balanced accuracy | macro F1 | macro F1, types with >= "
        f"{MIN_CELLS_FOR_F1} held-out cells | train s |",
        "|---|---|---|---|---|---|",
    ]
    for name, scores in results["annotation"].items():
        out.append(
            f"| {name} | {scores['accuracy']:.3f} | {scores['balanced_accuracy']:.3f} | "
            f"{scores['macro_f1']:.3f} | {scores['macro_f1_common_types']:.3f} | "
            f"{results['seconds'][name]:.0f} |"
        )
    types = list(next(iter(results["annotation"].values()))["f1_per_type"])
    counts = results["test_cells_per_type"]
    out += [
        "",
        "SCANVI sees the held-out cells (unlabelled) during training; the omnivi models and "
        "the logistic regression do not.",
        "",
        "F1 per type (held-out cells of the type in brackets):",
        "",
        "| method | " + " | ".join(f"{t} ({counts[t]})" for t in types) + " |",
        "|---|" + "---|" * len(types),
    ]
    for name, scores in results["annotation"].items():
        per_type = scores["f1_per_type"]
        out.append(f"| {name} | " + " | ".join(f"{per_type[t]:.2f}" for t in types) + " |")
    out += [
        "",
        "## How separable the labels are",
        "",
        "Class-balanced logistic regression on all standardised log-normalised genes (and "
        f"the ATAC's LSI), {results['ceiling_folds']}-fold stratified cross-validation over "
        "the cells of all 12 samples: no sample is held out, so this is easier than the task "
        "above.",
        "",
        "| features | accuracy | balanced accuracy | macro F1 | " + " | ".join(types) + " |",
        "|---|---|---|---|" + "---|" * len(types),
    ]
    for name, scores in results["ceiling"].items():
        per_type = scores["f1_per_type"]
        out.append(
            f"| {name} | {scores['accuracy']:.3f} | {scores['balanced_accuracy']:.3f} | "
            f"{scores['macro_f1']:.3f} | " + " | ".join(f"{per_type[t]:.2f}" for t in types) + " |"
        )
    out += [
        "",
        "## scib-metrics of the embeddings (all cells)",
        "",
        "| embedding | batch correction | bio conservation | total |",
        "|---|---|---|---|",
    ]
    for name, scores in results["scib"].items():
        out.append(
            f"| {name} | {scores['Batch correction']:.3f} | {scores['Bio conservation']:.3f} | "
            f"{scores['Total']:.3f} |"
        )
    out += [
        "",
        "## Novel cell types (one type left out of training)",
        "",
        "The default score (`mixing`) is computed in a PCA of the input fit on the training "
        "cells, so it barely depends on the model; `distance` is in each model's embedding. "
        "Precision, recall and the fraction called novel are those of `is_novel` (mixing).",
        "",
        "| left out | cells | model | AUROC mixing (default) | AUROC distance | "
        "AUROC max-probability rule | precision | recall | called novel |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for left_out, entry in results["novelty"].items():
        for name in ("OmniVI", "OmniCL"):
            s = entry[name]
            out.append(
                f"| {left_out} | {entry['n_novel_cells']} | {name} | {s['auroc']:.3f} | "
                f"{s['auroc_distance']:.3f} | {s['auroc_max_probability']:.3f} | "
                f"{s['precision']:.3f} | "
                f"{s['recall']:.3f} | {s['fraction_called_novel']:.3f} |"
            )
    speed = results["loss_speed"]
    out += [
        "",
        "## Contrastive loss speed (one forward pass, 256 cells)",
        "",
        f"Vectorised {1e3 * speed['vectorised_seconds']:.2f} ms; per-anchor Python loop "
        f"{1e3 * speed['looped_seconds']:.0f} ms; speed-up {speed['speedup']:.0f}x (same "
        f"value, {speed['loss_value']:.4f}).",
        "",
        "## Targets",
        "",
    ]
    out += [
        f"- {'PASS' if t['passed'] else 'FAIL'}: {t['target']} ({t['value']})"
        for t in results["targets"]
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    command_line("annotation", __doc__.split("\n\n")[0], run, markdown_report)
