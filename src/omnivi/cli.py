"""The ``omnivi`` command line: ``omnivi demo`` and ``omnivi fit``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import matplotlib

logger = logging.getLogger("omnivi")


def _parse_modalities(text: str) -> dict[str, str]:
    """Parse ``rna=gex,protein=adt`` into ``{"rna": "gex", "protein": "adt"}``."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise argparse.ArgumentTypeError(
            "--modalities takes MODALITY=NAME pairs separated by commas, e.g. "
            f"rna=gex,protein=adt; got {text!r}."
        )
    return {modality.strip(): name.strip() for modality, name in pairs}


def _pca_baseline(mdata, n_comps: int = 20):
    """PCA of log-normalised RNA: the usual embedding OmniVI is compared with."""
    import scanpy as sc

    rna = mdata["rna"].copy()
    sc.pp.normalize_total(rna, target_sum=1e4)
    sc.pp.log1p(rna)
    sc.pp.pca(rna, n_comps=n_comps, random_state=0)
    return rna.obsm["X_pca"]


def run_demo(out: Path, n_cells: int, max_epochs: int | None, seed: int) -> dict:
    """Simulate CITE-seq data, integrate it, and write the results into ``out``."""
    import scvi

    from omnivi import tl
    from omnivi._workflow import integrate, report
    from omnivi.data import RARE_TYPE, simulate_cite_seq

    scvi.settings.seed = seed
    logger.info("Simulating %d CITE-seq cells (3 batches, 6 cell types + a rare one)...", n_cells)
    mdata = simulate_cite_seq(n_cells=n_cells, seed=seed)
    start = time.perf_counter()
    model = integrate(
        mdata, {"rna": "rna", "protein": "protein"}, batch_key="batch", max_epochs=max_epochs
    )
    seconds = time.perf_counter() - start
    labels = mdata.obs["cell_type"].to_numpy()
    pca = _pca_baseline(mdata)
    latent = mdata.obsm["X_omnivi"]
    comparison = {
        "train_seconds": round(seconds, 1),
        "knn_label_accuracy_pca": tl.knn_label_accuracy(pca, labels),
        "rare_population_recall_omnivi": tl.label_recall(latent, labels, RARE_TYPE),
        "rare_population_recall_pca": tl.label_recall(pca, labels, RARE_TYPE),
        "batch_mixing_entropy_pca": tl.batch_mixing_entropy(pca, mdata.obs["batch"]),
    }
    metrics = report(model, mdata, out, "batch", "cell_type", extra_metrics=comparison)
    mdata.write(out / "demo.h5mu")
    return metrics


def run_fit(args: argparse.Namespace) -> dict:
    """Integrate the user's MuData and write it, with figures next to it."""
    import mudata as md

    from omnivi._workflow import guess_modalities, integrate, report

    mdata = md.read_h5mu(args.input)
    modalities = args.modalities or guess_modalities(mdata)
    logger.info("Modalities: %s", modalities)
    model = integrate(
        mdata,
        modalities,
        batch_key=args.batch_key,
        labels_key=args.labels_key,
        max_epochs=args.max_epochs,
        latent_distribution=args.latent_distribution,
    )
    figures = Path(args.figures) if args.figures else Path(args.out).with_suffix("")
    metrics = report(model, mdata, figures, args.batch_key, args.labels_key)
    mdata.write(args.out)
    if args.save_model:
        model.save(args.save_model, save_anndata=False, overwrite=True)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``omnivi`` command."""
    parser = argparse.ArgumentParser(prog="omnivi", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="simulate CITE-seq data with batches and a rare population, integrate it"
    )
    demo.add_argument("--out", required=True, type=Path, help="folder for the results")
    demo.add_argument("--n-cells", type=int, default=3000)
    demo.add_argument("--max-epochs", type=int, default=150, help="cap on epochs")
    demo.add_argument("--seed", type=int, default=0)

    fit = commands.add_parser("fit", help="integrate a MuData file (.h5mu)")
    fit.add_argument("input", type=Path, help="input .h5mu")
    fit.add_argument("--out", required=True, type=Path, help="output .h5mu with obsm['X_omnivi']")
    fit.add_argument(
        "--modalities",
        type=_parse_modalities,
        default=None,
        help="which modality is which, e.g. rna=gex,protein=adt,atac=peaks (default: by name)",
    )
    fit.add_argument("--batch-key", default=None, help="obs column of batches")
    fit.add_argument("--labels-key", default=None, help="obs column of cell types (for plots)")
    fit.add_argument("--max-epochs", type=int, default=None, help="cap on epochs")
    fit.add_argument(
        "--latent-distribution", choices=["normal", "deterministic"], default="normal"
    )
    fit.add_argument("--figures", default=None, help="folder for figures and metrics")
    fit.add_argument("--save-model", default=None, help="folder to save the trained model")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``omnivi`` command line."""
    matplotlib.use("Agg")
    logging.basicConfig(level=logging.INFO, format="omnivi: %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        metrics = run_demo(args.out, args.n_cells, args.max_epochs, args.seed)
    else:
        metrics = run_fit(args)
    print(json.dumps(metrics, indent=2))
    logger.info("Results written to %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
