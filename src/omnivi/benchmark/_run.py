"""``omnivi.benchmark.benchmark``: fit every method in its own process, score, report."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omnivi import tl
from omnivi.benchmark._data import BenchmarkData, describe_data, load_obs
from omnivi.benchmark._methods import BASELINE, METHODS, SPEED_PEERS, SPEED_SETTINGS, Method
from omnivi.benchmark._report import markdown_report, summarise, umap_figure
from omnivi.benchmark._scoring import machine_info, scib_scores, source_digest

#: The optional dependencies, installed by ``pip install 'omnivi[benchmark]'``.
EXTRA = "omnivi[benchmark]"
EXTRA_MODULES = ("scib_metrics", "harmonypy", "muon")

#: Fits run in this order of families, so that a cap on a peer can be raised to OmniVI's epochs.
FAMILY_ORDER = ("omnivi", "scvi-tools", "classic")


def require_extras() -> None:
    """Raise ``ImportError`` naming the extra if one of its packages is missing."""
    missing = []
    for module in EXTRA_MODULES:
        try:
            with warnings.catch_warnings():  # muon's notice about scanpy's __version__
                warnings.simplefilter("ignore", FutureWarning)
                importlib.import_module(module)
        except ImportError:
            missing.append(module.replace("_", "-"))
    if missing:
        raise ImportError(
            f"omnivi benchmark needs {', '.join(missing)} (not installed). Install the "
            f"benchmark extra: pip install '{EXTRA}'."
        )


def select_methods(data: BenchmarkData, keys: Sequence[str] | None) -> list[Method]:
    """Return the methods to run: ``keys`` (checked to apply to ``data``), or all that apply.

    The unintegrated baseline, and the methods others start from (SCVI for SCANVI), are
    added. Returned in run order: omnivi first, then scvi-tools, then the classic methods.
    """
    if keys is None:
        chosen = [m for m in METHODS.values() if m.unavailable(data) is None]
    else:
        unknown = sorted(set(keys) - set(METHODS))
        if unknown:
            raise ValueError(f"Unknown method {unknown}; choose among {list(METHODS)}.")
        chosen = [METHODS[key] for key in dict.fromkeys(keys)]
        for method in chosen:
            reason = method.unavailable(data)
            if reason is not None:
                raise ValueError(f"{method.name} cannot run on this data: it {reason}.")
    required = [BASELINE[data.mosaic]] + [m.after for m in chosen if m.after]
    for key in required:
        if METHODS[key] not in chosen:
            chosen.append(METHODS[key])
    order = {key: i for i, key in enumerate(METHODS)}
    return sorted(chosen, key=lambda m: (FAMILY_ORDER.index(m.family), order[m.key]))


def epoch_caps(max_epochs: int | Mapping[str, int] | None) -> dict[str, int]:
    """Per-method epoch caps from one cap for all neural methods or a mapping by key."""
    if max_epochs is None:
        return {}
    if isinstance(max_epochs, int):
        return {key: max_epochs for key, m in METHODS.items() if m.family != "classic"}
    unknown = sorted(set(max_epochs) - set(METHODS))
    if unknown:
        raise ValueError(
            f"max_epochs names unknown method {unknown}; choose among {list(METHODS)}."
        )
    return {key: int(value) for key, value in max_epochs.items()}


def prepare_work_dir(
    work_dir: Path, data: BenchmarkData, settings: dict[str, Any], restart: bool = False
) -> None:
    """Make ``work_dir`` the home of this run's fits, or check it holds this run's.

    ``run.json`` records the data set, the settings that change a fit (epoch caps, speed
    epochs, threads) and a hash of omnivi's source (:func:`source_digest`); fits made under
    another of these are not reused: the folder is emptied if ``restart``, else an error
    says which of them differ.
    """
    run = {
        "data": json.loads(data.to_json()),
        "settings": settings,
        "omnivi source": source_digest(),
    }
    run_file = work_dir / "run.json"
    if run_file.exists():
        earlier = json.loads(run_file.read_text())
        changed = sorted(key for key in run if earlier.get(key) != run[key])
        if changed and restart:
            shutil.rmtree(work_dir)
        elif changed:
            raise ValueError(
                f"{work_dir} holds fits of another run (its {', '.join(changed)} differ), "
                f"which cannot be reused. Give another work folder, empty this one, or "
                f"restart it (`restart=True`, `--restart`)."
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    if not run_file.exists():
        run_file.write_text(json.dumps(run, indent=2))
    (work_dir / "data.json").write_text(data.to_json())


def _finished_fit(prefix: Path) -> dict[str, Any] | None:
    """Return the record of a successful fit saved under ``prefix``, else ``None``."""
    record_file = prefix.with_suffix(".json")
    if not (record_file.exists() and prefix.with_suffix(".npz").exists()):
        return None
    record = json.loads(record_file.read_text())
    return record if record["status"] == "ok" else None


def _run_worker(
    workdir: Path,
    method: Method,
    seed: int,
    tag: str,
    cap: int | None = None,
    speed_epochs: int | None = None,
    threads: int | None = None,
    reuse: bool = True,
) -> tuple[dict[str, Any], Path]:
    """Fit ``method`` in a new Python process; return its record and its output prefix.

    With ``reuse``, a successful fit already saved under the prefix is returned instead.
    """
    prefix = workdir / f"{method.key}_{tag}_s{seed}"
    finished = _finished_fit(prefix) if reuse else None
    if finished is not None:
        return {**finished, "reused": True}, prefix
    command = [
        sys.executable,
        "-m",
        "omnivi.benchmark._worker",
        str(workdir / "data.json"),
        method.key,
        str(seed),
        str(prefix),
    ]
    for option, value in (
        ("--cap", cap),
        ("--speed-epochs", speed_epochs),
        ("--threads", threads),
    ):
        if value is not None:
            command += [option, str(value)]
    completed = subprocess.run(command, check=False)
    record_file = prefix.with_suffix(".json")
    if not record_file.exists():
        return {
            "status": "failed",
            "error": f"the worker process ended with code {completed.returncode} (killed?)",
        }, prefix
    return json.loads(record_file.read_text()), prefix


def _done_line(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"    failed: {record['error']}"
    if record.get("reused"):
        return f"    reused from the work folder ({record['seconds']:.0f} s when it ran)"
    training = record.get("training")
    fitted = ""
    if training:
        fitted = (
            f", {training['epochs_run']} epochs ({training['ended_by']}), "
            f"{training['cells_per_second']:,.0f} train cells/s"
        )
    memory = f"peak RSS {record['rss_peak_mib']:,.0f} MiB"
    return f"    done in {record['seconds']:.0f} s{fitted}, {memory}"


def _aligned(prefix: Path, obs_names: pd.Index) -> np.ndarray:
    """Return the saved embedding, rows in ``obs_names`` order."""
    saved = np.load(prefix.with_suffix(".npz"))
    order = pd.Index(saved["obs_names"]).get_indexer(obs_names)
    if (order < 0).any():
        raise ValueError(f"The embedding in {prefix} misses {int((order < 0).sum())} cells.")
    return saved["embedding"][order]


def _speed_runs(
    data: BenchmarkData,
    methods: list[Method],
    workdir: Path,
    speed_epochs: int,
    seed: int,
    threads: int | None,
) -> list[dict[str, Any]]:
    """OmniVI and each scvi-tools peer on the same cells, same batch size and epochs."""
    rows = []
    selected = {m.key for m in methods}
    for peer_key, target in SPEED_PEERS.items():
        peer = METHODS[peer_key]
        if peer_key not in selected or "omnivi" not in selected:
            continue
        if peer.needs != set(data.modalities):  # OmniVI must read the same modalities
            continue
        pair = {}
        both_saved = all(  # a ratio compares runs of one sitting: reuse both or neither
            _finished_fit(workdir / f"{key}_speed_s{seed}") for key in ("omnivi", peer_key)
        )
        for method in (METHODS["omnivi"], peer):
            print(f"[speed] {method.name}: batch size 256, {speed_epochs} epochs", flush=True)
            record, _ = _run_worker(
                workdir,
                method,
                seed,
                "speed",
                speed_epochs=speed_epochs,
                threads=threads,
                reuse=both_saved,
            )
            print(_done_line(record), flush=True)
            pair[method.key] = record
        ok = all(r["status"] == "ok" for r in pair.values())
        row: dict[str, Any] = {
            "peer": peer_key,
            "target_ratio": target,
            "epochs": speed_epochs,
            **SPEED_SETTINGS,
            "runs": pair,
        }
        if ok:
            omni, other = pair["omnivi"], pair[peer_key]
            ratio = omni["training"]["cells_per_second"] / other["training"]["cells_per_second"]
            row["ratio"] = ratio
            row["memory_ratio"] = omni["rss_peak_mib"] / other["rss_peak_mib"]
            if target is not None:
                row["passed"] = bool(ratio >= target and row["memory_ratio"] <= 1.0)
        rows.append(row)
    return rows


def _fit_all(
    workdir: Path,
    selected: list[Method],
    seeds: Sequence[int],
    caps: dict[str, int],
    threads: int | None,
    obs_names: pd.Index,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, np.ndarray]]:
    """Fit every method once per seed; return the records and embeddings (``key@seed``).

    A scvi-tools peer's cap is raised to the most epochs an omnivi model ran on that seed
    (omnivi's models run first).
    """
    runs: dict[str, list[dict[str, Any]]] = {m.key: [] for m in selected}
    embeddings: dict[str, np.ndarray] = {}
    step, n_fits = 0, len(selected) * len(seeds)
    for seed in seeds:
        omnivi_epochs = 0
        for method in selected:
            step += 1
            cap = caps.get(method.key)
            if cap is not None and method.family == "scvi-tools":
                cap = max(cap, omnivi_epochs)
            print(f"[{step}/{n_fits}] {method.name}, seed {seed}", flush=True)
            record, prefix = _run_worker(workdir, method, seed, "fit", cap, threads=threads)
            print(_done_line(record), flush=True)
            record["seed"] = seed
            runs[method.key].append(record)
            if record["status"] != "ok":
                continue
            embeddings[f"{method.key}@{seed}"] = _aligned(prefix, obs_names)
            if method.family == "omnivi" and record["training"]:
                omnivi_epochs = max(omnivi_epochs, record["training"]["epochs_run"])
    return runs, embeddings


def _first_seed_embeddings(
    selected: list[Method], seeds: Sequence[int], embeddings: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Return each method's embedding of its first seed that succeeded (the ones pictured)."""
    shown = {}
    for method in selected:
        found = [
            embeddings[f"{method.key}@{s}"] for s in seeds if f"{method.key}@{s}" in embeddings
        ]
        if found:
            shown[method.key] = found[0]
    return shown


def benchmark(
    path: str | Path,
    batch_key: str,
    label_key: str,
    modalities: Mapping[str, str] | None = None,
    layers: Mapping[str, str | None] | None = None,
    methods: Sequence[str] | None = None,
    out_dir: str | Path = "omnivi_benchmark",
    name: str | None = None,
    seeds: Sequence[int] = (0,),
    max_epochs: int | Mapping[str, int] | None = None,
    speed_epochs: int | None = None,
    threads: int | None = None,
    save_embeddings: bool = False,
    work_dir: str | Path | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Compare integration methods on one data set, each at its own defaults.

    Every method (classic: PCA, concatenated per-modality PCA, Harmony; scvi-tools: SCVI,
    SCANVI, TOTALVI, MULTIVI; omnivi: OmniVI as VAE and autoencoder, with contrastive
    objectives, OmniCL) that applies to the data's modalities is fitted in a Python process
    of its own, with its constructor's defaults and a plain ``train()``: its own epochs,
    early stopping, batch size and learning rate. All embeddings are then scored together
    in one scib-metrics ``Benchmarker`` (default metrics, raw values, total = 0.6 bio + 0.4
    batch, the RNA PCA as the unintegrated embedding; the padded concatenated PCA for mosaic
    data). Supervised methods (they read the labels) are reported apart.

    Writes into ``out_dir``: ``NAME.json`` (every figure), ``NAME.md`` (the tables) and
    ``NAME.png`` (a UMAP of each method's embedding, coloured by cell type and by batch).

    Parameters
    ----------
    path
        An ``.h5mu`` (one or more modalities; cells may lack some: mosaic data) or ``.h5ad``
        (RNA) file with raw counts.
    batch_key, label_key
        ``.obs`` columns of batches and cell types (the global ``.obs``, or a modality's).
    modalities
        omnivi modality -> modality name in the MuData, e.g. ``{"rna": "gex", "protein":
        "adt"}``; by default guessed from the names. A subset benchmarks those modalities
        alone (``{"rna": "rna"}``: RNA only).
    layers
        omnivi modality -> layer of raw counts; ``.X`` where absent.
    methods
        Keys of :data:`~omnivi.benchmark.METHODS` to run; ``None`` for every method that
        applies. The unintegrated baseline is always run.
    out_dir
        Folder to write the results to.
    name
        File name of the results; by default the data file's name.
    seeds
        One fit of every method per seed; tables give the mean and the range over seeds.
    max_epochs
        A cap on the epochs of every neural method (an int), or per method key (e.g.
        ``{"multivi": 300}``) for a method whose defaults would take too long. A capped run is
        marked "capped at N of its D default epochs", with the final slope of its loss curve.
        A peer's cap is raised to the most epochs an omnivi model of the same seed ran.
    speed_epochs
        If set, also time OmniVI against each scvi-tools peer on the same modalities at
        batch size 256 for this many epochs (no early stopping), in separate runs.
    threads
        torch threads of each fit; ``None`` for torch's default.
    save_embeddings
        Also write ``NAME_embeddings.h5ad``: the cells with each method's embedding (first
        seed) and UMAP in ``.obsm``.
    work_dir
        Folder to keep each fit's embedding and record in; ``None``: a temporary folder,
        removed at the end. A run given the folder of an interrupted one (same data set,
        settings and omnivi source) reuses the fits that finished and runs the rest, so a
        long benchmark can be run in parts, across commits that leave ``omnivi`` alone. A
        speed comparison is reused only whole.
    restart
        Empty a ``work_dir`` that holds the fits of another run (other data, settings or
        omnivi source) and start afresh, instead of stopping with an error.

    Returns
    -------
    Everything written to ``NAME.json``.
    """
    started = time.perf_counter()
    require_extras()
    data = describe_data(path, modalities, batch_key, label_key, layers)
    selected = select_methods(data, methods)
    caps = epoch_caps(max_epochs)
    name = name or data.name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    obs = load_obs(data)
    print(
        f"omnivi benchmark: {data.name}, {data.n_cells:,} cells, modalities "
        f"{', '.join(data.modalities)}{' (mosaic)' if data.mosaic else ''}; "
        f"{len(selected)} methods x {len(seeds)} seed(s)",
        flush=True,
    )
    fit_settings = {"max_epochs": caps, "speed_epochs": speed_epochs, "threads": threads}
    with tempfile.TemporaryDirectory(prefix="omnivi-benchmark-") as tmp:
        workdir = Path(tmp) if work_dir is None else Path(work_dir)
        prepare_work_dir(workdir, data, fit_settings, restart)
        runs, embeddings = _fit_all(workdir, selected, seeds, caps, threads, obs.index)
        speed = []
        if speed_epochs:
            speed = _speed_runs(data, selected, workdir, speed_epochs, seeds[0], threads)

    baseline = BASELINE[data.mosaic]
    if f"{baseline}@{seeds[0]}" not in embeddings:
        raise RuntimeError(f"The unintegrated baseline failed: {runs[baseline][0]['error']}")
    print(f"scib-metrics: scoring {len(embeddings)} embeddings", flush=True)
    scored_at = time.perf_counter()
    scores = scib_scores(obs, embeddings, batch_key, label_key, f"{baseline}@{seeds[0]}")
    scib_seconds = time.perf_counter() - scored_at
    for key, records in runs.items():
        for record in records:
            record["scib"] = scores.get(f"{key}@{record['seed']}")

    shown = _first_seed_embeddings(selected, seeds, embeddings)
    print(f"UMAP of {len(shown)} embeddings", flush=True)
    umaps = {key: tl.umap(embedding) for key, embedding in shown.items()}
    umap_figure(umaps, obs, label_key, batch_key).savefig(
        out_dir / f"{name}.png", dpi=100, bbox_inches="tight"
    )
    results = {
        "name": name,
        "data": {**asdict(data), "name": data.name},
        "machine": machine_info(),
        "settings": {
            "seeds": list(seeds),
            "max_epochs": caps,
            "speed_epochs": speed_epochs,
            "threads": threads,
            "unintegrated": baseline,
        },
        "methods": {
            m.key: {
                "name": m.name,
                "family": m.family,
                "supervised": m.supervised,
                "runs": runs[m.key],
                "summary": summarise(runs[m.key]),
            }
            for m in selected
        },
        "skipped": {
            key: m.unavailable(data)
            for key, m in METHODS.items()
            if methods is None and m.unavailable(data) is not None
        },
        "speed": speed,
        "figure": f"{name}.png",
        "scib_seconds": scib_seconds,
        "wall_seconds": time.perf_counter() - started,
        "reused_fits": sum(
            bool(record.get("reused"))
            for record in [r for rs in runs.values() for r in rs]
            + [r for row in speed for r in row["runs"].values()]
        ),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out_dir / f"{name}.md").write_text(markdown_report(results))
    if save_embeddings:
        saved = ad.AnnData(obs=obs.copy())
        for key, embedding in shown.items():
            saved.obsm[f"X_{key}"] = embedding
            saved.obsm[f"X_{key}_umap"] = umaps[key]
        saved.write_h5ad(out_dir / f"{name}_embeddings.h5ad")
    print(f"Wrote {out_dir / name}.json, .md and .png", flush=True)
    return results
