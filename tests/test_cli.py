import json

import mudata as md
import pytest

from omnivi.cli import _parse_modalities, main
from omnivi.data import simulate_cite_seq


def test_demo_writes_results(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-cells", "400", "--max-epochs", "3"]) == 0
    for name in ("demo.h5mu", "umap.png", "loss.png", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_cells"] == 400
    assert metrics["epochs"] == 3
    for key in (
        "knn_label_accuracy",
        "knn_label_accuracy_pca",
        "batch_mixing_entropy",
        "rare_population_recall_omnivi",
        "rare_population_recall_pca",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
    result = md.read_h5mu(out / "demo.h5mu")
    assert result.obsm["X_omnivi"].shape == (400, 20)
    assert result.obsm["X_umap"].shape == (400, 2)


def test_fit_on_user_file(tmp_path):
    source = simulate_cite_seq(n_cells=300, n_genes=100, n_proteins=10, seed=1)
    source.mod["adt"] = source.mod.pop("protein")
    with md.set_options(pull_on_update=False):
        source = md.MuData(dict(source.mod), obs=source.obs)
    path = tmp_path / "in.h5mu"
    source.write(path)
    out = tmp_path / "out.h5mu"
    code = main(
        [
            "fit",
            str(path),
            "--out",
            str(out),
            "--batch-key",
            "batch",
            "--labels-key",
            "cell_type",
            "--max-epochs",
            "2",
            "--figures",
            str(tmp_path / "fig"),
            "--save-model",
            str(tmp_path / "model"),
        ]
    )
    assert code == 0
    result = md.read_h5mu(out)
    assert result.obsm["X_omnivi"].shape == (300, 20)
    assert (tmp_path / "fig" / "umap.png").exists()
    assert (tmp_path / "model" / "model.pt").exists()
    # modalities were recognised by name: RNA and the 'adt' modality as protein
    assert json.loads((tmp_path / "fig" / "metrics.json").read_text())["modalities"] == [
        "rna",
        "protein",
    ]


def test_fit_rejects_unrecognised_modalities(tmp_path, capsys):
    source = simulate_cite_seq(n_cells=100, n_genes=50, n_proteins=5)
    with md.set_options(pull_on_update=False):
        renamed = md.MuData({"m1": source["rna"], "m2": source["protein"]}, obs=source.obs)
    path = tmp_path / "in.h5mu"
    renamed.write(path)
    with pytest.raises(SystemExit) as stopped:
        main(["fit", str(path), "--out", str(tmp_path / "o.h5mu")])
    # the error, without a traceback, and a failing exit status
    assert stopped.value.code == 2
    assert "--modalities rna=" in capsys.readouterr().err


def test_parse_modalities():
    assert _parse_modalities("rna=gex,protein=adt") == {"rna": "gex", "protein": "adt"}
    with pytest.raises(Exception, match="KEY=VALUE"):
        _parse_modalities("rna")
