"""The tutorials run, and each stored notebook is a full run of its current source.

``tutorials/run.py`` executes a tutorial (``tutorials/<name>.py``, jupytext percent format)
and stores ``tutorials/<name>.ipynb`` with its outputs. A stored notebook whose cells differ
from its source, that holds a quick run, an error or no figure fails here: after editing a
tutorial, run it again (``python tutorials/run.py <name>``) and commit both files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

from omnivi.data import DATA_DIR_ENV

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_run", TUTORIALS / "run.py")
run = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = run  # its dataclass looks its module up there
_spec.loader.exec_module(run)


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


@pytest.mark.parametrize("name", run.NOTEBOOKS)
def test_stored_notebook_is_a_full_run_of_its_source(name):
    stored = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    source = run.read_script(TUTORIALS / f"{name}.py")
    assert _cells(stored) == _cells(source), f"{name}.ipynb is stale: run tutorials/run.py {name}"
    assert stored.metadata["omnivi"]["run"] == "full"
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a code cell was not executed"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no figure"


@pytest.mark.real_data
@pytest.mark.parametrize("name", run.NOTEBOOKS)
def test_tutorial_runs_top_to_bottom_with_few_epochs(name, real_data_dir, monkeypatch):
    monkeypatch.setenv(run.QUICK_ENV, "1")
    monkeypatch.setenv(DATA_DIR_ENV, str(real_data_dir))
    notebook = run.read_script(TUTORIALS / f"{name}.py")
    failure = run.execute(notebook, name, timeout=600, cwd=run.ROOT)
    assert failure is None, str(failure)
