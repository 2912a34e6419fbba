"""``benchmarks/gpu_check.py``: its checks pass on the CPU, and it skips cleanly without a GPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_every_check_passes_on_the_cpu(tmp_path):
    out = tmp_path / "checks.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    checks = json.loads(out.read_text())["checks"]
    assert len(checks) == 15
    assert all(check["status"] == "PASS" for check in checks), checks


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the check would run")
def test_without_a_gpu_it_says_so_and_skips():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0
    assert "no CUDA GPU here; skipped" in completed.stdout
