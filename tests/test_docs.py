"""The documentation builds with warnings as errors (what ``bash scripts/docs`` runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_docs_build_without_warnings(tmp_path):
    env = {**os.environ, "OMNIVI_DOCS_OFFLINE": "1"}
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    build = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-5000:]
    html = tmp_path / "html"
    pages = ["index", "benchmark_results", "benchmarks/results/mop_rna_atac", "tutorials/index"]
    # each stored tutorial notebook (tests/test_tutorials.py checks that all are there)
    notebooks = (DOCS / "tutorials").glob("*.ipynb")
    pages += [f"tutorials/{path.stem}" for path in notebooks if ".failed" not in path.name]
    for page in [*pages, "generated/omnivi.model.OmniVI"]:
        assert (html / f"{page}.html").exists(), page
