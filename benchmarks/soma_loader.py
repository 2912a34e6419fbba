"""Memory and speed of scvi-tools' TileDBDataModule alone, at several read sizes.

A probe for the scale benchmark (``scale.py``), whose fits from a TileDB-SOMA store peak at
several GB at 1M cells: tiledbsoma-ml reads ``io_batch_size`` cells at a time and densifies
them. This script iterates the training loader of the SOMA store that ``scale.py`` wrote
(no model), in a process of its own for each read size, and records the resident memory
after the first read, its range over the minibatches that follow, the peak, and the cells
per second the loader delivers.

Usage::

    . .venv/bin/activate
    python benchmarks/scale.py --sizes 1000000 --fits omnivi:soma     # writes the store once
    python benchmarks/soma_loader.py                                   # 1M store, 65,536 and 8,192
    python benchmarks/soma_loader.py --cells 100000 --io-batch-sizes 65536 16384 4096
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import machine_info
from scale import BATCH_SIZE, soma_datamodule

HERE = Path(__file__).resolve().parent
N_MINIBATCHES = 2_000


def resident_mib() -> float:
    """Resident memory of this process now, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def probe(store: Path, io_batch_size: int) -> dict:
    """Iterate ``N_MINIBATCHES`` training minibatches of ``store``; runs in its own process."""
    import tiledbsoma

    with tiledbsoma.Experiment.open(str(store)) as experiment:
        datamodule = soma_datamodule(experiment, io_batch_size=io_batch_size)
        datamodule.setup()
        before = resident_mib()
        resident = []
        start = time.perf_counter()
        for index, _ in enumerate(datamodule.train_dataloader()):
            resident.append(resident_mib())
            if index + 1 == N_MINIBATCHES:
                break
        seconds = time.perf_counter() - start
    return {
        "io_batch_size": io_batch_size,
        "minibatches": len(resident),
        "mib_before_reading": before,
        "mib_after_first_read": resident[0],
        "mib_min_after_first": min(resident[1:]),
        "mib_max_after_first": max(resident[1:]),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cells_per_second": len(resident) * BATCH_SIZE / seconds,
    }


def report(results: dict) -> str:
    """A markdown table of the probes."""
    lines = [
        "# TileDBDataModule alone: memory and speed by read size",
        "",
        f"Written by `benchmarks/soma_loader.py` on {results['machine']['date']} "
        f"({results['machine']['cpu']}, {results['machine']['cores']} cores, omnivi commit "
        f"{results['machine'].get('omnivi commit')}). The training loader of the "
        f"{results['cells']:,}-cell SOMA store of `scale.py`, {N_MINIBATCHES:,} minibatches of "
        f"{BATCH_SIZE}, no model; resident memory in MiB.",
        "",
        "| io_batch_size | before reading | after the first read | range after it | peak "
        "| cells/s |",
        "|---|---|---|---|---|---|",
    ]
    for p in results["probes"]:
        lines.append(
            f"| {p['io_batch_size']:,} | {p['mib_before_reading']:,.0f} | "
            f"{p['mib_after_first_read']:,.0f} | {p['mib_min_after_first']:,.0f}-"
            f"{p['mib_max_after_first']:,.0f} | {p['peak_mib']:,.0f} | "
            f"{p['cells_per_second']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line: one process per read size, then the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=1_000_000, help="size of scale.py's store")
    parser.add_argument("--io-batch-sizes", type=int, nargs="+", default=[65_536, 8_192])
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(Path(args.probe[0]), int(args.probe[1]))))
        return
    store = HERE / "runs" / "scale" / str(args.cells) / "soma"
    if not store.exists():
        raise SystemExit(f"No SOMA store at {store}: run scale.py at {args.cells} cells first.")
    probes = []
    for size in args.io_batch_sizes:
        command = [sys.executable, __file__, "--probe", str(store), str(size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        probes.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"io_batch_size {size:,}: {probes[-1]}", flush=True)
    results = {"machine": machine_info(), "cells": args.cells, "probes": probes}
    out = HERE / "results"
    (out / "soma_loader.json").write_text(json.dumps(results, indent=2))
    (out / "soma_loader.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
