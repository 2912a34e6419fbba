"""The code passes the project's ruff rules (``[tool.ruff]`` in pyproject.toml), as CI runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = ["src", "tests", "benchmarks", "tutorials"]


@pytest.mark.parametrize(
    ("command", "fix"),
    [(["check"], "ruff check --fix"), (["format", "--check"], "ruff format")],
)
def test_ruff(command, fix):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *CODE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}{result.stderr[-2000:]}\n({fix})"
