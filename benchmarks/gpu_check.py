"""Run every public omnivi path on a GPU and say which passed.

Setup, training with and without labels, latents, imputation, annotation, novelty, cell-type
representations, save / load, reference mapping, OmniCL and the command line, all on a small
simulated CITE-seq data set (and RNA + sparse ATAC, for ATAC's sparse minibatches; and the
data read from its file, backed), with the
models trained on ``--device`` (``cuda`` by default). Without a CUDA GPU it says so and exits
0; ``--device cpu`` runs the same checks on the CPU (how the test suite checks this script).

Usage::

    python benchmarks/gpu_check.py                 # on the GPU
    python benchmarks/gpu_check.py --device cpu    # the same paths on the CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

EPOCHS = 3


def accelerator(device: str) -> dict[str, Any]:
    """``train()`` options that put a model on ``device``."""
    return {"accelerator": "gpu" if device == "cuda" else "cpu", "devices": 1}


def checks(device: str, workdir: Path) -> dict[str, Callable[[], Any]]:
    """The checks, by name, in the order they run (later ones use earlier models)."""
    import mudata as md
    import numpy as np
    import torch

    import omnivi
    from omnivi.data import simulate_cite_seq

    options = {"max_epochs": EPOCHS, **accelerator(device)}
    mdata = simulate_cite_seq(n_cells=600, n_genes=100, n_proteins=12, seed=0)
    state: dict[str, Any] = {}

    def on_device(model) -> str:
        found = model.module.device.type
        if found != device:
            raise AssertionError(f"the module is on {found}, not {device}")
        return found

    def set_up(model_class, **labels) -> md.MuData:
        """A copy of the simulated data, registered with ``model_class``."""
        data = mdata.copy()
        model_class.setup_mudata(
            data,
            batch_key="batch",
            modalities={"rna_layer": "rna", "protein_layer": "protein"},
            **labels,
        )
        return data

    def unlabelled():
        model = omnivi.model.OmniVI(set_up(omnivi.model.OmniVI))
        model.train(**options)
        state["unlabelled"] = model
        return on_device(model)

    def autoencoder():
        model = omnivi.model.OmniVI(
            set_up(omnivi.model.OmniVI), latent_distribution="deterministic"
        )
        model.train(**options)
        return model.get_latent_representation().shape

    def multiome(density: float):
        """RNA + sparse ATAC: minibatches reach the device as CSR tensors (ATAC's path); the
        encoder sums embedding rows below 2% density, multiplies a dense block above."""
        import anndata as ad
        from scipy import sparse

        regions = sparse.random(
            mdata.n_obs, 3000, density=density, format="csr", dtype=np.float32, random_state=0
        )
        data = md.MuData(
            {"rna": mdata["rna"].copy(), "atac": ad.AnnData(regions, obs=mdata["rna"].obs)}
        )
        data.obs["batch"] = mdata.obs["batch"].to_numpy()
        omnivi.model.OmniVI.setup_mudata(
            data, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac"}
        )
        model = omnivi.model.OmniVI(data)
        model.train(**options)
        accessibility = model.get_accessibility_estimates(return_numpy=True)
        return on_device(model), accessibility.shape

    def from_disk():
        """A backed MuData with labels: windows of cells read from the file into training on
        the device; outputs of cells asked for out of order come in that order."""
        path = workdir / "backed.h5mu"
        mdata.write(path)
        data = md.read_h5mu(path, backed=True)
        omnivi.model.OmniVI.setup_mudata(
            data,
            batch_key="batch",
            labels_key="cell_type",
            modalities={"rna_layer": "rna", "protein_layer": "protein"},
        )
        model = omnivi.model.OmniVI(data)
        model.train(**options)
        shuffled = np.random.default_rng(0).permutation(mdata.n_obs)[:200]
        in_memory = md.read_h5mu(path)
        from_file = model.get_latent_representation(indices=shuffled)
        if not np.allclose(
            from_file, model.get_latent_representation(in_memory, indices=shuffled), atol=1e-5
        ):
            raise AssertionError("cells read from the file come in another order")
        return on_device(model), float(
            np.mean(model.predict() == mdata.obs["cell_type"].to_numpy())
        )

    def latent():
        model = state["unlabelled"]
        latent = model.store_latent()
        rna_only = model.get_latent_representation(modality="rna")
        return latent.shape, rna_only.shape

    def imputation():
        model = state["unlabelled"]
        protein = model.get_normalized_expression(modality="protein", from_modalities=["rna"])
        rna = model.get_normalized_expression(modality="rna")
        return protein.shape, rna.shape

    def labelled():
        data = set_up(omnivi.model.OmniVI, labels_key="cell_type")
        model = omnivi.model.OmniVI(data, contrastive_weight=100)
        model.train(**options)
        state["labelled"] = model
        return on_device(model)

    def annotation():
        model = state["labelled"]
        labels = model.predict()
        probabilities = model.predict(soft=True)
        return float(np.mean(labels == mdata.obs["cell_type"].to_numpy())), probabilities.shape

    def novelty():
        model = state["labelled"]
        query = mdata[mdata.obs["batch"] == mdata.obs["batch"].cat.categories[0]].copy()
        mixing = model.get_novelty_scores(query)
        distance = model.get_novelty_scores(query, method="distance")
        return model.novelty_summary(mixing)["fraction_novel"], len(distance)

    def representations():
        model = state["labelled"]
        return {m: model.get_cell_type_representations(m).shape for m in ("centroid", "medoid")}

    def save_and_load():
        model = state["labelled"]
        folder = workdir / "model"
        model.save(folder, overwrite=True)
        loaded = omnivi.model.OmniVI.load(folder, adata=model.adata, accelerator=device)
        before, after = model.get_latent_representation(), loaded.get_latent_representation()
        if not np.allclose(before, after, atol=1e-5):
            raise AssertionError("the loaded model embeds the cells differently")
        return loaded.predict()[:3].tolist()

    def query_mapping():
        model = state["labelled"]
        query = md.MuData({"rna": mdata["rna"][:200].copy()})
        query.obs["batch"] = "new batch"
        query.obs["cell_type"] = "unknown"
        query["rna"].obs = query.obs.copy()
        prepared = omnivi.model.OmniVI.prepare_query_mudata(query, model)
        mapped = omnivi.model.OmniVI.load_query_data(prepared, model)
        mapped.train(**options)
        on_device(mapped)
        imputed = mapped.get_normalized_expression(modality="protein")
        return mapped.predict()[:3].tolist(), imputed.shape

    def omnicl():
        data = set_up(omnivi.model.OmniCL, labels_key="cell_type")
        model = omnivi.model.OmniCL(data)
        model.train(**options)
        on_device(model)
        scores = model.get_novelty_scores(data[:100].copy())
        return model.get_latent_representation().shape, model.predict()[:3].tolist(), len(scores)

    def command_line():
        from omnivi.cli import main

        path = workdir / "cite.h5mu"
        mdata.write(path)
        code = main(
            [
                "fit",
                str(path),
                "--out",
                str(workdir / "fit.h5mu"),
                "--batch-key",
                "batch",
                "--labels-key",
                "cell_type",
                "--max-epochs",
                str(EPOCHS),
                "--figures",
                str(workdir / "figures"),
            ]
        )
        if code != 0:
            raise AssertionError(f"omnivi fit returned {code}")
        return torch.cuda.is_available()

    return {
        "OmniVI without labels: setup, train": unlabelled,
        "OmniVI autoencoder: train, latent": autoencoder,
        "OmniVI on RNA + sparse ATAC, 0.5% (embedding bag): train, accessibility": (
            lambda: multiome(0.005)
        ),
        "OmniVI on RNA + sparse ATAC, 5% (dense product): train, accessibility": (
            lambda: multiome(0.05)
        ),
        "OmniVI from a backed MuData (labels): train, latent in the order asked, predict": (
            from_disk
        ),
        "latent (joint, one modality), store_latent": latent,
        "imputation, normalised expression": imputation,
        "OmniVI with labels (contrastive): train": labelled,
        "predict (labels, probabilities)": annotation,
        "novelty (mixing, distance), summary": novelty,
        "cell-type representations": representations,
        "save and load": save_and_load,
        "query mapping (RNA-only query): prepare, load_query_data, train, predict, impute": (
            query_mapping
        ),
        "OmniCL: setup, train, latent, predict, novelty": omnicl,
        "omnivi fit --labels-key": command_line,
    }


def run(device: str, out: Path | None) -> int:
    """Run every check on ``device``; print and (with ``out``) write a JSON of the results."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; skipped (use --device cpu to run the checks on CPU).")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="omnivi-gpu-check-") as tmp:
        for name, check in checks(device, Path(tmp)).items():
            start = time.perf_counter()
            try:
                detail = check()
                status = "PASS"
            except Exception as error:  # every check is reported, a failure does not stop it
                traceback.print_exc()
                detail, status = f"{type(error).__name__}: {error}", "FAIL"
            seconds = time.perf_counter() - start
            results.append({"check": name, "status": status, "detail": str(detail)[:300]})
            print(f"[{status}] {name} ({seconds:.1f} s): {str(detail)[:200]}", flush=True)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU)"
    passed = sum(r["status"] == "PASS" for r in results)
    print(f"gpu_check on {device} ({gpu}): {passed} of {len(results)} checks passed.")
    if out is not None:
        out.write_text(json.dumps({"device": device, "gpu": gpu, "checks": results}, indent=2))
    return 0 if passed == len(results) else 1


def main(argv: list[str] | None = None) -> int:
    """Command line of the check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    return run(args.device, args.out)


if __name__ == "__main__":
    sys.exit(main())
