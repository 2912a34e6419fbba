"""Benchmark reference mapping against training from scratch.

``mop_rna_atac`` (RNA + ATAC, label ``cell_type``, batch ``sample``):

- **Reference mapping.** OmniVI is trained on samples 09A-09I with their labels (the
  reference); samples 09J, 09K and 09L are prepared (``prepare_query_mudata``) and mapped
  onto it (``load_query_data``, then scArches training of the new samples' weights). The
  query is annotated with the reference's classifier.
- **From scratch.** OmniVI is trained on all 12 samples, the labels of 09J-09L hidden
  (``unlabeled_category``); its classifier, fit on the labelled cells, annotates them.

Reported for each: accuracy and macro F1 of the labels of 09J-09L; scib-metrics of the joint
embedding of all 12 samples (for mapping: the reference's latents of 09A-09I and the query
model's latents of 09J-09L); the training time (for mapping, the query step apart).

Usage::

    . .venv/bin/activate   # with the bench extras: OMNIVI_EXTRAS=test,bench
    python benchmarks/mapping.py            # full run, writes benchmarks/results/mapping.*
    python benchmarks/mapping.py --quick    # smoke test: few epochs, temp folder
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import command_line, machine_info, quiet_libraries, scib_scores

DATASET = "mop_rna_atac"
BATCH_KEY, LABEL_KEY = "sample", "cell_type"
QUERY_SAMPLES = ("09J", "09K", "09L")
UNLABELED = "Unknown"
MODALITIES = {"rna_layer": "rna", "atac_layer": "atac"}
SEED = 0
EPOCHS = {"reference": 100, "query": 50, "scratch": 100}
QUICK_EPOCHS = {"reference": 2, "query": 2, "scratch": 2}


def load(data_dir: str | None):
    """The MuData with plain string batch and label columns in its global ``.obs``."""
    from omnivi.data import read_dataset

    mdata = read_dataset(DATASET, data_dir)
    for key in (BATCH_KEY, LABEL_KEY):
        mdata.obs[key] = mdata["rna"].obs[key].astype(str).astype("category").to_numpy()
    return mdata


def subset(mdata, cells: np.ndarray):
    """A new MuData of ``cells`` (boolean mask) with the global ``.obs`` columns kept."""
    part = mdata[cells].copy()
    part.obs = mdata.obs.loc[cells, [BATCH_KEY, LABEL_KEY]].copy()
    return part


def unintegrated_pca(mdata) -> np.ndarray:
    """PCA of each modality's log-normalised counts, weighted equally and concatenated."""
    from omnivi.model._input_pca import InputPCA

    return InputPCA(n_comps=30, seed=SEED).fit_transform([mdata["rna"].X, mdata["atac"].X])


def labels_scores(truth, predicted) -> dict[str, float]:
    """Accuracy and macro F1 over the query cells' true types."""
    from sklearn.metrics import accuracy_score, f1_score

    truth, predicted = np.asarray(truth, dtype=str), np.asarray(predicted, dtype=str)
    return {
        "accuracy": accuracy_score(truth, predicted),
        "macro_f1": f1_score(truth, predicted, average="macro", labels=np.unique(truth)),
    }


def timed_train(model, epochs: int) -> float:
    """Train ``model`` and return the seconds it took."""
    start = time.perf_counter()
    model.train(max_epochs=epochs, enable_progress_bar=False)
    return time.perf_counter() - start


def reference_mapping(mdata, is_query: np.ndarray, epochs: dict[str, int]) -> dict[str, Any]:
    """Train on the reference samples, map the query samples; labels, latents, times."""
    import scvi

    from omnivi.model import OmniVI

    reference, query = subset(mdata, ~is_query), subset(mdata, is_query)
    scvi.settings.seed = SEED
    OmniVI.setup_mudata(
        reference, batch_key=BATCH_KEY, labels_key=LABEL_KEY, modalities=MODALITIES
    )
    model = OmniVI(reference)
    reference_seconds = timed_train(model, epochs["reference"])
    start = time.perf_counter()
    prepared = OmniVI.prepare_query_mudata(query, model)
    query_model = OmniVI.load_query_data(prepared, model)
    query_seconds = timed_train(query_model, epochs["query"]) + time.perf_counter() - start
    latent = np.zeros((mdata.n_obs, model.module.n_latent), dtype=np.float32)
    latent[~is_query] = model.get_latent_representation()
    latent[is_query] = query_model.get_latent_representation()
    return {
        "predicted": query_model.predict(),
        "latent": latent,
        "seconds": {"reference": reference_seconds, "query": query_seconds},
    }


def from_scratch(mdata, is_query: np.ndarray, epochs: dict[str, int]) -> dict[str, Any]:
    """Train on all samples with the query's labels hidden; labels, latents, time."""
    import scvi

    from omnivi.model import OmniVI

    data = subset(mdata, np.ones(mdata.n_obs, dtype=bool))
    labels = data.obs[LABEL_KEY].astype(str).to_numpy()
    labels[is_query] = UNLABELED
    data.obs["labels_known"] = labels
    scvi.settings.seed = SEED
    OmniVI.setup_mudata(
        data,
        batch_key=BATCH_KEY,
        labels_key="labels_known",
        unlabeled_category=UNLABELED,
        modalities=MODALITIES,
    )
    model = OmniVI(data)
    seconds = timed_train(model, epochs["scratch"])
    return {
        "predicted": model.predict(indices=np.flatnonzero(is_query)),
        "latent": model.get_latent_representation(),
        "seconds": {"all samples": seconds},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both ways, scored side by side."""
    quiet_libraries()
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    started = time.perf_counter()
    mdata = load(args.data_dir)
    is_query = mdata.obs[BATCH_KEY].isin(QUERY_SAMPLES).to_numpy()
    truth = mdata.obs[LABEL_KEY].to_numpy()[is_query]
    results: dict[str, Any] = {"labels": {}, "seconds": {}}
    latents = {}
    for name, method in (("reference mapping", reference_mapping), ("from scratch", from_scratch)):
        print(f"--- {name}", flush=True)
        outcome = method(mdata, is_query, epochs)
        results["labels"][name] = labels_scores(truth, outcome["predicted"])
        results["seconds"][name] = outcome["seconds"]
        latents[name] = outcome["latent"]
        print(f"  {results['labels'][name]}, {outcome['seconds']}", flush=True)
    latents["PCA (unintegrated)"] = unintegrated_pca(mdata)
    results["scib"] = scib_scores(mdata.obs, latents, BATCH_KEY, LABEL_KEY, "PCA (unintegrated)")
    results.update(
        machine=machine_info(),
        quick=args.quick,
        epochs=epochs,
        cells={"reference": int((~is_query).sum()), "query": int(is_query.sum())},
        wall_seconds=time.perf_counter() - started,
    )
    return results


def markdown_report(results: dict) -> str:
    """The results as a markdown table."""
    machine = results["machine"]
    out = ["# omnivi reference mapping benchmark", ""]
    if results["quick"]:
        out += ["**Quick smoke run (few epochs): not a benchmark result.**", ""]
    out += [
        f"`{DATASET}` RNA + ATAC; reference samples 09A-09I ({results['cells']['reference']} "
        f"cells), query {', '.join(QUERY_SAMPLES)} ({results['cells']['query']} cells). "
        f"{machine['cores']} cores, torch {machine['torch']}, scvi-tools "
        f"{machine['scvi-tools']}, omnivi {machine['omnivi']}; {machine['date']}; total "
        f"{results['wall_seconds'] / 60:.1f} min; epochs {results['epochs']}.",
        "",
        "| way | query accuracy | query macro F1 | batch correction | bio conservation | "
        "scib total | training time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, scib in results["scib"].items():
        labels = results["labels"].get(name)
        seconds = results["seconds"].get(name, {})
        times = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) or "-"
        label_cells = f"{labels['accuracy']:.3f} | {labels['macro_f1']:.3f}" if labels else "- | -"
        out.append(
            f"| {name} | {label_cells} | {scib['Batch correction']:.3f} | "
            f"{scib['Bio conservation']:.3f} | {scib['Total']:.3f} | {times} |"
        )
    out += ["", "scib-metrics on all 12 samples, unscaled, the PCA as the unintegrated baseline."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    command_line("mapping", __doc__.split("\n\n")[0], run, markdown_report)
