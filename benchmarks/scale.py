"""Scale: one epoch of OmniVI, TOTALVI and SCVI on 10k, 100k and 1M simulated cells.

Simulated RNA (2,000 genes) + protein (30) counts, sparse RNA, generated block by block and
written once to ``benchmarks/runs/scale/`` (not under version control). Each fit runs in a
process of its own, at batch size 256 for every method (the issue's fixed setting; every other
option is the model's own), for one epoch, and records the epoch's seconds (from the start
to the end of the training epoch, without set-up), training cells per second, and the
process's peak resident memory:

- from memory: the MuData (RNA + protein) read into memory; OmniVI, TOTALVI, SCVI (RNA);
- from disk: the MuData backed by its ``.h5mu`` (``backed=True``) for OmniVI and TOTALVI, the
  RNA as an AnnData backed by its ``.h5ad`` (``backed="r"``) for SCVI, read from the file as
  each model does: scvi-tools a minibatch's cells one at a time, OmniVI windows of
  consecutive cells;
- from a TileDB-SOMA store (``soma``): the RNA written once with ``tiledbsoma.io.from_h5ad``
  and streamed by scvi-tools' ``TileDBDataModule`` (the ``ondisk`` extra), OmniVI and SCVI
  built with ``registry=datamodule.registry``, the path to atlases larger than memory;
  ``soma_8192`` the same with 8,192 cells per read instead of tiledbsoma-ml's 65,536, and
  ``soma_8192_512`` with them read as chunks of 512 consecutive cells instead of 64;
- two processes: OmniVI from memory under Lightning's DDP (``strategy="ddp"``, two CPU
  processes of one thread each, on the same cores as the one-process fit), the figure a
  multi-device run starts from. Peak memory is that of the first process.

Targets: time linear in cells (the 1M epoch within 1.2x of 100 times the 10k epoch's time per
cell), peak memory from disk at 1M at most 1.5x the 10k figure, OmniVI at least 1.5x
TOTALVI's cells/s at every size.

Usage::

    . .venv/bin/activate
    python benchmarks/scale.py                      # 10k, 100k, 1M cells (about an hour)
    python benchmarks/scale.py --sizes 10000 100000
    python benchmarks/scale.py --quick              # 2k and 5k cells, to a temporary folder
    python benchmarks/scale.py --fits omnivi:soma scvi:soma   # these fits only, merged into
                                                    # the stored results (each row: its commit)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_info

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs" / "scale"
N_GENES, N_PROTEINS, N_TYPES, N_BATCHES = 2_000, 30, 12, 4
BLOCK = 20_000
BATCH_SIZE = 256
#: (method, data source) pairs of a run.
FITS = [
    ("omnivi", "memory"),
    ("totalvi", "memory"),
    ("scvi", "memory"),
    ("omnivi", "disk"),
    ("totalvi", "disk"),
    ("scvi", "disk"),
    ("omnivi", "soma"),
    ("scvi", "soma"),
    ("omnivi", "soma_8192"),
    ("scvi", "soma_8192"),
    ("omnivi", "soma_8192_512"),
    ("scvi", "soma_8192_512"),
    ("omnivi", "ddp2"),
]
#: tiledbsoma-ml's read options of each SOMA source (cells per read, consecutive cells per
#: random chunk of a read); none: its defaults (65,536 and 64).
SOMA_READS = {
    "soma": {},
    "soma_8192": {"io_batch_size": 8192},
    "soma_8192_512": {"io_batch_size": 8192, "shuffle_chunk_size": 512},
}
#: Sources read from disk, whose peak memory must stay bounded.
DISK_SOURCES = ("disk", *SOMA_READS)


# ------------------------------------------------------------------------ simulation
def simulate(n_cells: int, folder: Path, seed: int = 0) -> None:
    """Write ``n_cells`` simulated CITE-seq cells: ``cite.h5mu``, RNA ``rna.h5ad`` and ``soma``.

    Cell types differ in a gamma-distributed gene profile and in protein levels; batches
    scale library sizes and add a protein background. RNA is generated ``BLOCK`` cells at a
    time into a CSR matrix (about 10% non-zero), so memory holds the sparse data only.
    """
    import anndata as ad
    import mudata as md
    import pandas as pd
    from scipy import sparse

    rng = np.random.default_rng(seed)
    profiles = rng.gamma(0.25, 1.0, size=(N_TYPES, N_GENES))
    profiles /= profiles.sum(axis=1, keepdims=True)
    protein_levels = rng.gamma(2.0, 20.0, size=(N_TYPES, N_PROTEINS))
    batch_depth = rng.uniform(0.7, 1.3, size=N_BATCHES)
    batch_background = rng.uniform(2.0, 10.0, size=(N_BATCHES, N_PROTEINS))
    types = rng.integers(N_TYPES, size=n_cells)
    batches = rng.integers(N_BATCHES, size=n_cells)
    blocks, proteins = [], []
    for start in range(0, n_cells, BLOCK):
        rows = slice(start, min(start + BLOCK, n_cells))
        library = rng.lognormal(np.log(400), 0.4, size=rows.stop - rows.start)
        library *= batch_depth[batches[rows]]
        rates = profiles[types[rows]] * library[:, None]
        blocks.append(sparse.csr_matrix(rng.poisson(rates).astype(np.float32)))
        protein_rates = protein_levels[types[rows]] + batch_background[batches[rows]]
        proteins.append(rng.poisson(protein_rates).astype(np.float32))
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"b{b}" for b in batches]),
            "cell_type": pd.Categorical([f"t{t}" for t in types]),
        },
        index=[f"c{i}" for i in range(n_cells)],
    )
    rna = ad.AnnData(sparse.vstack(blocks, format="csr"), obs=obs)
    rna.var_names = [f"g{i}" for i in range(N_GENES)]
    protein = ad.AnnData(np.vstack(proteins), obs=obs.copy())
    protein.var_names = [f"p{i}" for i in range(N_PROTEINS)]
    folder.mkdir(parents=True, exist_ok=True)
    rna.write_h5ad(folder / "rna.h5ad")
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": rna, "protein": protein})
    mdata.obs = obs.copy()
    mdata.write(folder / "cite.h5mu")
    write_soma(folder)


def write_soma(folder: Path) -> None:
    """Write ``folder``'s ``rna.h5ad`` as the TileDB-SOMA experiment ``folder/soma``."""
    import tiledbsoma.io

    tiledbsoma.io.from_h5ad(str(folder / "soma"), str(folder / "rna.h5ad"), "RNA")


def soma_datamodule(experiment, **kwargs):
    """scvi-tools' data module streaming ``experiment``'s RNA in shuffled minibatches.

    ``kwargs`` go to tiledbsoma-ml's ``ExperimentDataset`` (e.g. ``io_batch_size``).
    """
    from scvi.dataloaders import TileDBDataModule

    return TileDBDataModule(
        experiment.axis_query("RNA"),
        layer_name="data",
        batch_column_names=["batch"],
        batch_size=BATCH_SIZE,
        shuffle=True,
        seed=0,
        train_size=0.9,
        dataloader_kwargs={"num_workers": 0},
        **kwargs,
    )


# ---------------------------------------------------------------------------- worker
def build_model(method: str, data):
    """Set up ``data`` for ``method`` and build the model at its defaults."""
    import mudata as md
    import scvi

    from omnivi.model import OmniVI

    if method == "omnivi":
        if isinstance(data, md.MuData):
            OmniVI.setup_mudata(
                data,
                batch_key="batch",
                modalities={"rna_layer": "rna", "protein_layer": "protein"},
            )
        else:
            OmniVI.setup_anndata(data, batch_key="batch")
        return OmniVI(data)
    if method == "totalvi":
        scvi.model.TOTALVI.setup_mudata(
            data, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "protein"}
        )
        return scvi.model.TOTALVI(data)
    scvi.model.SCVI.setup_anndata(data, batch_key="batch")
    return scvi.model.SCVI(data)


def fit(method: str, source: str, folder: Path) -> dict | None:
    """One epoch of ``method`` on the data in ``folder``; runs in a process of its own.

    Returns ``None`` in the second process of a DDP fit (only the first one reports).
    """
    import anndata as ad
    import mudata as md
    import scvi
    import torch

    from omnivi.benchmark._training import train_model
    from omnivi.benchmark._worker import peak_rss_mib, quiet_libraries
    from omnivi.model import OmniVI

    quiet_libraries()
    scvi.settings.seed = 0
    baseline = peak_rss_mib()
    options = {"max_epochs": 1, "batch_size": BATCH_SIZE}
    if source in SOMA_READS:
        import tiledbsoma

        experiment = tiledbsoma.Experiment.open(str(folder / "soma"))
        datamodule = soma_datamodule(experiment, **SOMA_READS[source])
        n_cells = datamodule.n_obs
        loaded = peak_rss_mib()
        model_cls = OmniVI if method == "omnivi" else scvi.model.SCVI
        model = model_cls(registry=datamodule.registry)
        options["datamodule"] = datamodule
    else:
        on_disk = source == "disk"
        if method == "scvi":
            data = ad.read_h5ad(folder / "rna.h5ad", backed="r" if on_disk else None)
        else:
            data = md.read_h5mu(folder / "cite.h5mu", backed=on_disk)
        n_cells = data.n_obs
        loaded = peak_rss_mib()
        model = build_model(method, data)
    if source == "ddp2":
        torch.set_num_threads(1)  # each of the two processes on one of the cores
        options |= {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}
    record = train_model(model, method, (), **options)
    if model.trainer is not None and model.trainer.global_rank != 0:
        return None
    return {
        "method": method,
        "source": source,
        "n_cells": int(n_cells),
        "epoch_seconds": record["median_epoch_seconds"],
        "train_seconds": record["train_seconds"],
        "n_train_cells": record["n_train_cells"],
        "cells_per_second": record["steady_cells_per_second"],
        "rss_baseline_mib": baseline,
        "rss_after_reading_mib": loaded,
        "rss_peak_mib": peak_rss_mib(),
    }


def run_fit(method: str, source: str, folder: Path) -> dict:
    """Run :func:`fit` in a new Python process and return its record (or the error)."""
    command = [sys.executable, __file__, "--fit", method, source, str(folder)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"method": method, "source": source, "error": done.stderr[-3000:]}
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["process_seconds"] = time.perf_counter() - started
    return record


# ---------------------------------------------------------------------------- report
def targets(fits: list[dict]) -> list[dict]:
    """The issue's three targets, each with the figures that decide it."""
    ok = [f for f in fits if "error" not in f]

    def get(method, source, n):
        return next(
            (f for f in ok if (f["method"], f["source"], f["n_cells"]) == (method, source, n)),
            None,
        )

    sizes = sorted({f["n_cells"] for f in ok})

    def extremes(method, source):
        """The fits of ``method`` from ``source`` at its smallest and largest size."""
        own = sorted(f["n_cells"] for f in ok if (f["method"], f["source"]) == (method, source))
        if len(own) < 2:
            return None, None, 0, 0
        return get(method, source, own[0]), get(method, source, own[-1]), own[0], own[-1]

    rows = []
    for method, source in FITS:
        a, b, small, large = extremes(method, source)
        if a and b:
            per_cell_small = a["epoch_seconds"] / small
            ratio = b["epoch_seconds"] / (per_cell_small * large)
            rows.append(
                {
                    "target": f"{method} ({source}): epoch time linear in cells",
                    "figure": f"{large:,} cells take {ratio:.2f}x {large / small:g} times the "
                    f"{small:,}-cell epoch",
                    "met": ratio <= 1.2,
                }
            )
    for method, source in ((m, s) for s in DISK_SOURCES for m in ("omnivi", "totalvi", "scvi")):
        a, b, small, large = extremes(method, source)
        if a and b:
            ratio = b["rss_peak_mib"] / a["rss_peak_mib"]
            rows.append(
                {
                    "target": f"{method} from {source}: peak memory at {large:,} <= 1.5x "
                    f"{small:,}",
                    "figure": f"{b['rss_peak_mib']:,.0f} / {a['rss_peak_mib']:,.0f} MiB = "
                    f"{ratio:.2f}x",
                    "met": ratio <= 1.5,
                }
            )
    for source, n in ((s, n) for s in ("memory", "disk") for n in sizes):
        a, b = get("omnivi", source, n), get("totalvi", source, n)
        if a and b:
            ratio = a["cells_per_second"] / b["cells_per_second"]
            rows.append(
                {
                    "target": f"OmniVI >= 1.5x TOTALVI's cells/s at {n:,} cells ({source})",
                    "figure": f"{a['cells_per_second']:,.0f} / {b['cells_per_second']:,.0f} = "
                    f"{ratio:.2f}x",
                    "met": ratio >= 1.5,
                }
            )
    for n in sizes:
        a, b = get("omnivi", "memory", n), get("omnivi", "ddp2", n)
        if a and b:
            rows.append(
                {
                    "target": f"(a figure, not a target) OmniVI, 2 DDP processes / 1, {n:,} cells",
                    "figure": f"{b['cells_per_second']:,.0f} / {a['cells_per_second']:,.0f} "
                    f"cells/s = {b['cells_per_second'] / a['cells_per_second']:.2f}x",
                    "met": None,
                }
            )
    return rows


def report(results: dict) -> str:
    """Markdown tables of the fits and the targets."""
    lines = [
        "# Scale benchmark",
        "",
        f"Written by `benchmarks/scale.py` on {results['machine']['date']} "
        f"({results['machine']['cpu']}, {results['machine']['cores']} cores; each row names "
        f"the omnivi commit it ran at). Simulated RNA ({N_GENES:,} genes, "
        f"sparse) + protein ({N_PROTEINS}); one epoch at batch size {BATCH_SIZE} per fit, each "
        "in its own process; epoch seconds without set-up; peak resident memory of the process.",
        "",
        "| cells | method | data | epoch s | train cells/s | MiB after reading | peak MiB "
        "| commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in results["fits"]:
        if "error" in f:
            lines.append(
                f"| {f.get('n_cells', '-')} | {f['method']} | {f['source']} | failed "
                f"| - | - | - | {f.get('commit')} |"
            )
            continue
        lines.append(
            f"| {f['n_cells']:,} | {f['method']} | {f['source']} | {f['epoch_seconds']:.1f} | "
            f"{f['cells_per_second']:,.0f} | {f['rss_after_reading_mib']:,.0f} | "
            f"{f['rss_peak_mib']:,.0f} | {f.get('commit')} |"
        )
    lines += ["", "| target | figure | met |", "|---|---|---|"]
    for row in results["targets"]:
        met = "-" if row["met"] is None else "yes" if row["met"] else "NO"
        lines.append(f"| {row['target']} | {row['figure']} | {met} |")
    failed = [f for f in results["fits"] if "error" in f]
    for f in failed:
        last = f["error"].strip().splitlines()[-1] if f["error"].strip() else "?"
        lines.append(f"\n- {f['method']} ({f['source']}) failed: `{last}`")
    return "\n".join(lines) + "\n"


def kept_fits(stored: dict, new: list[dict]) -> list[dict]:
    """The stored fits that ``new`` does not replace, each with the commit that ran it."""
    replaced = {(f["method"], f["source"], f["n_cells"]) for f in new}
    kept = []
    for f in stored["fits"]:
        if (f["method"], f["source"], f.get("n_cells")) not in replaced:
            kept.append({"commit": stored["machine"].get("omnivi commit"), **f})
    return kept


def main(argv: list[str] | None = None) -> None:
    """Command line: simulate the sizes, fit every method on each, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="2k and 5k cells, temp output")
    parser.add_argument(
        "--fits",
        nargs="+",
        metavar="METHOD:SOURCE",
        default=[f"{method}:{source}" for method, source in FITS],
        help="fits to run (default: all); others keep their stored results",
    )
    parser.add_argument(
        "--fit", nargs=3, metavar=("METHOD", "SOURCE", "FOLDER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.fit:
        method, source, folder = args.fit
        record = fit(method, source, Path(folder))
        if record is not None:
            print(json.dumps(record))
        return
    chosen = [tuple(name.split(":")) for name in args.fits]
    unknown = [name for name, pair in zip(args.fits, chosen, strict=True) if pair not in FITS]
    if unknown:
        parser.error(f"unknown fit(s) {unknown}; choose among {FITS}")
    sizes = [2_000, 5_000] if args.quick else args.sizes
    work = Path(tempfile.mkdtemp(prefix="omnivi-scale-")) if args.quick else RUNS
    out_dir = work if args.quick else HERE / "results"
    machine = machine_info()
    fits = []
    for n_cells in sizes:
        folder = work / f"{n_cells}"
        if not (folder / "cite.h5mu").exists():
            print(f"simulating {n_cells:,} cells", flush=True)
            simulate(n_cells, folder)
        elif not (folder / "soma").exists():  # simulated before the store was part of it
            write_soma(folder)
        for method, source in chosen:
            record = run_fit(method, source, folder)
            record.setdefault("n_cells", n_cells)
            record["commit"] = machine["omnivi commit"]
            fits.append(record)
            shown = (
                "failed"
                if "error" in record
                else (
                    f"{record['epoch_seconds']:.1f} s/epoch, {record['cells_per_second']:,.0f} "
                    f"cells/s, peak {record['rss_peak_mib']:,.0f} MiB"
                )
            )
            print(f"  {n_cells:,} {method} ({source}): {shown}", flush=True)
    stored = out_dir / "scale.json"
    if len(chosen) < len(FITS) and stored.exists():
        fits = kept_fits(json.loads(stored.read_text()), fits) + fits
        sizes = sorted({f["n_cells"] for f in fits})
    results = {"machine": machine, "sizes": sizes, "fits": fits, "targets": targets(fits)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scale.json").write_text(json.dumps(results, indent=2, default=float))
    (out_dir / "scale.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
