"""``omnivi benchmark`` end to end on a small simulated file, and its reports."""

import importlib
import json

import pytest

from omnivi.benchmark import _run, benchmark
from omnivi.benchmark._report import markdown_report, standing, summarise
from omnivi.benchmark._scoring import source_digest
from omnivi.cli import build_parser, main


@pytest.fixture(scope="module")
def run(cite_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    code = main(
        [
            "benchmark",
            str(cite_file),
            "--out",
            str(out),
            "--batch-key",
            "batch",
            "--label-key",
            "cell_type",
            "--methods",
            "omnivi,totalvi",
            "--max-epochs",
            "omnivi=4,totalvi=2",
            "--name",
            "sim",
        ]
    )
    assert code == 0
    return out, json.loads((out / "sim.json").read_text())


def test_outputs(run):
    out, results = run
    assert (out / "sim.png").stat().st_size > 10_000
    assert set(results["methods"]) == {"omnivi", "totalvi", "pca"}  # the baseline is added
    for key, method in results["methods"].items():
        (record,) = method["runs"]
        assert record["status"] == "ok", key
        assert record["rss_peak_mib"] > record["rss_baseline_mib"] > 0
        scib = method["summary"]["scib"]
        for name in ("Bio conservation", "Batch correction"):
            assert 0 < scib[name] <= 1
        assert scib["Total"] == pytest.approx(
            0.6 * scib["Bio conservation"] + 0.4 * scib["Batch correction"]
        )
    assert results["methods"]["pca"]["runs"][0]["training"] is None
    assert results["settings"]["unintegrated"] == "pca"


def test_training_records(run):
    _, results = run
    omnivi = results["methods"]["omnivi"]["runs"][0]["training"]
    assert omnivi["epochs_run"] == 4
    assert omnivi["batch_size"] == 256
    assert omnivi["ended_by"] == "capped at 4 of its 400 default epochs"
    assert omnivi["curve"] == "elbo_validation"
    assert len(omnivi["curve_values"]) == 4
    assert omnivi["cells_per_second"] > 0
    # a peer's cap is raised to the epochs OmniVI ran
    totalvi = results["methods"]["totalvi"]["runs"][0]["training"]
    assert totalvi["epochs_run"] == 4
    assert totalvi["ended_by"].startswith("capped at 4 of")


def test_markdown(run):
    out, results = run
    text = (out / "sim.md").read_text()
    assert text == markdown_report(results)
    assert "## Unsupervised" in text
    assert "## Supervised" not in text
    assert "| OmniVI | omnivi | 256 | 4 | capped at 4 of its 400 default epochs |" in text
    assert "OmniVI (" in text
    assert "the best other unsupervised method" in text
    assert "TOTALVI: capped at 4 of its 400 default epochs" in text
    assert "![UMAP of each method](sim.png)" in text


def _record(seed, total, bio, batch, epochs=10):
    return {
        "status": "ok",
        "seed": seed,
        "seconds": 2.0,
        "rss_peak_mib": 100.0,
        "training": {
            "batch_size": 128,
            "default_epochs": 400,
            "max_epochs": 400,
            "epochs_run": epochs,
            "ended_by": "early stopping",
            "capped": False,
            "train_seconds": 1.0,
            "cells_per_second": 1000.0,
            "curve": "elbo_validation",
            "final_slope": -0.001,
        },
        "scib": {"Bio conservation": bio, "Batch correction": batch, "Total": total},
    }


def test_summary_over_seeds():
    summary = summarise(
        [
            _record(0, 0.6, 0.6, 0.6),
            _record(1, 0.7, 0.7, 0.7, epochs=20),
            {"status": "failed", "seed": 2, "error": "boom"},
        ]
    )
    assert summary["n_runs"] == 2
    assert summary["errors"] == ["boom"]
    assert summary["scib"]["Total"] == pytest.approx(0.65)
    assert (summary["total_min"], summary["total_max"]) == (0.6, 0.7)
    assert summary["training"]["epochs_run"] == [10, 20]


def test_standing_says_when_omnivi_is_behind():
    def method(name, family, total, supervised=False):
        return {
            "name": name,
            "family": family,
            "supervised": supervised,
            "summary": summarise([_record(0, total, total, total)]),
        }

    results = {
        "methods": {
            "omnivi": method("OmniVI", "omnivi", 0.60),
            "totalvi": method("TOTALVI", "scvi-tools", 0.65),
            "pca": method("PCA (RNA)", "classic", 0.55),
            "omnicl": method("OmniCL", "omnivi", 0.70, supervised=True),
            "scanvi": method("SCANVI", "scvi-tools", 0.62, supervised=True),
        }
    }
    (line,) = standing(results, supervised=False)
    assert "**behind** the best other unsupervised method, TOTALVI (0.650), by 0.050" in line
    assert "rank 2 of 3" in line
    (line,) = standing(results, supervised=True)
    assert "**ahead of**" in line
    assert "SCANVI" in line


def test_missing_extra_names_it(monkeypatch, cite_file, tmp_path):
    real_import = importlib.import_module

    def without_harmony(name, *args, **kwargs):
        if name == "harmonypy":
            raise ImportError("No module named 'harmonypy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_harmony)
    with pytest.raises(ImportError, match=r"harmonypy.*pip install 'omnivi\[benchmark\]'"):
        benchmark(cite_file, "batch", "cell_type", out_dir=tmp_path)


def test_help_lists_the_methods(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "--help"])
    text = capsys.readouterr().out
    for key in ("omnivi_contrastive", "harmony_concat_pca", "multivi", "--max-epochs", "--seeds"):
        assert key in text


def _pca_run(cite_file, out_dir, work, **options):
    """The benchmark of PCA alone on ``cite_file``, its fits kept in ``work``."""
    return benchmark(
        cite_file, "batch", "cell_type", methods=["pca"], out_dir=out_dir, work_dir=work, **options
    )


def test_a_run_continues_from_its_work_folder(cite_file, tmp_path):
    work = tmp_path / "work"
    first = _pca_run(cite_file, tmp_path, work)
    assert first["reused_fits"] == 0
    assert (work / "pca_fit_s0.npz").exists()
    assert (work / "run.json").exists()
    again = _pca_run(cite_file, tmp_path, work)
    (record,) = again["methods"]["pca"]["runs"]
    assert record["reused"] is True
    assert again["reused_fits"] == 1
    assert record["scib"] == first["methods"]["pca"]["runs"][0]["scib"]
    assert "1 fits reused" in (tmp_path / f"{again['name']}.md").read_text()
    with pytest.raises(ValueError, match="settings differ"):
        _pca_run(cite_file, tmp_path, work, speed_epochs=2)


def test_fits_of_other_omnivi_source_are_not_reused(cite_file, tmp_path, monkeypatch):
    work = tmp_path / "work"
    _pca_run(cite_file, tmp_path, work)
    assert json.loads((work / "run.json").read_text())["omnivi source"] == source_digest()
    (work / "stale.txt").write_text("a file of the earlier run")
    monkeypatch.setattr(_run, "source_digest", lambda: "edited")
    with pytest.raises(ValueError, match="omnivi source differ"):
        _pca_run(cite_file, tmp_path, work)
    assert (work / "stale.txt").exists()  # refused, not emptied
    # restart=True (--restart) empties the folder and starts afresh
    assert _pca_run(cite_file, tmp_path, work, restart=True)["reused_fits"] == 0
    assert not (work / "stale.txt").exists()
    assert json.loads((work / "run.json").read_text())["omnivi source"] == "edited"
