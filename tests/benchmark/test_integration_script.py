"""``benchmarks/integration.py``: the README's summary is what it makes of the stored results."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "integration.py"
_spec = importlib.util.spec_from_file_location("benchmarks_integration", SCRIPT)
integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = integration  # its dataclasses look their module up there
_spec.loader.exec_module(integration)


def test_the_readme_block_is_the_summary_of_the_stored_results():
    readme = integration.README.read_text()
    block = readme.split(integration.START, 1)[1].split(integration.END, 1)[0]
    assert block.strip() == integration.summary().strip(), (
        "the README's benchmark summary is stale: run python benchmarks/integration.py --summary"
    )


def test_write_summary_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{integration.START}\nold table\n{integration.END}\nafter\n")
    integration.write_summary(tmp_path, readme)
    assert readme.read_text() == (
        f"intro\n{integration.START}\n"
        "No benchmark results yet: run `python benchmarks/integration.py`.\n"
        f"{integration.END}\nafter\n"
    )


def test_write_summary_refuses_a_readme_without_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n")
    with pytest.raises(ValueError, match="no <!-- benchmark-summary:start -->"):
        integration.write_summary(tmp_path, readme)
    assert readme.read_text() == "no block here\n"


def _machine(commit: str, source: str | None, cpu: str) -> dict:
    machine = {"omnivi commit": commit, "cpu": cpu, "cores": 2, "torch": "2.13.0+cpu"}
    if source:
        machine["omnivi source"] = source
    return {"machine": machine}


def test_sittings_group_the_runs_by_commit_source_and_machine():
    runs = {
        "a": _machine("aaa", "s1", "Intel"),
        "b": _machine("bbb", None, "Intel"),
        "c": _machine("aaa", "s1", "Intel"),
        "d": _machine("ccc", "s1", "AMD"),
    }
    assert integration._sittings(runs) == (
        "a, c at omnivi commit aaa (source s1) on Intel, 2 cores, torch 2.13.0+cpu; "
        "b at omnivi commit bbb on Intel, 2 cores, torch 2.13.0+cpu; "
        "d at omnivi commit ccc (source s1) on AMD, 2 cores, torch 2.13.0+cpu"
    )
