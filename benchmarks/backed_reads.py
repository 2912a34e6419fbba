"""Reading cells from a backed ``.h5ad``: per cell, by anndata and by omnivi's window reader.

On the scale benchmark's simulated RNA files (2,000 genes, sparse; ``runs/scale/<n>/``,
simulated by ``scale.py`` if absent) of 10k, 100k and 1M cells, after the file has been read
once (a warm page cache), the microseconds per cell of:

- ``anndata, random minibatch``: 256 random cells, sorted, read through the backed
  ``.X`` (what scvi-tools' loader does for a shuffled minibatch);
- ``anndata, window``: ``.X[start:start + w]`` for random starts;
- ``omnivi, window``: :class:`omnivi.data._backed.StoredCsrRows` (row pointers in memory,
  two HDF5 reads a window), which :class:`~omnivi.data.SpanReadLoader` trains from.

Usage::

    python benchmarks/backed_reads.py           # 10k, 100k, 1M cells (a few minutes)
    python benchmarks/backed_reads.py --quick   # 5k cells, to a temporary folder
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import command_line, machine_info

WINDOWS = (64, 256, 1024)
CELLS_PER_MEASURE = 16_384
MINIBATCH = 256


def _warm(path: Path) -> None:
    """Read the file once, so that every method finds it in the page cache."""
    with path.open("rb") as handle:
        while handle.read(1 << 26):
            pass


def _microseconds_per_cell(read, starts, width: int) -> float:
    began = time.perf_counter()
    for start in starts:
        read(start, width)
    return (time.perf_counter() - began) / (len(starts) * width) * 1e6


def measure(path: Path, seed: int = 0) -> list[dict]:
    """Microseconds per cell of each way of reading ``path``."""
    import anndata as ad

    from omnivi.data._backed import StoredCsrRows

    _warm(path)
    matrix = ad.read_h5ad(path, backed="r").X
    n_cells = matrix.shape[0]
    rng = np.random.default_rng(seed)
    rows = []
    minibatches = [np.sort(rng.choice(n_cells, MINIBATCH, replace=False)) for _ in range(20)]
    began = time.perf_counter()
    for cells in minibatches:
        matrix[cells]
    per_cell = (time.perf_counter() - began) / (len(minibatches) * MINIBATCH) * 1e6
    rows.append(
        {
            "n_cells": n_cells,
            "reader": "anndata, random minibatch",
            "window": 1,
            "us_per_cell": per_cell,
        }
    )
    windows = StoredCsrRows(matrix)
    for width in WINDOWS:
        starts = rng.choice(n_cells - width, max(8, CELLS_PER_MEASURE // width))
        for reader, read in (
            ("anndata, window", lambda s, w: matrix[s : s + w]),
            ("omnivi, window", lambda s, w: windows[s : s + w]),
        ):
            rows.append(
                {
                    "n_cells": n_cells,
                    "reader": reader,
                    "window": width,
                    "us_per_cell": _microseconds_per_cell(read, starts, width),
                }
            )
    return rows


def run(args) -> dict:
    from scale import RUNS, simulate

    sizes = [5_000] if args.quick else [10_000, 100_000, 1_000_000]
    work = Path(tempfile.mkdtemp(prefix="omnivi-reads-")) if args.quick else RUNS
    rows = []
    for n_cells in sizes:
        folder = work / f"{n_cells}"
        if not (folder / "rna.h5ad").exists():
            simulate(n_cells, folder)
        rows += measure(folder / "rna.h5ad")
        print(f"{n_cells:,} cells measured", flush=True)
    return {"machine": machine_info(), "rows": rows}


def report(results: dict) -> str:
    machine = results["machine"]
    lines = [
        "# Reading cells from a backed .h5ad",
        "",
        f"Written by `benchmarks/backed_reads.py` at omnivi commit {machine['omnivi commit']} "
        f"({machine.get('cpu', '')}, {machine.get('cores', '')} cores), warm page cache. "
        "Microseconds per cell read; window = consecutive rows per read (1: a random "
        f"minibatch of {MINIBATCH} cells).",
        "",
        "| cells | reader | window | us per cell |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['n_cells']:,} | {row['reader']} | {row['window']} | "
            f"{row['us_per_cell']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    command_line("backed_reads", __doc__.split("\n\n")[0], run, report)
