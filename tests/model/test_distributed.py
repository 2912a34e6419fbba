"""Training under Lightning's DistributedDataParallel: 2 CPU processes (gloo).

Each test runs a small script in a subprocess, as a user runs a multi-GPU job: Lightning's
``strategy="ddp"`` starts the second process by running the script again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
import json, sys
import numpy as np
import scvi, torch
from omnivi.data import simulate_cite_seq
from omnivi.model import {model}

scvi.settings.seed = 0
mdata = simulate_cite_seq(n_cells=400, n_genes=60, n_proteins=8, seed=0)
{model}.setup_mudata(
    mdata, batch_key="batch", labels_key={labels},
    modalities={{"rna_layer": "rna", "protein_layer": "protein"}},
)
model = {model}(mdata{options})
model.train(
    max_epochs=8, accelerator="cpu", devices=2, strategy="{strategy}",
    enable_progress_bar=False,
)
latent = model.get_latent_representation()
if model.trainer.global_rank == 0:
    loss = model.history["{loss}"].iloc[:, 0].astype(float).tolist()
    predicted = model.predict().tolist() if {labels} is not None else []
    json.dump(
        {{"loss": loss, "shape": list(latent.shape), "world_size": model.trainer.world_size,
          "accuracy": float(np.mean(np.asarray(predicted) == mdata.obs["cell_type"].to_numpy()))
          if predicted else None}},
        open(sys.argv[1], "w"),
    )
"""

CASES = {
    "omnivi-rna-protein": {"model": "OmniVI", "labels": None, "options": "", "loss": "elbo_train"},
    "omnivi-contrastive": {
        "model": "OmniVI",
        "labels": '"cell_type"',
        "options": ", contrastive_weight=10.0",
        "loss": "elbo_train",
    },
    "omnicl": {"model": "OmniCL", "labels": '"cell_type"', "options": "", "loss": "train_loss"},
}


def _run_on_two_processes(script_text: str, tmp_path) -> dict:
    """Run a training script that starts Lightning's DDP; return what its rank 0 wrote."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(script_text))
    out = tmp_path / "out.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_GLOBAL_SEED": "0"}
    completed = subprocess.run(
        [sys.executable, str(script), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("strategy", ["ddp", "ddp_find_unused_parameters_true"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_under_ddp_on_two_processes(tmp_path, case, strategy):
    result = _run_on_two_processes(SCRIPT.format(strategy=strategy, **CASES[case]), tmp_path)
    assert result["world_size"] == 2
    assert result["shape"] == [400, 20 if CASES[case]["model"] == "OmniVI" else 100]
    loss = result["loss"]
    assert len(loss) == 8
    assert loss[-1] < loss[0]
    if result["accuracy"] is not None:
        assert result["accuracy"] > 0.5


BACKED_SCRIPT = """
import json, sys
import mudata as md
import scvi
from omnivi.model import OmniVI

scvi.settings.seed = 0
mdata = md.read_h5mu("cite.h5mu", backed=True)
OmniVI.setup_mudata(
    mdata, batch_key="batch", modalities={"rna_layer": "rna", "protein_layer": "protein"}
)
model = OmniVI(mdata)
model.train(
    max_epochs=8, batch_size=128, accelerator="cpu", devices=2, strategy="ddp",
    enable_progress_bar=False, datasplitter_kwargs={"span_rows": 32, "spans_per_read": 4},
)
loader = model.trainer.train_dataloader
if model.trainer.global_rank == 0:
    json.dump(
        {"loss": model.history["elbo_train"].iloc[:, 0].astype(float).tolist(),
         "loader": type(loader).__name__, "world_size": loader.world_size,
         "batches": len(loader), "cells": loader.n_cells},
        open(sys.argv[1], "w"),
    )
"""


def test_a_backed_mudata_trains_under_ddp_each_process_reading_its_windows(tmp_path):
    from omnivi.data import simulate_cite_seq

    simulate_cite_seq(n_cells=1200, n_genes=60, n_proteins=8, seed=0).write(tmp_path / "cite.h5mu")
    result = _run_on_two_processes(BACKED_SCRIPT, tmp_path)
    assert result["loader"] == "SpanReadLoader"
    assert result["world_size"] == 2
    # 1,080 training cells: each process about half of them, in full minibatches of 128
    assert result["cells"] == 1080
    assert result["batches"] == (1080 - 32) // 2 // 128 == 4
    loss = result["loss"]
    assert len(loss) == 8
    assert loss[-1] < loss[0]
