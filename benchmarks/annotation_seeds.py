"""How much the annotation benchmark's figures move with the training seed alone.

The annotation benchmark (``annotation.py``) trains each model once, with seed 0. This runs
its annotation protocol (train on samples 09A-09I of ``mop_rna_atac`` RNA, predict 09J-09L)
for OmniVI with the contrastive objectives and for OmniCL over several seeds, with the same
data, epochs and scoring, and reports each seed's accuracy, balanced accuracy and macro F1
with their mean and range: the yardstick for telling a change of the model from the noise.

Usage::

    python benchmarks/annotation_seeds.py              # seeds 0, 1, 2
    python benchmarks/annotation_seeds.py --quick      # smoke test: few epochs, temp folder
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import command_line, machine_info, quiet_libraries
from annotation import (
    DATASET,
    EPOCHS,
    LABEL_KEY,
    QUICK_EPOCHS,
    TEST_SAMPLES,
    classification_scores,
    fit_omnicl,
    fit_omnivi,
    load_rna,
    split,
)

SEEDS = (0, 1, 2)
MEASURES = ("accuracy", "balanced_accuracy", "macro_f1")
MODELS = {"OmniVI": fit_omnivi, "OmniCL": fit_omnicl}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fit each model once per seed and score its predictions of the held-out samples."""
    import scvi

    quiet_libraries()
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    started = time.perf_counter()
    reference, query = split(load_rna(args.data_dir))
    truth = query.obs[LABEL_KEY].to_numpy()
    per_seed: dict[str, dict[str, dict[str, float]]] = {name: {} for name in MODELS}
    for seed in SEEDS:
        for name, fit in MODELS.items():
            scvi.settings.seed = seed
            model = fit(reference.copy(), epochs[name])
            scores = classification_scores(truth, model.predict(query))
            per_seed[name][str(seed)] = {m: float(scores[m]) for m in MEASURES}
            print(f"  seed {seed}, {name}: {per_seed[name][str(seed)]}", flush=True)
    summary = {
        name: {
            m: {
                "mean": float(np.mean([s[m] for s in seeds.values()])),
                "min": float(np.min([s[m] for s in seeds.values()])),
                "max": float(np.max([s[m] for s in seeds.values()])),
            }
            for m in MEASURES
        }
        for name, seeds in per_seed.items()
    }
    return {
        "per_seed": per_seed,
        "summary": summary,
        "epochs": {name: epochs[name] for name in MODELS},
        "machine": machine_info(),
        "quick": args.quick,
        "wall_seconds": time.perf_counter() - started,
    }


def markdown_report(results: dict) -> str:
    """Per-seed figures and their mean and range, as markdown."""
    machine = results["machine"]
    out = ["# omnivi annotation benchmark: spread over training seeds", ""]
    if results["quick"]:
        out += ["**Quick smoke run (few epochs): not a benchmark result.**", ""]
    out += [
        f"`{DATASET}` RNA; train on samples 09A-09I, test on {', '.join(TEST_SAMPLES)}, as "
        f"in `annotation.md`; seeds {', '.join(map(str, SEEDS))}. omnivi "
        f"{machine['omnivi']} (commit {machine['omnivi commit']}), "
        f"{machine['cores']} cores; {machine['date']}; total "
        f"{results['wall_seconds'] / 60:.1f} min. Epochs: "
        + ", ".join(f"{k} {v}" for k, v in results["epochs"].items())
        + ".",
        "",
        "| model | measure | " + " | ".join(f"seed {s}" for s in SEEDS) + " | mean | range |",
        "|---|---|" + "---|" * len(SEEDS) + "---|---|",
    ]
    for name, seeds in results["per_seed"].items():
        for m in MEASURES:
            s = results["summary"][name][m]
            out.append(
                f"| {name} | {m.replace('_', ' ')} | "
                + " | ".join(f"{seeds[str(seed)][m]:.3f}" for seed in SEEDS)
                + f" | {s['mean']:.3f} | {s['max'] - s['min']:.3f} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    command_line("annotation_seeds", __doc__.split("\n\n")[0], run, markdown_report)
