"""The ``omnivi`` command line: ``omnivi demo``, ``omnivi fit`` and ``omnivi benchmark``."""

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
            "expected KEY=VALUE pairs separated by commas, e.g. rna=gex,protein=adt; got "
            f"{text!r}."
        )
    return {key.strip(): value.strip() for key, value in pairs}


def _parse_epoch_caps(text: str) -> int | dict[str, int]:
    """Parse ``300`` (every neural method) or ``multivi=300,scvi=200`` (per method)."""
    if "=" not in text:
        return int(text)
    try:
        return {key: int(value) for key, value in _parse_modalities(text).items()}
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--max-epochs takes a number or METHOD=N pairs, e.g. multivi=300; got {text!r}."
        ) from error


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
    from mudata import MuData

    from omnivi._workflow import guess_modalities, integrate, report
    from omnivi.data._datasets import read_data_file

    mdata = read_data_file(args.input)
    if not isinstance(mdata, MuData):
        raise ValueError(
            f"omnivi fit reads a MuData (.h5mu); {args.input} is an AnnData. Wrap it: "
            "mudata.MuData({'rna': adata}).write('data.h5mu')."
        )
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


def run_benchmark(args: argparse.Namespace) -> dict:
    """Compare integration methods on the user's file; return the summary of each method."""
    from omnivi.benchmark import benchmark

    results = benchmark(
        args.input,
        batch_key=args.batch_key,
        label_key=args.label_key,
        modalities=args.modalities,
        layers=args.layers,
        methods=args.methods.split(",") if args.methods else None,
        out_dir=args.out,
        name=args.name,
        seeds=args.seeds,
        max_epochs=args.max_epochs,
        speed_epochs=args.speed_epochs,
        threads=args.threads,
        save_embeddings=args.save_embeddings,
        work_dir=args.work_dir,
        restart=args.restart,
    )
    return {
        method["name"]: {
            k: method["summary"]["scib"][k]
            for k in ("Bio conservation", "Batch correction", "Total")
        }
        for method in results["methods"].values()
        if method["summary"]["n_runs"]
    }


BENCHMARK_EPILOG = """\
methods (--methods, comma-separated; default: every method the data allows):
  classic     pca, harmony_pca, concat_pca, harmony_concat_pca,
              padded_pca, harmony_padded_pca (mosaic data)
  scvi-tools  scvi, scanvi (supervised, from the SCVI model), totalvi (RNA + protein),
              multivi (RNA + ATAC)
  omnivi      omnivi (VAE), omnivi_ae (autoencoder),
              omnivi_contrastive (supervised), omnicl (supervised)

Every method runs in its own process at its own defaults (plain train(): its own epochs,
early stopping, batch size, learning rate); only the seed, the thread count and the caps
of --max-epochs are set. Writes OUT/NAME.json (every figure), OUT/NAME.md (tables) and
OUT/NAME.png (UMAPs by cell type and batch). Needs: pip install 'omnivi[benchmark]'.

example:
  omnivi benchmark bmmc.h5mu --out bench/ --batch-key batch --label-key cell_type \\
      --modalities rna=rna,protein=adt --seeds 0 1 2
"""


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

    bench = commands.add_parser(
        "benchmark",
        help="compare integration methods on a file, each at its own defaults (scib-metrics)",
        description="Fit classic, scvi-tools and omnivi integration methods on one data set "
        "and score their embeddings side by side with scib-metrics.",
        epilog=BENCHMARK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("input", type=Path, help="input .h5mu or .h5ad (RNA) of raw counts")
    bench.add_argument("--out", required=True, type=Path, help="folder for the results")
    bench.add_argument("--batch-key", required=True, help="obs column of batches")
    bench.add_argument("--label-key", required=True, help="obs column of cell types")
    bench.add_argument(
        "--modalities",
        type=_parse_modalities,
        default=None,
        help="which modality is which, e.g. rna=gex,protein=adt; a subset benchmarks those "
        "alone, e.g. rna=rna (default: all, by name)",
    )
    bench.add_argument(
        "--layers",
        type=_parse_modalities,
        default=None,
        help="layer of raw counts per modality, e.g. rna=counts (default: .X)",
    )
    bench.add_argument("--methods", default=None, help="comma-separated method keys (below)")
    bench.add_argument("--seeds", type=int, nargs="+", default=[0], help="one fit per seed")
    bench.add_argument(
        "--max-epochs",
        type=_parse_epoch_caps,
        default=None,
        help="cap on epochs: N for every neural method, or per method, e.g. multivi=300; "
        "a capped row says so (default: each method's own)",
    )
    bench.add_argument(
        "--speed-epochs",
        type=int,
        default=None,
        help="also time OmniVI against each scvi-tools peer at batch size 256 for this many "
        "epochs",
    )
    bench.add_argument("--threads", type=int, default=None, help="torch threads per fit")
    bench.add_argument("--name", default=None, help="file name of the results (default: input's)")
    bench.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep each fit here; rerun with the same folder to continue an interrupted run "
        "(default: a temporary folder)",
    )
    bench.add_argument(
        "--restart",
        action="store_true",
        help="empty a --work-dir that holds the fits of another run (other data, settings or "
        "omnivi source) instead of stopping",
    )
    bench.add_argument(
        "--save-embeddings",
        action="store_true",
        help="also write NAME_embeddings.h5ad with every embedding and UMAP",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``omnivi`` command line."""
    matplotlib.use("Agg")
    # omnivi's messages only: libraries' info-level messages (scib-metrics logs to the root
    # logger) stay quiet
    logging.basicConfig(level=logging.WARNING, format="omnivi: %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            metrics = run_demo(args.out, args.n_cells, args.max_epochs, args.seed)
        elif args.command == "fit":
            metrics = run_fit(args)
        else:
            metrics = run_benchmark(args)
    except (OSError, KeyError, ValueError) as error:
        # what omnivi says about the input (a file it cannot read, a column it cannot find)
        # is the whole message a user needs; a traceback would bury it
        parser.exit(2, f"omnivi {args.command}: error: {error}\n")
    print(json.dumps(metrics, indent=2))
    logger.info("Results written to %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
