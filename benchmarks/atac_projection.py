"""The ATAC encoder's first layer: embedding bag against a dense 0/1 product, by density.

Times the forward and backward pass of the two ways :class:`omnivi.nn.ModalityEncoder`
projects a sparse (CSR) ATAC minibatch (``project_by_rows``: the embedding bag over each
cell's accessible regions; ``project_densely``: the dense 0/1 block times the weights).
Random minibatches of 256 cells, widths of 600 (``bmmc_multiome_small``), 5,000 and 25,734
(``mop_rna_atac``) regions, densities from 0.4% (``mop_rna_atac``'s peaks) to 15%
(``bmmc_multiome_small``'s). The crossover is where
:data:`omnivi.nn._encoders.DENSE_PROJECTION_DENSITY` is set. Results:
``results/atac_projection.{json,md}``.

Usage::

    . .venv/bin/activate
    python benchmarks/atac_projection.py            # about a minute
    python benchmarks/atac_projection.py --quick    # one width, to a temporary folder
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import command_line, machine_info

from omnivi.nn import ModalityEncoder
from omnivi.nn._encoders import DENSE_PROJECTION_DENSITY

NAME = "atac_projection"
N_CELLS = 256
N_HIDDEN = 128
WIDTHS = (600, 5_000, 25_734)
DENSITIES = (0.004, 0.01, 0.02, 0.05, 0.15)
REPEATS = 20


def _milliseconds(step) -> float:
    for _ in range(3):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(REPEATS):
        step()
    return (time.perf_counter() - start) / REPEATS * 1000


def time_projections(n_regions: int, density: float) -> dict[str, float]:
    """Forward + backward milliseconds of both of the encoder's products on one random CSR
    minibatch."""
    generator = torch.Generator().manual_seed(0)
    block = (torch.rand(N_CELLS, n_regions, generator=generator) < density).float()
    minibatch = block.to_sparse_csr()
    encoder = ModalityEncoder(n_regions, N_HIDDEN, sparse_input=True)

    def embedding_bag() -> None:
        encoder.project_by_rows(minibatch).sum().backward()

    def dense_product() -> None:
        encoder.project_densely(minibatch).sum().backward()

    return {
        "embedding_bag_ms": _milliseconds(embedding_bag),
        "dense_product_ms": _milliseconds(dense_product),
    }


def run(args: argparse.Namespace) -> dict:
    """Time both products at every width and density."""
    rows = []
    for n_regions in WIDTHS[:1] if args.quick else WIDTHS:
        for density in DENSITIES:
            times = time_projections(n_regions, density)
            rows.append({"n_regions": n_regions, "density": density, **times})
            print(rows[-1], flush=True)
    return {"machine": machine_info(), "threshold": DENSE_PROJECTION_DENSITY, "rows": rows}


def report(results: dict) -> str:
    """A table of both times, and which product the encoder takes at each density."""
    machine = results["machine"]
    lines = [
        "# ATAC encoder's first layer: embedding bag against dense product",
        "",
        f"`python benchmarks/atac_projection.py` ({machine['date'][:10]}, commit "
        f"{machine['omnivi commit']}; {machine['cpu']}, {machine['cores']} cores, torch "
        f"{machine['torch']}). Forward and backward of one random CSR minibatch of "
        f"{N_CELLS} cells into {N_HIDDEN} units, mean of {REPEATS} repeats. The encoder "
        f"takes the dense product from {results['threshold']:.0%} stored entries on.",
        "",
        "| regions | density | embedding bag ms | dense product ms | faster | encoder takes |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        bag, dense = row["embedding_bag_ms"], row["dense_product_ms"]
        faster = "bag" if bag < dense else "dense"
        takes = "dense" if row["density"] >= results["threshold"] else "bag"
        lines.append(
            f"| {row['n_regions']:,} | {row['density']:.1%} | {bag:.2f} | {dense:.2f} | "
            f"{faster} ({max(bag, dense) / min(bag, dense):.1f}x) | {takes} |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    command_line(NAME, __doc__.split("\n\n")[0], run, report)
