"""Helpers shared by the benchmark scripts: their command line, and omnivi.benchmark's
quiet logging, machine facts and scib-metrics scoring."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from omnivi.benchmark import machine_info, scib_scores
from omnivi.benchmark._worker import quiet_libraries

__all__ = ["command_line", "machine_info", "quiet_libraries", "scib_scores"]


def command_line(
    name: str,
    description: str,
    run: Callable[[argparse.Namespace], dict],
    report: Callable[[dict], str],
    argv: list[str] | None = None,
) -> None:
    """Parse a benchmark's options, run it, write ``<name>.json`` and ``<name>.md``.

    Options: ``--quick`` (few epochs; output to a temporary folder), ``--out-dir`` (default
    ``benchmarks/results``), ``--data-dir`` (folder of the data sets).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="few epochs, temp output folder")
    parser.add_argument("--out-dir", default=None, help="default benchmarks/results")
    parser.add_argument("--data-dir", default=None, help="folder of the data sets")
    args = parser.parse_args(argv)
    quick_dir = Path(tempfile.gettempdir()) / f"omnivi-{name}-quick"
    default_dir = Path(__file__).resolve().parent / "results"
    out_dir = Path(args.out_dir or (quick_dir if args.quick else default_dir))
    results = run(args)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, default=float))
    text = report(results)
    (out_dir / f"{name}.md").write_text(text)
    print(text)
