"""``fntk.Calculator``: model energy and forces as ``fntk predict`` gives them, and a fast
low-rank uncertainty equal to the feature-path estimate when the rank is full."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT

import fntk
from fntk.features import compute_features
from fntk.io.read import StructureChunk
from fntk.predict import predict_chunk
from fntk.select.errorbars import ErrorModel

NAMES = ("CH4", "H2O", "NH3", "CO", "C2H2", "HCN", "CH3OH", "H2CO")


def _labelled(names, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        atoms = molecule(name)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        atoms.get_forces()
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def sets():
    return _labelled(NAMES[:3], 0), _labelled(NAMES[3:], 1), _labelled(("CH3OH", "HCN"), 2)


def test_calculator_matches_predict_and_the_feature_path(sevennet64, sets):
    train, calibration, tests = sets
    calc = fntk.Calculator(sevennet64, train=train, calibrate=calibration, dim=4, rank=4)
    assert calc.calibrated
    # same precision and calibration as the calculator, full posterior (no rank)
    full = ErrorModel(force_row_scale=calc.options.force_weight, rank=None)
    full.precision_ = calc.error_model.precision_
    full.force_calibration_ = calc.error_model.force_calibration_
    full.energy_calibration_ = calc.error_model.energy_calibration_
    chunk = StructureChunk(
        structures=tests, source_files=["m"] * 2, frame_indices=[0, 1], global_indices=np.arange(2)
    )
    predicted = predict_chunk(sevennet64, chunk)
    features = compute_features(sevennet64, tests, calc.options)
    expected = full.estimate(features)
    for j, atoms in enumerate(tests):
        atoms = atoms.copy()
        atoms.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(
            predicted[j].info["fntk_energy"], abs=1e-8
        )
        np.testing.assert_allclose(
            atoms.get_forces(), predicted[j].arrays["fntk_forces"], atol=1e-8
        )
        assert calc.results["force_uncertainty"] == pytest.approx(expected.force_sigma[j], rel=1e-6)
        np.testing.assert_allclose(
            calc.results["atom_force_uncertainty"], expected.atom_force_sigma[j], rtol=1e-6
        )
        assert calc.results["energy_uncertainty"] == pytest.approx(
            expected.energy_sigma[j], rel=1e-6
        )


def test_calculator_needs_training_structures(sevennet64):
    with pytest.raises(ValueError, match="training structures"):
        fntk.Calculator(sevennet64, train=[])


def test_calculator_without_linear_readout_uses_the_features(mace64, sets):
    train, _, tests = sets
    calc = fntk.Calculator(mace64, train=train, dim=4, rank=4)
    assert calc._hidden is None and not calc.calibrated
    atoms = tests[0].copy()
    atoms.calc = calc
    energy, forces = mace64.predict([tests[0]])[0]
    assert atoms.get_potential_energy() == pytest.approx(energy)
    np.testing.assert_allclose(atoms.get_forces(), forces.numpy())
    features = compute_features(mace64, [tests[0]], calc.options)
    expected = calc.error_model.estimate(features)
    assert atoms.calc.results["force_uncertainty"] == pytest.approx(expected.force_sigma[0])
