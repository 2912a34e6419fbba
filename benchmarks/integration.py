"""The project's integration benchmark: ``omnivi benchmark`` on each shared real data set.

Every method at its own defaults (see ``omnivi benchmark --help``); results go to
``benchmarks/results/<data set>.{json,md,png}``, and the README's summary table is rewritten
from those files after every data set.

Usage::

    . .venv/bin/activate
    python benchmarks/integration.py                             # every data set, hours
    python benchmarks/integration.py --datasets bmmc_cite_small  # one (or a few) of them
    python benchmarks/integration.py --summary                   # only rewrite the README table
    python benchmarks/integration.py --quick                     # 3 epochs, one seed, temp folder

An interrupted data set continues where it stopped when run again: each finished fit is kept
in ``benchmarks/runs/<data set>/`` (``omnivi benchmark --work-dir``).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnivi.benchmark import METHODS, benchmark
from omnivi.benchmark._report import markdown_table
from omnivi.benchmark._worker import quiet_libraries
from omnivi.data import find_data_dir

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
RUNS = ROOT / "runs"
README = ROOT.parent / "README.md"
START, END = "<!-- benchmark-summary:start -->", "<!-- benchmark-summary:end -->"


@dataclass(frozen=True)
class Dataset:
    """One run of ``omnivi benchmark`` on a shared data set.

    Parameters
    ----------
    file
        File in the shared data folder.
    modalities, batch_key, label_key
        As for ``omnivi benchmark``.
    seeds
        Several for the small sets, whose single fits are noisy: six on the two ``bmmc`` sets,
        where OmniVI's mean over seeds 0-2 and over seeds 3-5 differed by 0.008 (scib total,
        ``defaults_probe.py``), four times the gap to TOTALVI that the benchmark has to judge.
    max_epochs
        Caps of methods whose defaults would take more than about an hour here.
    speed_epochs
        Epochs of the speed comparison at batch size 256.
    """

    file: str
    modalities: dict[str, str]
    batch_key: str
    label_key: str
    seeds: tuple[int, ...] = (0,)
    max_epochs: dict[str, int] = field(default_factory=dict)
    speed_epochs: int = 20


CITE = {"rna": "rna", "protein": "adt"}
MULTIOME = {"rna": "rna", "atac": "atac"}

DATASETS: dict[str, Dataset] = {
    "bmmc_cite_small": Dataset(
        "bmmc_cite_small.h5mu", CITE, "batch", "cell_type", tuple(range(6)), speed_epochs=100
    ),
    "bmmc_multiome_small": Dataset(
        "bmmc_multiome_small.h5mu",
        MULTIOME,
        "batch",
        "cell_type",
        tuple(range(6)),
        speed_epochs=100,
    ),
    "pbmc_cite_mosaic": Dataset("pbmc_cite_mosaic.h5mu", CITE, "batch", "celltype", (0, 1, 2)),
    "mop_rna_atac_rna": Dataset("mop_rna_atac.h5mu", {"rna": "rna"}, "sample", "cell_type"),
    # MULTIVI's 500 default epochs take about 16 s each here (2.2 h): capped at 400, the
    # epochs OmniVI runs at its defaults (the floor of any cap).
    "mop_rna_atac": Dataset(
        "mop_rna_atac.h5mu", MULTIOME, "sample", "cell_type", max_epochs={"multivi": 400}
    ),
}


def run_dataset(name: str, out_dir: Path, data_dir: Path, quick: bool) -> dict[str, Any]:
    """Run ``omnivi benchmark`` on one data set; ``quick``: 3 epochs and one seed.

    Fits are kept in ``benchmarks/runs/<data set>`` (not under version control), so that a run
    that is interrupted continues where it stopped, also after commits that leave omnivi's
    source alone; fits of another run (other omnivi source, say) are deleted and the run
    starts afresh.
    ``--quick`` keeps them in a temporary folder.
    """
    dataset = DATASETS[name]
    return benchmark(
        data_dir / dataset.file,
        batch_key=dataset.batch_key,
        label_key=dataset.label_key,
        modalities=dataset.modalities,
        out_dir=out_dir,
        name=name,
        seeds=dataset.seeds[:1] if quick else dataset.seeds,
        max_epochs=3 if quick else dataset.max_epochs or None,
        speed_epochs=3 if quick else dataset.speed_epochs,
        work_dir=None if quick else RUNS / name,
        restart=True,
    )


# ---------------------------------------------------------------------- README summary
def _total(method: dict[str, Any]) -> str:
    summary = method["summary"]
    if not summary["n_runs"]:
        return "failed"
    text = f"{summary['scib']['Total']:.3f}"
    if summary["n_runs"] > 1:
        text += f" ±{summary['total_std']:.3f}"
    training = summary.get("training")
    return text + (" (capped)" if training and training["capped"] else "")


def _standing(results: dict[str, Any], supervised: bool) -> str:
    """OmniVI's default (or, with labels, the best omnivi model) against the best other."""
    scored = {
        key: m
        for key, m in results["methods"].items()
        if m["supervised"] == supervised and m["summary"]["n_runs"]
    }
    others = [m for m in scored.values() if m["family"] != "omnivi"]
    ours = [m for m in scored.values() if m["family"] == "omnivi"]
    if supervised:
        ours = sorted(ours, key=lambda m: -m["summary"]["scib"]["Total"])[:1]
    else:
        ours = [scored["omnivi"]] if "omnivi" in scored else []
    if not others or not ours:
        return "-"
    best = max(others, key=lambda m: m["summary"]["scib"]["Total"])
    difference = ours[0]["summary"]["scib"]["Total"] - best["summary"]["scib"]["Total"]
    where = "ahead of" if difference > 0 else "behind" if difference < 0 else "level with"
    return f"{ours[0]['name']} {where} {best['name']} by {abs(difference):.3f}"


def _group_table(all_results: dict[str, dict], supervised: bool) -> str:
    keys = [
        key
        for key, method in METHODS.items()
        if method.supervised == supervised
        and any(key in r["methods"] for r in all_results.values())
    ]
    header = ["data", *(METHODS[k].name for k in keys), "omnivi vs the best other"]
    rows = []
    for name, results in all_results.items():
        row = [f"[{name}](benchmarks/results/{name}.md)"]
        for key in keys:
            row.append(_total(results["methods"][key]) if key in results["methods"] else "")
        rows.append([*row, _standing(results, supervised)])
    return markdown_table(header, rows)


def _speed_table(all_results: dict[str, dict]) -> str:
    rows = []
    for name, results in all_results.items():
        for row in results["speed"]:
            if "ratio" not in row:
                continue
            omni, peer = row["runs"]["omnivi"], row["runs"][row["peer"]]
            target = row["target_ratio"]
            verdict = "-" if target is None else "PASS" if row["passed"] else "FAIL"
            rows.append(
                [
                    name,
                    METHODS[row["peer"]].name,
                    f"{omni['training']['cells_per_second']:,.0f}",
                    f"{peer['training']['cells_per_second']:,.0f}",
                    f"{row['ratio']:.2f}x" + (f" (target {target:g}x)" if target else ""),
                    f"{omni['rss_peak_mib']:,.0f} / {peer['rss_peak_mib']:,.0f}",
                    verdict,
                ]
            )
    header = [
        "data",
        "peer",
        "OmniVI train cells/s",
        "peer train cells/s",
        "ratio",
        "peak RSS MiB (OmniVI / peer)",
        "target met",
    ]
    return markdown_table(header, rows)


def _sittings(all_results: dict[str, dict]) -> str:
    """Which runs were made at which omnivi commit (and package source) on which machine."""
    runs_of: dict[str, list[str]] = {}
    for name, results in all_results.items():
        machine = results["machine"]
        source = machine.get("omnivi source")
        where = (
            f"omnivi commit {machine.get('omnivi commit') or '?'}"
            + (f" (source {source})" if source else "")
            + f" on {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}"
        )
        runs_of.setdefault(where, []).append(name)
    return "; ".join(f"{', '.join(names)} at {where}" for where, names in runs_of.items())


def _run_facts(all_results: dict[str, dict]) -> list[str]:
    dates = sorted(r["machine"]["date"][:10] for r in all_results.values())
    days = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    first = next(iter(all_results.values()))["machine"]
    batch_sizes: dict[str, int] = {}
    capped = []
    for name, results in all_results.items():
        for method in results["methods"].values():
            training = method["summary"].get("training")
            if training:
                batch_sizes.setdefault(method["name"], training["batch_size"])
                if training["capped"]:
                    capped.append(
                        f"{method['name']} on {name} was capped at {training['max_epochs']} of "
                        f"its {training['default_epochs']} default epochs (epochs run: "
                        f"{', '.join(map(str, training['epochs_run']))}; ended by "
                        f"{', '.join(sorted(set(training['ended_by'])))})"
                    )
    lines = [
        f"Runs of {days}: {_sittings(all_results)} ("
        f"scvi-tools {first['scvi-tools']}, "
        f"scib-metrics {first['scib-metrics']}, harmonypy {first['harmonypy']}). scib-metrics "
        "total (0.6 bio + 0.4 batch, raw values), mean ± standard deviation over seeds ("
        + ", ".join(f"{name} {len(r['settings']['seeds'])}" for name, r in all_results.items())
        + "). Every method at its own defaults; batch "
        "sizes, each method's own: " + ", ".join(f"{m} {b}" for m, b in batch_sizes.items()) + "."
    ]
    if capped:
        lines.append("Capped, as noted in the row: " + "; ".join(capped) + ".")
    return lines


def summary(results_dir: Path = RESULTS) -> str:
    """The README's benchmark summary, from the results of every data set run so far."""
    all_results = {
        name: json.loads((results_dir / f"{name}.json").read_text())
        for name in DATASETS
        if (results_dir / f"{name}.json").exists()
    }
    if not all_results:
        return "No benchmark results yet: run `python benchmarks/integration.py`."
    missing = [name for name in DATASETS if name not in all_results]
    pending = [f"Not run yet: {', '.join(f'`{name}`' for name in missing)}."] if missing else []
    return "\n".join(
        [
            *_run_facts(all_results),
            *pending,
            "",
            "Unsupervised (no labels):",
            "",
            _group_table(all_results, supervised=False),
            "",
            "Supervised (they read the cell-type labels):",
            "",
            _group_table(all_results, supervised=True),
            "",
            "Speed, OmniVI against each scvi-tools peer at batch size 256 on the same cells "
            "(separate runs without early stopping), in the runs above:",
            "",
            _speed_table(all_results),
            *_remeasured_speed(results_dir),
        ]
    )


def _remeasured_speed(results_dir: Path) -> list[str]:
    """The speed comparison as ``speed.py`` last measured it alone, if it has."""
    path = results_dir / "speed.json"
    if not path.exists():
        return []
    speed = json.loads(path.read_text())
    commits = sorted({r["machine"]["omnivi commit"] for r in speed.values()})
    dates = sorted({r["machine"]["date"][:10] for r in speed.values()})
    return [
        "",
        f"The same comparison measured alone (`python benchmarks/speed.py`, {', '.join(dates)}, "
        f"omnivi at commit {', '.join(commits)}; details in "
        "[results/speed.md](benchmarks/results/speed.md)):",
        "",
        _speed_table(speed),
    ]


def write_summary(results_dir: Path = RESULTS, readme: Path = README) -> None:
    """Replace the text between the README's summary markers with :func:`summary`."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block to fill.")
    block = f"{START}\n{summary(results_dir)}\n{END}"
    readme.write_text(re.sub(f"{START}.*?{END}", lambda _: block, text, flags=re.S))


def main(argv: list[str] | None = None) -> None:
    """Run the chosen data sets, then rewrite the README summary (not for quick runs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--quick", action="store_true", help="3 epochs, one seed, temp folder")
    parser.add_argument("--summary", action="store_true", help="only rewrite the README table")
    parser.add_argument("--out-dir", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the data sets")
    args = parser.parse_args(argv)
    quick_dir = Path(tempfile.gettempdir()) / "omnivi-integration-quick"
    out_dir = args.out_dir or (quick_dir if args.quick else RESULTS)
    if not args.summary:
        quiet_libraries()
        data_dir = find_data_dir(args.data_dir)
        if data_dir is None:
            raise SystemExit("No data folder: pass --data-dir or set OMNIVI_DATA_DIR.")
        for name in args.datasets:
            run_dataset(name, out_dir, data_dir, args.quick)
            if not args.quick:
                write_summary(out_dir)
    if args.summary:
        write_summary(out_dir)
    print(summary(out_dir))


if __name__ == "__main__":
    main()
