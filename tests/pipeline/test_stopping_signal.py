"""``fntk select``'s stopping signal: the pool's mean predicted force RMSE before and after the
batch, from a uniform pool sample, the same for any chunk size."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from fntk.pipeline import build_run_options, run_selection
from fntk.pipeline.uncertainty import ERROR_SAMPLE

NAMES = ("CH4", "CH3OH", "C2H6", "NH3", "H2O", "HCOOH")


def _frames(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = molecule(NAMES[i % len(NAMES)])
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("stop")
    ase.io.write(root / "pool.xyz", _frames(8, 0))
    ase.io.write(root / "train.xyz", _frames(2, 1))
    return [str(root / "pool.xyz")], [str(root / "train.xyz")]


def test_stopping_signal_drops_after_the_batch_and_ignores_chunking(files, sevennet64):
    pool, train = files
    signals = []
    for chunk_size in (3, 8):
        options = build_run_options(
            n=3, device="cpu", dim=4, chunk_size=chunk_size, dtype="float64"
        )
        run = run_selection(pool, train, options, backend=sevennet64)
        signals.append(run.run_record()["stopping_signal"])
    first, second = signals
    assert first["n_sample"] == 8 <= ERROR_SAMPLE
    assert not first["calibrated"] and "uncalibrated" in first["units"]
    assert "calibration" not in first
    assert first["pool_force_rmse_after"] < first["pool_force_rmse_before"]
    assert np.all(
        np.array(first["after_per_structure"]) <= np.array(first["before_per_structure"]) + 1e-12
    )
    assert first["pool_force_rmse_before"] == pytest.approx(second["pool_force_rmse_before"])
    assert first["pool_force_rmse_after"] == pytest.approx(second["pool_force_rmse_after"])


def _labelled(n: int, seed: int) -> list:
    """EMT-labelled molecules (EMT knows H, C, N, O): a calibration set with reference labels."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for atoms in _frames(n, seed):
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        out.append(atoms)
    return out


def test_calibrated_signal_is_fntk_uncertainty_calibration_on_the_sample(
    files, tmp_path, sevennet64, caplog
):
    """With ``calibrate``, the signal is the mean of the per-structure estimates that
    ``fntk uncertainty``'s calibration gives on the pool sample (same features, same fit),
    in eV/A; a training structure in the calibration set is dropped with a warning."""
    from fntk.features import compute_features
    from fntk.learn import LabelledSet
    from fntk.pipeline.uncertainty import fit_error_model

    pool, _ = files
    ase.io.write(tmp_path / "cal.xyz", _labelled(6, 7))
    ase.io.write(tmp_path / "train.xyz", _labelled(2, 1))
    train = [str(tmp_path / "train.xyz")]
    calibrate = [str(tmp_path / "cal.xyz"), *train]  # the training structures are dropped
    options = build_run_options(n=3, device="cpu", dim=4, dtype="float64", calibrate=calibrate)
    run = run_selection(pool, train, options, backend=sevennet64)
    signal = run.run_record()["stopping_signal"]
    assert signal["calibrated"] and signal["units"] == "eV/A"
    calibration = signal["calibration"]
    assert calibration["n_structures"] == 6 and calibration["dropped_overlap"] == [6, 7]
    assert "also in --train" in caplog.text
    assert calibration["error_model"]["force_calibration"]["n_errors"] > 0
    assert 0.0 <= calibration["force_scores"]["coverage_68"] <= 1.0
    assert signal["pool_force_rmse_after"] < signal["pool_force_rmse_before"]

    features = run.options.features
    train_atoms = ase.io.read(train[0], ":")
    model, record = fit_error_model(
        sevennet64, features, train_atoms, LabelledSet.from_files([str(tmp_path / "cal.xyz")])
    )
    sample = compute_features(sevennet64, ase.io.read(pool[0], ":"), features)
    expected = model.estimate(sample).force_sigma
    # the sample is the whole 8-structure pool, in the order of coverage's uniform sample
    np.testing.assert_allclose(
        np.sort(signal["before_per_structure"]), np.sort(expected), rtol=1e-6
    )
    assert calibration["error_model"]["force_calibration"] == pytest.approx(
        model.summary()["force_calibration"]
    )
    assert calibration["force_scores"] == pytest.approx(record.force_scores)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, train: [str(d / "bare.xyz")], "--calibrate needs reference energies and forces"),
        (lambda d, train: train, "every --calibrate structure is also in the --train set"),
    ],
)
def test_bad_calibration_set_is_one_error_before_any_features(files, tmp_path, make, message):
    from fntk.errors import InputError
    from fntk.pipeline import scan_inputs

    pool, _ = files
    ase.io.write(tmp_path / "bare.xyz", _frames(2, 3))
    ase.io.write(tmp_path / "train.xyz", _labelled(2, 1))
    train = [str(tmp_path / "train.xyz")]
    options = build_run_options(n=2, calibrate=make(tmp_path, train))
    with pytest.raises(InputError, match=message) as error:
        scan_inputs(pool, train, options)
    assert "\n" not in str(error.value)


def test_calibrate_needs_a_map_with_force_rows(tmp_path):
    from fntk.errors import InputError

    with pytest.raises(InputError, match="--calibrate calibrates the stopping signal"):
        build_run_options(features="embedding", calibrate=[str(tmp_path / "cal.xyz")])
