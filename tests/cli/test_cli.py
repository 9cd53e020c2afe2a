"""The ``fntk`` command line: demo, predict, models, errors and exit codes."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from typer.testing import CliRunner

from fntk.cli.main import app
from fntk.data import make_adsorbate_structures

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("fntk ")


def test_models_lists_every_backend():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for spec in ("sevennet-0", "mace", "mace-mp", "mace-off", "sevennet"):
        assert spec in result.output


def test_predict_writes_model_energies_and_keeps_input(tmp_path, sevennet64):
    structures = make_adsorbate_structures(3, seed=5)
    pool = tmp_path / "pool.xyz"
    ase.io.write(pool, structures)
    before = pool.read_bytes()
    out = tmp_path / "pred.xyz"
    result = runner.invoke(
        app, ["predict", str(pool), "-o", str(out), "--device", "cpu", "--batch-size", "2"]
    )
    assert result.exit_code == 0, result.output
    assert pool.read_bytes() == before
    predicted = ase.io.read(out, ":")
    assert [a.info["fntk_source_index"] for a in predicted] == [0, 1, 2]
    reference = sevennet64.predict(structures)
    for atoms, (energy, forces) in zip(predicted, reference):
        # float32 model (CLI default) against the float64 fixture
        assert atoms.calc is None  # not a calculator: never read back as reference labels
        assert atoms.info["fntk_energy"] == pytest.approx(energy, abs=1e-3)
        np.testing.assert_allclose(
            atoms.arrays["fntk_forces"], forces.numpy(), atol=1e-3, rtol=1e-4
        )


def test_predict_refuses_to_overwrite_its_input(tmp_path):
    pool = tmp_path / "pool.xyz"
    ase.io.write(pool, make_adsorbate_structures(1, seed=1))
    result = runner.invoke(app, ["predict", str(pool), "-o", str(pool), "--device", "cpu"])
    assert result.exit_code == 1
    assert "refusing to overwrite an input file" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "missing.xyz", "-o", "x.xyz"], "missing.xyz: file not found"),
        (["predict", "{pool}", "-o", "x.xyz", "--model", "nonsense"], "unknown model spec"),
        (["predict", "{pool}", "-o", "x.xyz", "--device", "cuda"], "no CUDA GPU"),
    ],
)
def test_user_errors_are_one_red_line_and_exit_1(tmp_path, monkeypatch, args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.chdir(tmp_path)
    ase.io.write(tmp_path / "pool.xyz", make_adsorbate_structures(1, seed=1))
    args = [a.replace("{pool}", "pool.xyz") for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_usage_error_exits_2():
    assert runner.invoke(app, ["predict"]).exit_code == 2


def test_demo_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = runner.invoke(app, ["demo", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "output directory exists and is not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "precious"
