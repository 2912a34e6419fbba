"""Benchmark annotating a query that lacks one of the reference's modalities.

``mop_rna_atac`` (label ``cell_type``, batch ``sample``): the encoder-only ``OmniCL`` is
trained on RNA + ATAC of samples 09A-09I, once without and once with modality dropout
(``modality_dropout`` 0 and 0.2, the default). The cells of samples 09J, 09K and 09L are
annotated twice: with both modalities, and from their RNA alone (``prepare_query_anndata``
of the RNA, which the model sees as cells without ATAC). Reported: accuracy and macro F1 of
the labels of 09J-09L, and the training time.

Usage::

    . .venv/bin/activate   # with the bench extras: OMNIVI_EXTRAS=test,bench
    python benchmarks/missing_modality.py           # full run, writes benchmarks/results/
    python benchmarks/missing_modality.py --quick   # smoke test: few epochs, temp folder
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import command_line, machine_info, quiet_libraries
from mapping import (
    BATCH_KEY,
    DATASET,
    LABEL_KEY,
    MODALITIES,
    QUERY_SAMPLES,
    labels_scores,
    load,
    subset,
    timed_train,
)

DROPOUTS = (0.0, 0.2)
SEED = 0
EPOCHS, QUICK_EPOCHS = 50, 2


def load_split(data_dir: str | None):
    """Reference (09A-09I) and query (09J-09L) MuData, as the mapping benchmark reads them."""
    mdata = load(data_dir)
    query = mdata.obs[BATCH_KEY].isin(QUERY_SAMPLES).to_numpy()
    return subset(mdata, ~query), subset(mdata, query)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train one model per dropout rate; annotate the query with and without its ATAC."""
    import scvi

    from omnivi.model import OmniCL

    quiet_libraries()
    started = time.perf_counter()
    reference, query = load_split(args.data_dir)
    truth = query.obs[LABEL_KEY].astype(str).to_numpy()
    rna = query["rna"].copy()
    rna.obs = query.obs.copy()
    results: dict[str, Any] = {"models": {}}
    for dropout in DROPOUTS:
        scvi.settings.seed = SEED
        data = reference.copy()
        OmniCL.setup_mudata(data, batch_key=BATCH_KEY, labels_key=LABEL_KEY, modalities=MODALITIES)
        model = OmniCL(data, modality_dropout=dropout)
        seconds = timed_train(model, QUICK_EPOCHS if args.quick else EPOCHS)
        rna_only = OmniCL.prepare_query_anndata(rna, model)
        results["models"][f"{dropout:g}"] = {
            "train_seconds": seconds,
            "RNA + ATAC": labels_scores(truth, model.predict(query)),
            "RNA only": labels_scores(truth, model.predict(rna_only)),
        }
        print(f"  modality_dropout {dropout:g}: {results['models'][f'{dropout:g}']}", flush=True)
    results["query_cells"] = int(query.n_obs)
    results["machine"] = machine_info()
    results["quick"] = args.quick
    results["epochs"] = QUICK_EPOCHS if args.quick else EPOCHS
    results["wall_seconds"] = time.perf_counter() - started
    return results


def markdown_report(results: dict) -> str:
    """The results as a markdown table."""
    machine = results["machine"]
    out = ["# omnivi benchmark: a query without one of the reference's modalities", ""]
    if results["quick"]:
        out += ["**Quick smoke run (few epochs): not a benchmark result.**", ""]
    out += [
        f"`{DATASET}`: OmniCL trained on RNA + ATAC of samples 09A-09I ({results['epochs']} "
        f"epochs), {results['query_cells']} cells of {', '.join(QUERY_SAMPLES)} annotated. "
        f"{machine['cores']} cores, torch {machine['torch']}, scvi-tools "
        f"{machine['scvi-tools']}, omnivi {machine['omnivi']}; {machine['date']}; total "
        f"{results['wall_seconds'] / 60:.1f} min.",
        "",
        "| modality_dropout | query | accuracy | macro F1 | train s |",
        "|---|---|---|---|---|",
    ]
    for dropout, entry in results["models"].items():
        for query in ("RNA + ATAC", "RNA only"):
            s = entry[query]
            out.append(
                f"| {dropout} | {query} | {s['accuracy']:.3f} | {s['macro_f1']:.3f} | "
                f"{entry['train_seconds']:.0f} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    command_line("missing_modality", __doc__.split("\n\n")[0], run, markdown_report)
