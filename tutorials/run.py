"""Execute the omnivi tutorials and store their outputs.

Each tutorial is a jupytext "percent" script (``tutorials/<name>.py``). This script turns
it into a notebook with jupytext, executes it with nbclient in a ``python3`` kernel started
in the repository root, and writes the executed notebook, with how it was run (quick or
full, the omnivi commit, the seconds it took) in its metadata under ``"omnivi"``.

Usage::

    .venv/bin/python tutorials/run.py                   # all, full run: tutorials/<name>.ipynb
    .venv/bin/python tutorials/run.py mapping mosaic    # only these
    .venv/bin/python tutorials/run.py --quick           # smoke run, outputs to a temp folder

``--quick`` sets ``OMNIVI_TUTORIAL_QUICK=1`` for the kernels (few epochs) and writes the
executed notebooks to a temporary folder, so that a quick check never replaces the stored
outputs of a full run. A notebook that fails is written as ``<name>.failed.ipynb`` (its
outputs up to the failing cell), the stored ``<name>.ipynb`` is left as it was, and the
exit status is 1, with the notebook and the cell named.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellControlSignal, CellExecutionError, DeadKernelError

from omnivi.data import DATA_DIR_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The tutorials, in the order they are run.
NOTEBOOKS: tuple[str, ...] = (
    "cite_seq",
    "multiome",
    "rna_autoencoder",
    "annotation",
    "mapping",
    "mosaic",
)
QUICK_ENV = "OMNIVI_TUTORIAL_QUICK"


@dataclass(frozen=True)
class Failure:
    """Where and why a notebook failed.

    Parameters
    ----------
    notebook
        Name of the tutorial.
    cell_index
        Position of the failing cell among all cells, counted from 1; ``None`` if the
        failure came before any cell ran.
    first_line
        First line of the failing cell's source.
    error
        The error, in one line.
    """

    notebook: str
    cell_index: int | None
    first_line: str
    error: str

    def __str__(self) -> str:
        where = "before any cell" if self.cell_index is None else f"cell {self.cell_index}"
        return f"{self.notebook}: {where} ({self.first_line!r}): {self.error}"


def read_script(path: Path) -> nbformat.NotebookNode:
    """Read a tutorial's jupytext percent-format script as a notebook.

    Parameters
    ----------
    path
        The ``.py`` file.
    """
    return jupytext.read(path, fmt="py:percent")


def execute(notebook: nbformat.NotebookNode, name: str, timeout: int, cwd: Path) -> Failure | None:
    """Execute ``notebook`` in place; return where it failed, or ``None``.

    Parameters
    ----------
    notebook
        The notebook; its cells receive their outputs.
    name
        Name of the tutorial, for the failure report.
    timeout
        Seconds each cell may run.
    cwd
        Working directory of the kernel.
    """
    current: dict[str, int] = {}

    def on_cell_start(cell, cell_index: int) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        on_cell_start=on_cell_start,
    )
    try:
        client.execute()
    except (CellControlSignal, DeadKernelError, RuntimeError) as error:
        index = current.get("index")
        first_line = ""
        if index is not None:
            first_line = next(iter(notebook.cells[index].source.splitlines()), "")
        if isinstance(error, CellExecutionError):
            message = f"{error.ename}: {error.evalue}"
        else:  # a timeout, a dead kernel, a kernel that did not start
            last = str(error).strip().splitlines()
            message = f"{type(error).__name__}: {last[-1] if last else ''}"
        return Failure(name, None if index is None else index + 1, first_line, message)
    return None


def source_commit() -> str | None:
    """Return the omnivi commit the tutorials run from (``+changes``: an edited tree)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "src", "tutorials")
    return f"{commit}+changes" if dirty else commit


def resolve(names: list[str]) -> list[str]:
    """Map command-line names to tutorial names; all tutorials when none is given.

    Parameters
    ----------
    names
        ``mapping``, ``mapping.py`` or ``tutorials/mapping.py`` alike.

    Returns
    -------
    Tutorial names, in the order given.

    Raises
    ------
    SystemExit
        If a name is not a tutorial.
    """
    if not names:
        return list(NOTEBOOKS)
    chosen = [Path(name).stem for name in names]
    unknown = [name for name in chosen if name not in NOTEBOOKS]
    if unknown:
        raise SystemExit(f"Unknown tutorial(s) {unknown}; choose among {list(NOTEBOOKS)}.")
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run the chosen tutorials; return the exit status (1 if any failed).

    Parameters
    ----------
    argv
        Command-line arguments; ``None`` for ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"tutorials to run (default: {NOTEBOOKS})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"set {QUICK_ENV}=1 (few epochs) and write the notebooks to a temporary folder",
    )
    parser.add_argument(
        "--timeout", type=int, default=None, help="seconds per cell (600 quick, 3600 full)"
    )
    args = parser.parse_args(argv)
    names = resolve(args.names)
    timeout = args.timeout or (600 if args.quick else 3600)

    if args.quick:
        os.environ[QUICK_ENV] = "1"
        out_dir = Path(tempfile.mkdtemp(prefix="omnivi-tutorials-quick-"))
    else:
        os.environ.pop(QUICK_ENV, None)
        out_dir = HERE
    shared = ROOT.parent / "shared" / "data"
    if DATA_DIR_ENV not in os.environ and shared.is_dir():
        os.environ[DATA_DIR_ENV] = str(shared)  # as the test suite finds it

    failures: list[Failure] = []
    for name in names:
        started = time.perf_counter()
        print(f"--- {name}{' (quick)' if args.quick else ''}", flush=True)
        notebook = read_script(HERE / f"{name}.py")
        failure = execute(notebook, name, timeout, ROOT)
        seconds = time.perf_counter() - started
        failed_path = out_dir / f"{name}.failed.ipynb"
        if failure is None:
            notebook.metadata["omnivi"] = {
                "run": "quick" if args.quick else "full",
                "commit": source_commit(),
                "seconds": round(seconds),
            }
            nbformat.write(notebook, out_dir / f"{name}.ipynb")
            failed_path.unlink(missing_ok=True)
            print(f"    ok in {seconds:.0f} s -> {out_dir / f'{name}.ipynb'}", flush=True)
        else:
            nbformat.write(notebook, failed_path)
            failures.append(failure)
            print(f"    FAILED after {seconds:.0f} s: {failure}", flush=True)
            print(f"    partial outputs: {failed_path}", flush=True)
    if failures:
        print("\nFailed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"\nAll {len(names)} tutorial(s) ran; notebooks in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
