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


@pytest.mark.parametrize("strategy", ["ddp", "ddp_find_unused_parameters_true"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_under_ddp_on_two_processes(tmp_path, case, strategy):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(strategy=strategy, **CASES[case])))
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
    result = json.loads(out.read_text())
    assert result["world_size"] == 2
    assert result["shape"] == [400, 20 if CASES[case]["model"] == "OmniVI" else 100]
    loss = result["loss"]
    assert len(loss) == 8
    assert loss[-1] < loss[0]
    if result["accuracy"] is not None:
        assert result["accuracy"] > 0.5
