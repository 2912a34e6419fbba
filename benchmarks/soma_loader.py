"""Memory and speed of scvi-tools' TileDBDataModule alone, by store size and read pattern.

A probe for the scale benchmark (``scale.py``), whose fits from a TileDB-SOMA store peak at
several GB at 1M cells: tiledbsoma-ml reads ``io_batch_size`` cells at a time, gathered as
chunks of ``shuffle_chunk_size`` consecutive cells from random places in the store, and
densifies them. This script iterates the training loader of the SOMA stores that
``scale.py`` wrote (no model), in a process of its own for each store size, read size and
chunk size, and records the resident memory after the first read, its range over the
minibatches that follow, the peak, and the cells per second the loader delivers.

Usage::

    . .venv/bin/activate
    python benchmarks/scale.py --sizes 1000000 --fits omnivi:soma     # writes the store once
    python benchmarks/soma_loader.py                                   # 1M store, 65,536 and 8,192
    python benchmarks/soma_loader.py --cells 10000 100000 1000000 --io-batch-sizes 8192 \
        --shuffle-chunk-sizes 64 512                      # the stores and read patterns
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from itertools import product
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


def probe(store: Path, io_batch_size: int, shuffle_chunk_size: int) -> dict:
    """Iterate ``N_MINIBATCHES`` training minibatches of ``store``; runs in its own process."""
    import tiledbsoma

    with tiledbsoma.Experiment.open(str(store)) as experiment:
        datamodule = soma_datamodule(
            experiment, io_batch_size=io_batch_size, shuffle_chunk_size=shuffle_chunk_size
        )
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
        "cells": int(store.parent.name),
        "io_batch_size": io_batch_size,
        "shuffle_chunk_size": shuffle_chunk_size,
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
        "# TileDBDataModule alone: memory and speed by store size and read pattern",
        "",
        f"Written by `benchmarks/soma_loader.py` on {results['machine']['date']} "
        f"({results['machine']['cpu']}, {results['machine']['cores']} cores, omnivi commit "
        f"{results['machine'].get('omnivi commit')}). The training loader of the SOMA stores "
        f"of `scale.py`, {N_MINIBATCHES:,} minibatches of {BATCH_SIZE} (fewer where the "
        "store's training split is smaller), no model; resident memory in MiB. Each read "
        "gathers `io_batch_size` cells as chunks of `shuffle_chunk_size` consecutive cells "
        "from random places in the store.",
        "",
        "| cells | io_batch_size | shuffle_chunk_size | chunks per read | before reading "
        "| after the first read | range after it | peak | cells/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["probes"]:
        lines.append(
            f"| {p['cells']:,} | {p['io_batch_size']:,} | {p['shuffle_chunk_size']} | "
            f"{p['io_batch_size'] // p['shuffle_chunk_size']:,} | "
            f"{p['mib_before_reading']:,.0f} | "
            f"{p['mib_after_first_read']:,.0f} | {p['mib_min_after_first']:,.0f}-"
            f"{p['mib_max_after_first']:,.0f} | {p['peak_mib']:,.0f} | "
            f"{p['cells_per_second']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line: one process per store size, read size and chunk size, then the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--io-batch-sizes", type=int, nargs="+", default=[65_536, 8_192])
    parser.add_argument(
        "--shuffle-chunk-sizes", type=int, nargs="+", default=[64], help="64: the default"
    )
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        store, size, chunk = args.probe
        print(json.dumps(probe(Path(store), int(size), int(chunk))))
        return
    probes = []
    for cells, size, chunk in product(args.cells, args.io_batch_sizes, args.shuffle_chunk_sizes):
        store = HERE / "runs" / "scale" / str(cells) / "soma"
        if not store.exists():
            raise SystemExit(f"No SOMA store at {store}: run scale.py at {cells} cells first.")
        command = [sys.executable, __file__, "--probe", str(store), str(size), str(chunk)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        probes.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{cells:,} cells, io_batch_size {size:,}, chunk {chunk}: {probes[-1]}", flush=True)
    results = {"machine": machine_info(), "probes": probes}
    out = HERE / "results"
    (out / "soma_loader.json").write_text(json.dumps(results, indent=2))
    (out / "soma_loader.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
