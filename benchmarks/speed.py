"""Speed of OmniVI against each scvi-tools peer on the shared data sets, without the
integration fits.

The speed comparison of ``omnivi benchmark`` alone: OmniVI and each scvi-tools peer that
reads the same modalities (SCVI, TOTALVI, MULTIVI), on the same cells, in separate processes,
for the data set's speed epochs (``integration.DATASETS``) at batch size 256 without early
stopping, every other setting each model's own. Re-measures the speed after a change that
leaves the model's results as they were (the integration benchmark takes hours per data set).
Results: ``results/speed.{json,md}``; the README's summary shows them beside the integration
runs' own speed rows.

Usage::

    . .venv/bin/activate
    python benchmarks/speed.py              # every data set with speed epochs
    python benchmarks/speed.py --quick      # 3 epochs of the first, to a temporary folder
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import command_line, machine_info, quiet_libraries
from integration import DATASETS, _speed_table

from omnivi.benchmark._data import describe_data
from omnivi.benchmark._run import _speed_runs, prepare_work_dir, select_methods
from omnivi.data import find_data_dir

NAME = "speed"


def run(args: argparse.Namespace) -> dict:
    """Time every data set's pairs; return the rows by data set, with the machine."""
    quiet_libraries()
    data_dir = find_data_dir(args.data_dir)
    if data_dir is None:
        raise SystemExit("No data folder: pass --data-dir or set OMNIVI_DATA_DIR.")
    names = [name for name, dataset in DATASETS.items() if dataset.speed_epochs]
    results = {}
    for name in names[:1] if args.quick else names:
        dataset = DATASETS[name]
        data = describe_data(
            data_dir / dataset.file, dataset.modalities, dataset.batch_key, dataset.label_key
        )
        epochs = 3 if args.quick else dataset.speed_epochs
        print(f"{name}: speed over {epochs} epochs", flush=True)
        with tempfile.TemporaryDirectory(prefix="omnivi-speed-") as tmp:
            workdir = Path(tmp)
            prepare_work_dir(workdir, data, {"speed_epochs": epochs})
            rows = _speed_runs(data, select_methods(data, None), workdir, epochs, 0, None)
        results[name] = {"machine": machine_info(), "speed": rows}
    return results


def report(results: dict) -> str:
    """The speed table, with the commit and date each data set ran at."""
    runs = ", ".join(
        f"{name} ({r['machine']['date'][:10]}, commit {r['machine']['omnivi commit']})"
        for name, r in results.items()
    )
    machine = next(iter(results.values()))["machine"]
    return "\n".join(
        [
            "# Speed: OmniVI against each scvi-tools peer",
            "",
            f"`python benchmarks/speed.py`: {runs}; {machine['cpu']}, {machine['cores']} "
            f"cores, torch {machine['torch']}, scvi-tools {machine['scvi-tools']}. Separate "
            "runs at batch size 256 without early stopping, each data set's speed epochs "
            "(`integration.DATASETS`), every other setting the model's own.",
            "",
            _speed_table(results),
            "",
        ]
    )


if __name__ == "__main__":
    command_line(NAME, __doc__.split("\n\n")[0], run, report)
