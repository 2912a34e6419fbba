"""The benchmark's summaries: figures over seeds, the Markdown report, the UMAP picture."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from omnivi import pl
from omnivi.benchmark._methods import METHODS

#: scib-metrics' aggregate scores (the other keys of a score table are single metrics).
AGGREGATES = ("Bio conservation", "Batch correction", "Total")

#: Whose lead the report states, in each group: OmniVI's models against the rest.
OMNIVI_FAMILY = "omnivi"


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One method's figures over its seeds: mean scib scores and their range, median costs.

    Parameters
    ----------
    runs
        The method's records, one per seed, with their ``"scib"`` scores.
    """
    ok = [run for run in runs if run["status"] == "ok" and run.get("scib")]
    summary: dict[str, Any] = {
        "n_runs": len(ok),
        "errors": [run["error"] for run in runs if run["status"] != "ok"],
    }
    if not ok:
        return summary
    totals = [run["scib"]["Total"] for run in ok]
    summary.update(
        scib={k: float(np.mean([run["scib"][k] for run in ok])) for k in ok[0]["scib"]},
        total_min=float(min(totals)),
        total_max=float(max(totals)),
        total_std=float(np.std(totals)),
        seconds=_median([run["seconds"] for run in ok]),
        rss_peak_mib=_median([run["rss_peak_mib"] for run in ok]),
    )
    trainings = [run["training"] for run in ok if run.get("training")]
    if trainings:
        summary["training"] = {
            "batch_size": trainings[0]["batch_size"],
            "default_epochs": trainings[0]["default_epochs"],
            "max_epochs": trainings[0]["max_epochs"],
            "epochs_run": [t["epochs_run"] for t in trainings],
            "ended_by": sorted({t["ended_by"] for t in trainings}),
            "capped": any(t["capped"] for t in trainings),
            "train_seconds": _median([t["train_seconds"] for t in trainings]),
            "cells_per_second": _median([t["cells_per_second"] for t in trainings]),
            "curve": trainings[0]["curve"],
            "final_slope": _median([t["final_slope"] for t in trainings]),
        }
    return summary


# ----------------------------------------------------------------------------- tables
def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _epochs(epochs: list[int]) -> str:
    if len(set(epochs)) == 1:
        return str(epochs[0])
    return "/".join(map(str, epochs)) if len(epochs) <= 3 else f"{min(epochs)}-{max(epochs)}"


def _total(summary: dict[str, Any]) -> str:
    total = f"**{summary['scib']['Total']:.3f}**"
    if summary["n_runs"] > 1:
        total += f" ({summary['total_min']:.3f}-{summary['total_max']:.3f})"
    return total


def _scored(results: dict[str, Any], supervised: bool) -> list[tuple[str, dict[str, Any]]]:
    """Return the group's methods that scored, best total first."""
    group = [
        (key, method)
        for key, method in results["methods"].items()
        if method["supervised"] == supervised and method["summary"]["n_runs"]
    ]
    return sorted(group, key=lambda item: -item[1]["summary"]["scib"]["Total"])


METHOD_COLUMNS = [
    "method",
    "family",
    "batch size",
    "epochs run",
    "ended by",
    "fit s",
    "train cells/s",
    "peak RSS MiB",
    "scib bio",
    "scib batch",
    "scib total",
]


def method_rows(results: dict[str, Any], supervised: bool) -> list[list[str]]:
    """One row per method of the group (supervised or not), best total first."""
    rows = []
    for _, method in _scored(results, supervised):
        summary = method["summary"]
        training = summary.get("training")
        scib = summary["scib"]
        cost = [
            _number(summary["seconds"], 1),
            "-",
        ]
        fitted = ["-", "-", "-"]
        if training:
            fitted = [
                str(training["batch_size"]),
                _epochs(training["epochs_run"]),
                "; ".join(training["ended_by"]),
            ]
            cost = [
                _number(training["train_seconds"], 1),
                _number(training["cells_per_second"]),
            ]
        rows.append(
            [
                method["name"],
                method["family"],
                *fitted,
                *cost,
                _number(summary["rss_peak_mib"]),
                f"{scib['Bio conservation']:.3f}",
                f"{scib['Batch correction']:.3f}",
                _total(summary),
            ]
        )
    return rows


def standing(results: dict[str, Any], supervised: bool) -> list[str]:
    """Sentences on where each omnivi model stands against the best other method."""
    group = _scored(results, supervised)
    others = [(k, m) for k, m in group if m["family"] != OMNIVI_FAMILY]
    if not others:
        return []
    _best_key, best = others[0]
    best_total = best["summary"]["scib"]["Total"]
    lines = []
    for rank, (_, method) in enumerate(group, start=1):
        if method["family"] != OMNIVI_FAMILY:
            continue
        total = method["summary"]["scib"]["Total"]
        difference = total - best_total
        where = "ahead of" if difference > 0 else "behind" if difference < 0 else "level with"
        lines.append(
            f"- {method['name']} ({total:.3f}) is **{where}** the best other "
            f"{'supervised' if supervised else 'unsupervised'} method, {best['name']} "
            f"({best_total:.3f}), by {abs(difference):.3f}; rank {rank} of {len(group)}."
        )
    return lines


SPEED_COLUMNS = [
    "peer",
    "batch size",
    "epochs",
    "OmniVI train cells/s",
    "peer train cells/s",
    "speed ratio",
    "target",
    "OmniVI peak RSS MiB",
    "peer peak RSS MiB",
    "result",
]


def speed_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per peer of the speed comparison."""
    rows = []
    for row in results["speed"]:
        peer = results["methods"].get(row["peer"], {}).get("name", row["peer"])
        runs = row["runs"]
        if "ratio" not in row:
            errors = "; ".join(r["error"] for r in runs.values() if r["status"] != "ok")
            rows.append([peer, str(row["batch_size"]), str(row["epochs"]), *["-"] * 6, errors])
            continue
        omni, other = runs["omnivi"], runs[row["peer"]]
        target = row["target_ratio"]
        verdict = "-" if target is None else "PASS" if row["passed"] else "FAIL"
        rows.append(
            [
                peer,
                str(row["batch_size"]),
                str(row["epochs"]),
                _number(omni["training"]["cells_per_second"]),
                _number(other["training"]["cells_per_second"]),
                f"{row['ratio']:.2f}x",
                "-" if target is None else f">= {target:g}x, memory <= peer's",
                _number(omni["rss_peak_mib"]),
                _number(other["rss_peak_mib"]),
                verdict,
            ]
        )
    return rows


def metric_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Every scib metric of every method (mean over seeds)."""
    scored = [m for m in results["methods"].values() if m["summary"]["n_runs"]]
    if not scored:
        return [], []
    metrics = [k for k in scored[0]["summary"]["scib"] if k not in AGGREGATES]
    header = ["method", *metrics, *AGGREGATES]
    rows = [
        [
            m["name"] + (" (supervised)" if m["supervised"] else ""),
            *(f"{m['summary']['scib'][k]:.3f}" for k in [*metrics, *AGGREGATES]),
        ]
        for m in scored
    ]
    return header, rows


def notes(results: dict[str, Any]) -> list[str]:
    """Capped, failed and skipped methods."""
    lines = []
    for method in results["methods"].values():
        summary = method["summary"]
        training = summary.get("training")
        if training and training["capped"]:
            slope = training["final_slope"]
            trend = (
                "no loss curve was logged"
                if slope is None
                else f"its {training['curve']} still changed by {100 * slope:+.3f}% per epoch "
                "at the end"
            )
            lines.append(
                f"- {method['name']}: capped at {training['max_epochs']} of its "
                f"{training['default_epochs']} default epochs; {trend}."
            )
        for error in summary["errors"]:
            lines.append(f"- {method['name']} failed: {error}")
    for key, reason in results["skipped"].items():
        lines.append(f"- `{key}` not run: it {reason}.")
    return lines


def markdown_report(results: dict[str, Any]) -> str:
    """Return the whole benchmark as Markdown: data, machine, tables by group, speed, notes."""
    data, machine, settings = results["data"], results["machine"], results["settings"]
    features = ", ".join(f"{m} ({n:,} features)" for m, n in data["n_features"].items())
    gpu = f", GPU {machine['gpu']}" if machine["gpu"] else ""
    unintegrated = results["methods"][settings["unintegrated"]]["name"]
    out = [
        f"# Integration benchmark: {results['name']}",
        "",
        f"`{data['name']}`: {data['n_cells']:,} cells; {features}"
        f"{'; mosaic (some cells lack a modality)' if data['mosaic'] else ''}; batch "
        f"`{data['batch_key']}` ({data['n_batches']}), label `{data['label_key']}` "
        f"({data['n_labels']}); seeds {', '.join(map(str, settings['seeds']))}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores{gpu}; Python {machine['python']}, "
        f"torch {machine['torch']}, scvi-tools {machine['scvi-tools']}, scib-metrics "
        f"{machine['scib-metrics']}, harmonypy {machine['harmonypy']}, omnivi "
        f"{machine['omnivi']}"
        + (f" (commit {machine['omnivi commit']})" if machine.get("omnivi commit") else "")
        + (f", source {machine['omnivi source']}" if machine.get("omnivi source") else "")
        + f"; {machine['date']}; {results['wall_seconds'] / 60:.1f} min in all"
        + (
            f" ({results['reused_fits']} fits reused from an earlier sitting)."
            if results.get("reused_fits")
            else "."
        ),
        "",
        "Every method runs at its own defaults: its constructor's and a plain `train()`, so its "
        "own epochs, early stopping, batch size and learning rate; only the seed differs"
        + (" and the caps listed under Notes" if settings["max_epochs"] else "")
        + ". Each fit runs in its own process: fit s is the time in `train()` (for a "
        "classic method, the time to compute it), train cells/s = training cells x epochs "
        "run / time in `train()`, peak RSS the process's peak memory. scib-metrics: "
        "default metrics, raw values (not min-max scaled), total = 0.6 bio + 0.4 batch, "
        f"{unintegrated} as the unintegrated embedding. With several seeds "
        "the scores are means, with the range of the total in brackets.",
    ]
    for supervised, title in (
        (False, "Unsupervised"),
        (True, "Supervised (they read the labels)"),
    ):
        rows = method_rows(results, supervised)
        if not rows:
            continue
        out += ["", f"## {title}", "", markdown_table(METHOD_COLUMNS, rows), ""]
        out += standing(results, supervised)
    if results["speed"]:
        out += [
            "",
            "## Speed at one batch size",
            "",
            "OmniVI and each scvi-tools peer on the same cells and modalities, in separate "
            f"runs of {results['settings']['speed_epochs']} epochs each at batch size 256 "
            "without early stopping (every other setting the model's own).",
            "",
            markdown_table(SPEED_COLUMNS, speed_rows(results)),
        ]
    header, rows = metric_rows(results)
    if rows:
        out += ["", "## Every metric", "", markdown_table(header, rows)]
    lines = notes(results)
    if lines:
        out += ["", "## Notes", "", *lines]
    out += ["", f"![UMAP of each method]({results['figure']})"]
    return "\n".join(out) + "\n"


def umap_figure(
    umaps: dict[str, np.ndarray], obs: pd.DataFrame, label_key: str, batch_key: str
) -> Figure:
    """Draw the UMAP of each method's embedding, by cell type and by batch.

    Unsupervised methods first, each group in the order classic, scvi-tools, omnivi.
    """
    families = ("classic", "scvi-tools", OMNIVI_FAMILY)
    keys = sorted(umaps, key=lambda k: (METHODS[k].supervised, families.index(METHODS[k].family)))
    named = {
        METHODS[k].name + (" (supervised)" if METHODS[k].supervised else ""): umaps[k]
        for k in keys
    }
    return pl.embedding_grid(named, obs, [label_key, batch_key])
