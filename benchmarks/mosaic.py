"""Benchmark mosaic integration and cross-modal imputation.

- **Mosaic integration** (``pbmc_cite_mosaic``: batch p1 has RNA only, p2 ADT only, p3 and
  p4 both). OmniVI gives every cell a latent from the modalities it has. Reported:
  scib-metrics (batch ``batch``, label ``celltype``) next to an unintegrated PCA of the padded,
  log-normalised RNA and ADT, and kNN label transfer between the two single-modality batches,
  which share no feature.
- **Imputation** (``pbmc10k_cite``): the protein of a random 20% of the cells is hidden.
  OmniVI is trained on the mosaic MuData in which those cells have RNA only, and predicts
  their protein from it. scvi-tools' TOTALVI is trained on the same cells in the same run, the
  hidden cells' protein set to zero in a batch of their own (TOTALVI treats a protein that is
  zero throughout a batch as missing), and imputes it with ``transform_batch`` set to the
  batch that has protein. Reported: per-protein Pearson correlation, across the hidden cells,
  of log1p imputed and measured values; training time of each.

Usage::

    . .venv/bin/activate   # with the bench extras: OMNIVI_EXTRAS=test,bench
    python benchmarks/mosaic.py            # full run, writes benchmarks/results/mosaic.*
    python benchmarks/mosaic.py --quick    # smoke test: few epochs, temp folder
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import command_line, machine_info, quiet_libraries, scib_scores

SEED = 0
HIDDEN_FRACTION = 0.2
EPOCHS = {"mosaic": 200, "imputation": 100}
QUICK_EPOCHS = {"mosaic": 3, "imputation": 3}
MOSAIC_MODALITIES = {"rna_layer": "rna", "protein_layer": "adt"}
N_PCS = 30


# ---------------------------------------------------------------------- mosaic integration
def unintegrated_pca(mdata) -> np.ndarray:
    """PCA of the log-normalised RNA and ADT, zero where a cell lacks a modality."""
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    from omnivi.data._mosaic import pad_mosaic

    padded = pad_mosaic(mdata, {"rna": None, "adt": None})
    blocks = []
    for mod in ("rna", "adt"):
        counts = padded[mod].X.to_memory()
        totals = np.asarray(counts.sum(axis=1)).ravel()
        scale = np.where(totals > 0, 1e4 / np.maximum(totals, 1), 0)
        blocks.append(sparse.diags(scale) @ counts)
    joint = sparse.csr_matrix(sparse.hstack(blocks))
    joint.data = np.log1p(joint.data)
    return TruncatedSVD(N_PCS, random_state=SEED).fit_transform(joint)


def label_transfer(latent, batch, labels, source: str, target: str) -> float:
    """Accuracy of a 15-nearest-neighbour classifier from one batch's cells to another's."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(15).fit(latent[batch == source], labels[batch == source])
    return float((knn.predict(latent[batch == target]) == labels[batch == target]).mean())


def mosaic_integration(data_dir: str | None, epochs: int) -> dict[str, Any]:
    """OmniVI on pbmc_cite_mosaic: scib-metrics and cross-batch label transfer."""
    import scvi

    from omnivi.data import read_dataset
    from omnivi.model import OmniVI

    mdata = read_dataset("pbmc_cite_mosaic", data_dir)
    scvi.settings.seed = SEED
    OmniVI.setup_mudata(mdata, batch_key="batch", modalities=MOSAIC_MODALITIES)
    model = OmniVI(mdata)
    start = time.perf_counter()
    model.train(max_epochs=epochs, enable_progress_bar=False)
    seconds = time.perf_counter() - start
    latents = {
        "PCA (padded)": unintegrated_pca(mdata),
        "OmniVI": model.get_latent_representation(),
    }
    batch = mdata.obs["batch"].astype(str).to_numpy()
    labels = mdata.obs["celltype"].astype(str).to_numpy()
    transfer = {
        name: {
            f"{s} -> {t}": label_transfer(latent, batch, labels, s, t)
            for s, t in (("p1_0", "p2_0"), ("p2_0", "p1_0"))
        }
        for name, latent in latents.items()
    }
    return {
        "cells": int(mdata.n_obs),
        "cells_with_latent": int(np.isfinite(latents["OmniVI"]).all(axis=1).sum()),
        "train_seconds": seconds,
        "scib": scib_scores(mdata.obs, latents, "batch", "celltype", "PCA (padded)"),
        "label_transfer": transfer,
    }


# ----------------------------------------------------------------------------- imputation
def omnivi_imputation(mdata, hidden: np.ndarray, epochs: int) -> tuple[np.ndarray, float]:
    """Train OmniVI with the hidden cells' protein absent; impute it from their RNA."""
    import mudata as md
    import scvi

    from omnivi.model import OmniVI

    mosaic = md.MuData({"rna": mdata["rna"].copy(), "prot": mdata["prot"][~hidden].copy()})
    scvi.settings.seed = SEED
    OmniVI.setup_mudata(mosaic, modalities={"rna_layer": "rna", "protein_layer": "prot"})
    model = OmniVI(mosaic)
    start = time.perf_counter()
    model.train(max_epochs=epochs, enable_progress_bar=False)
    seconds = time.perf_counter() - start
    rows = mosaic.obs_names.get_indexer(mdata.obs_names[hidden])
    imputed = model.get_normalized_expression(modality="protein", indices=rows)
    return imputed.to_numpy(), seconds


def totalvi_imputation(mdata, hidden: np.ndarray, epochs: int) -> tuple[np.ndarray, float]:
    """Train TOTALVI with the hidden cells' protein zero in their own batch; impute it."""
    import scvi
    from scipy import sparse

    data = mdata.copy()
    protein = sparse.csr_matrix(data["prot"].X, dtype=np.float32).toarray()
    protein[hidden] = 0
    data["prot"].X = protein  # dense: TOTALVI's protein prior indexes it as an array
    data.obs["protein_batch"] = np.where(hidden, "hidden", "observed")
    data["rna"].obs["protein_batch"] = data.obs["protein_batch"].to_numpy()
    scvi.settings.seed = SEED
    scvi.model.TOTALVI.setup_mudata(
        data,
        batch_key="protein_batch",
        modalities={"rna_layer": "rna", "protein_layer": "prot", "batch_key": "rna"},
    )
    model = scvi.model.TOTALVI(data)
    start = time.perf_counter()
    model.train(max_epochs=epochs, enable_progress_bar=False)
    seconds = time.perf_counter() - start
    _, imputed = model.get_normalized_expression(
        indices=np.flatnonzero(hidden),
        transform_batch="observed",
        include_protein_background=False,
        return_mean=True,
    )
    return np.asarray(imputed), seconds


def per_protein_pearson(imputed: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Pearson correlation per protein of log1p imputed and measured values across cells."""
    a, b = np.log1p(imputed), np.log1p(measured)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))


def imputation(data_dir: str | None, epochs: int) -> dict[str, Any]:
    """OmniVI and TOTALVI imputing the hidden protein of pbmc10k_cite."""
    from scipy import sparse

    from omnivi.data import read_dataset

    mdata = read_dataset("pbmc10k_cite", data_dir)
    hidden = np.random.default_rng(SEED).random(mdata.n_obs) < HIDDEN_FRACTION
    measured = sparse.csr_matrix(mdata["prot"].X)[np.flatnonzero(hidden)].toarray()
    result: dict[str, Any] = {"hidden_cells": int(hidden.sum()), "cells": int(mdata.n_obs)}
    result["proteins"] = mdata["prot"].var_names.tolist()
    for name, impute in (("OmniVI", omnivi_imputation), ("TOTALVI", totalvi_imputation)):
        imputed, seconds = impute(mdata, hidden, epochs)
        correlations = per_protein_pearson(imputed, measured)
        result[name] = {
            "train_seconds": seconds,
            "pearson": dict(zip(result["proteins"], correlations.tolist(), strict=True)),
            "median_pearson": float(np.median(correlations)),
            "mean_pearson": float(np.mean(correlations)),
        }
        print(f"  {name}: median Pearson {np.median(correlations):.3f}", flush=True)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both parts, with the machine's facts."""
    quiet_libraries()
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    started = time.perf_counter()
    print("--- mosaic integration", flush=True)
    results: dict[str, Any] = {"mosaic": mosaic_integration(args.data_dir, epochs["mosaic"])}
    print("--- imputation", flush=True)
    results["imputation"] = imputation(args.data_dir, epochs["imputation"])
    results.update(
        machine=machine_info(),
        quick=args.quick,
        epochs=epochs,
        wall_seconds=time.perf_counter() - started,
    )
    return results


# ---------------------------------------------------------------------------- reporting
def markdown_report(results: dict) -> str:
    """The results as markdown tables."""
    machine, mosaic, imputed = results["machine"], results["mosaic"], results["imputation"]
    out = ["# omnivi mosaic integration and imputation benchmark", ""]
    if results["quick"]:
        out += ["**Quick smoke run (few epochs): not a benchmark result.**", ""]
    out += [
        f"{machine['cores']} cores, torch {machine['torch']}, scvi-tools "
        f"{machine['scvi-tools']}, omnivi {machine['omnivi']}; {machine['date']}; total "
        f"{results['wall_seconds'] / 60:.1f} min; epochs {results['epochs']}.",
        "",
        "## Mosaic integration (`pbmc_cite_mosaic`: p1 RNA only, p2 ADT only, p3/p4 paired)",
        "",
        f"{mosaic['cells_with_latent']} of {mosaic['cells']} cells get a latent; OmniVI "
        f"trained in {mosaic['train_seconds']:.0f} s.",
        "",
        "| embedding | batch correction | bio conservation | total | kNN p1 -> p2 | "
        "kNN p2 -> p1 |",
        "|---|---|---|---|---|---|",
    ]
    for name, scores in mosaic["scib"].items():
        transfer = mosaic["label_transfer"][name]
        out.append(
            f"| {name} | {scores['Batch correction']:.3f} | {scores['Bio conservation']:.3f} | "
            f"{scores['Total']:.3f} | {transfer['p1_0 -> p2_0']:.3f} | "
            f"{transfer['p2_0 -> p1_0']:.3f} |"
        )
    out += [
        "",
        "kNN: a 15-nearest-neighbour classifier fit on one single-modality batch's latent "
        "predicts the other's cell types; the two batches share no feature.",
        "",
        f"## Protein imputation (`pbmc10k_cite`, protein of {imputed['hidden_cells']} of "
        f"{imputed['cells']} cells hidden)",
        "",
        "| protein | OmniVI | TOTALVI |",
        "|---|---|---|",
    ]
    for protein in imputed["proteins"]:
        out.append(
            f"| {protein} | {imputed['OmniVI']['pearson'][protein]:.3f} | "
            f"{imputed['TOTALVI']['pearson'][protein]:.3f} |"
        )
    out += [
        f"| **median** | **{imputed['OmniVI']['median_pearson']:.3f}** | "
        f"**{imputed['TOTALVI']['median_pearson']:.3f}** |",
        f"| mean | {imputed['OmniVI']['mean_pearson']:.3f} | "
        f"{imputed['TOTALVI']['mean_pearson']:.3f} |",
        f"| train s | {imputed['OmniVI']['train_seconds']:.0f} | "
        f"{imputed['TOTALVI']['train_seconds']:.0f} |",
        "",
        "Pearson correlation across the hidden cells of log1p imputed and measured counts.",
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    command_line("mosaic", __doc__.split("\n\n")[0], run, markdown_report)
