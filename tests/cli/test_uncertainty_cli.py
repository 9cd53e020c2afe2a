"""``fntk uncertainty``: outputs, calibration record, and its one-line refusals."""

from __future__ import annotations

import json
import stat

import ase.io
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT
from typer.testing import CliRunner

from fntk.cli.main import app

runner = CliRunner()
NAMES = ("CH4", "H2O", "NH3", "CO", "C2H2", "HCN", "CH3OH", "H2CO", "C2H4", "N2")


def _labelled(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = molecule(NAMES[k % len(NAMES)])
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        atoms.get_forces()
        out.append(atoms)
    return out


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, n, seed in (("train", 4, 0), ("cal", 6, 1), ("pool", 3, 2)):
        paths[name] = tmp_path / f"{name}.xyz"
        ase.io.write(paths[name], _labelled(n, seed))
    return paths


def _run(files, out, *extra):
    args = ["uncertainty", str(files["pool"]), "--train", str(files["train"]), "-o", str(out)]
    return runner.invoke(app, [*args, "--device", "cpu", "--dim", "4", *extra])


def test_calibrated_run_writes_estimates_and_refuses_to_overwrite(tmp_path, files):
    out = tmp_path / "est.xyz"
    result = _run(files, out, "--calibrate", str(files["cal"]))
    assert result.exit_code == 0, result.output
    written = ase.io.read(out, ":")
    assert len(written) == 3
    for atoms in written:
        assert atoms.info["fntk_force_sigma"] > 0
        assert np.isfinite(atoms.info["fntk_energy_sigma"])
        sigma = atoms.arrays["fntk_atom_force_sigma"]
        assert sigma.shape == (len(atoms),) and (sigma > 0).all()
        # the structure's predicted RMSE is the root mean square of its atoms' sigmas
        assert atoms.info["fntk_force_sigma"] == pytest.approx(np.sqrt(np.mean(sigma**2)), rel=1e-5)
    run = json.loads((tmp_path / "est.run.json").read_text())
    assert run["calibrated"] and run["calibration"]["n_structures"] == 6
    assert set(run["calibration"]["force_scores"]) >= {"coverage_68", "coverage_95"}
    assert run["error_model"]["force_calibration"]["n_errors"] > 0
    csv_lines = (tmp_path / "est.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and "fntk_force_sigma" in csv_lines[0]
    for path in (out, tmp_path / "est.csv", tmp_path / "est.run.json"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o644 == 0o644
    again = _run(files, out, "--calibrate", str(files["cal"]))
    assert again.exit_code == 1 and "output exists" in again.output


def test_uncalibrated_run_warns_and_says_so(tmp_path, files):
    result = _run(files, tmp_path / "raw.xyz")
    assert result.exit_code == 0, result.output
    assert "no --calibrate set" in result.output and "uncalibrated" in result.output
    run = json.loads((tmp_path / "raw.run.json").read_text())
    assert not run["calibrated"] and run["warning"]


def test_calibration_set_without_labels_is_one_line(tmp_path, files):
    bare = tmp_path / "bare.xyz"
    ase.io.write(bare, [molecule("CH4")])
    result = _run(files, tmp_path / "x.xyz", "--calibrate", str(bare))
    assert result.exit_code == 1
    assert "--calibrate needs reference energies and forces" in result.output
    assert not (tmp_path / "x.xyz").exists()


def test_calibration_overlapping_training_is_dropped_with_a_warning(tmp_path, files, caplog):
    result = _run(
        files,
        tmp_path / "o.xyz",
        "--calibrate",
        str(files["train"]),
        "--calibrate",
        str(files["cal"]),
    )
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "o.run.json").read_text())
    assert run["calibration"]["dropped_overlap"] == [0, 1, 2, 3]
    assert run["calibration"]["n_structures"] == 6
    assert "also in --train" in caplog.text
