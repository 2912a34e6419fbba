"""Probe OmniVI's defaults: one option changed at a time, on a data set of the benchmark.

Each variant of :data:`VARIANTS` is ``OmniVI(mdata, **model)`` + ``train(**train)`` on one of
the integration benchmark's data sets (``integration.DATASETS``), over seeds, scored by the
benchmark's own scorer (scib-metrics, raw values, total = 0.6 bio + 0.4 batch, RNA PCA as the
unintegrated embedding). With ``--per-modality`` the model's latent from each modality alone
(``get_latent_representation(modality=...)``) is scored too: it shows which modality's
branch carries the batch signal or loses the cell types.

Every fit appends one line per embedding to ``results/defaults_probe.jsonl``, with the
omnivi commit (marked ``+changes`` for an uncommitted tree); ``--report`` rewrites
``results/defaults_probe.md`` from all lines. This is a probe for choosing defaults, not a
comparison with other methods: ``integration.py`` is that.

Usage::

    . .venv/bin/activate
    python benchmarks/defaults_probe.py bmmc_cite_small default n_hidden=256 --per-modality
    python benchmarks/defaults_probe.py mop_rna_atac early_stopping --seeds 0
    python benchmarks/defaults_probe.py --report
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from statistics import mean

from integration import DATASETS, RESULTS

from omnivi.benchmark import concatenated_pca, rna_pca, scib_scores
from omnivi.benchmark._data import describe_data, load_data, load_obs
from omnivi.benchmark._scoring import commit
from omnivi.benchmark._worker import quiet_libraries
from omnivi.data import find_data_dir

LOG = RESULTS / "defaults_probe.jsonl"
REPORT = RESULTS / "defaults_probe.md"

#: name: (options of ``OmniVI(...)``, options of ``train(...)``)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "n_latent=10": ({"n_latent": 10}, {}),
    "n_hidden=256": ({"n_hidden": 256}, {}),
    "n_layers=2": ({"n_layers": 2}, {}),
    "n_hidden=256,n_layers=2": ({"n_hidden": 256, "n_layers": 2}, {}),
    "encode_covariates": ({"encode_covariates": True}, {}),
    "kl_beta=2": ({"kl_beta": 2.0}, {}),
    "modality_dropout=0": ({"modality_dropout": 0.0}, {}),
    "atac_weight=0.25": ({"modality_weights": {"atac": 0.25}}, {}),
    "n_hidden=256,atac_weight=0.25": ({"n_hidden": 256, "modality_weights": {"atac": 0.25}}, {}),
    "atac_weight=0.065": ({"modality_weights": {"atac": 1677 / 25734}}, {}),
    "dropout_rate=0.2": ({"dropout_rate": 0.2}, {}),
    "kl_warmup=400": ({}, {"plan_kwargs": {"n_epochs_kl_warmup": 400}}),
    "max_epochs=1000": ({}, {"max_epochs": 1000}),
    "lr=4e-3": ({}, {"lr": 4e-3}),
    "lr=1e-3": ({}, {"lr": 1e-3}),
    "early_stopping": ({}, {"early_stopping": True}),
    "early_stopping,max_epochs=1000": ({}, {"early_stopping": True, "max_epochs": 1000}),
    "reduce_lr_on_plateau": ({}, {"plan_kwargs": {"reduce_lr_on_plateau": True}}),
    "early_stopping,reduce_lr_on_plateau": (
        {},
        {"early_stopping": True, "plan_kwargs": {"reduce_lr_on_plateau": True}},
    ),
}
#: The unintegrated embeddings the probe scores beside OmniVI.
BASELINES = ("PCA (RNA)", "padded concat-PCA")
SHOWN = ("Bio conservation", "Batch correction", "PCR comparison", "iLISI", "KMeans NMI")


def _source_state() -> str:
    """The omnivi commit, marked ``+changes`` when the working tree differs from it."""
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "src"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    ).stdout.strip()
    return f"{commit()}{'+changes' if dirty else ''}"


def probe(name: str, variants: list[str], seeds: list[int], per_modality: bool, data_dir) -> None:
    """Fit and score each variant on data set ``name`` for each seed; append to the log."""
    import scvi

    from omnivi.model import OmniVI

    quiet_libraries()
    dataset = DATASETS[name]
    folder = find_data_dir(data_dir)
    if folder is None:
        raise SystemExit("No data folder found: pass --data-dir or set OMNIVI_DATA_DIR.")
    data = describe_data(
        folder / dataset.file,
        dataset.modalities,
        dataset.batch_key,
        dataset.label_key,
    )
    mdata, obs = load_data(data), load_obs(data)
    # the unintegrated embedding, as the benchmark's: padded concatenated PCA on mosaic data
    baseline = "padded concat-PCA" if data.mosaic else "PCA (RNA)"
    unintegrated = concatenated_pca(mdata) if data.mosaic else rna_pca(mdata["rna"])
    source = _source_state()
    for variant in variants:
        model_options, train_options = VARIANTS[variant]
        for seed in seeds:
            scvi.settings.seed = seed
            if list(mdata.mod) == ["rna"]:
                adata = mdata["rna"].copy()
                OmniVI.setup_anndata(adata, batch_key=dataset.batch_key)
            else:
                adata = mdata.copy()
                layers = {f"{m}_layer": m for m in adata.mod}
                OmniVI.setup_mudata(adata, batch_key=dataset.batch_key, modalities=layers)
            model = OmniVI(adata, **model_options)
            start = time.perf_counter()
            model.train(enable_progress_bar=False, **train_options)
            seconds = time.perf_counter() - start
            embeddings = {baseline: unintegrated, "OmniVI": model.get_latent_representation()}
            if per_modality and len(model.modalities) > 1:
                for modality in model.modalities:
                    latent = model.get_latent_representation(modality=modality)
                    embeddings[f"OmniVI from {modality} alone"] = latent
            scores = scib_scores(obs, embeddings, dataset.batch_key, dataset.label_key, baseline)
            with LOG.open("a") as log:
                for embedding, values in scores.items():
                    record = {
                        "data": name,
                        "variant": variant,
                        "omnivi": source,
                        "seed": seed,
                        "embedding": embedding,
                        "epochs": len(model.history["elbo_train"]),
                        "train_seconds": round(seconds, 1),
                        **{metric: round(float(v), 4) for metric, v in values.items()},
                    }
                    log.write(json.dumps(record) + "\n")
                    print(json.dumps(record), flush=True)


def report() -> str:
    """Markdown tables of the log: per data set, the mean over seeds of each variant."""
    groups = defaultdict(list)
    for line in LOG.read_text().splitlines():
        record = json.loads(line)
        key = (record["data"], record["omnivi"], record["variant"], record["embedding"])
        groups[key].append(record)
    lines = [
        "# OmniVI defaults probe",
        "",
        "Written by `benchmarks/defaults_probe.py --report` from `defaults_probe.jsonl`: one",
        "option of `OmniVI(...)` / `train()` changed at a time, scib-metrics as in the",
        "integration benchmark (raw values, total = 0.6 bio + 0.4 batch), mean over seeds",
        "with the range of the total. `omnivi` is the source the fits ran from.",
    ]
    for data in dict.fromkeys(key[0] for key in groups):
        lines += [
            "",
            f"## {data}",
            "",
            "| omnivi | variant | embedding | seeds | epochs | "
            + " | ".join(SHOWN)
            + " | total |",
            "|" + "---|" * (len(SHOWN) + 6),
        ]
        for (d, source, variant, embedding), records in groups.items():
            if d != data or (embedding in BASELINES and variant != "default"):
                continue
            totals = [r["Total"] for r in records]
            cells = [f"{mean(r[m] for r in records):.3f}" for m in SHOWN]
            spread = f" ({min(totals):.3f}-{max(totals):.3f})" if len(totals) > 1 else ""
            lines.append(
                f"| {source} | {variant} | {embedding} | {len(records)} | "
                f"{records[0]['epochs']} | "
                + " | ".join(cells)
                + f" | **{mean(totals):.3f}**{spread} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: probe variants on a data set, or rewrite the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", choices=sorted(DATASETS))
    parser.add_argument("variants", nargs="*", help=f"any of {sorted(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated (default 0,1,2)")
    parser.add_argument("--per-modality", action="store_true", help="score each modality alone")
    parser.add_argument("--data-dir", default=None, help="folder of the data sets")
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    args = parser.parse_args()
    if not args.report:
        if not args.data or not args.variants:
            parser.error("give a data set and variants, or --report")
        unknown = set(args.variants) - set(VARIANTS)
        if unknown:
            parser.error(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
        seeds = [int(s) for s in args.seeds.split(",")]
        probe(args.data, args.variants, seeds, args.per_modality, args.data_dir)
    REPORT.write_text(report())
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
