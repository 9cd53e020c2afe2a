"""Error metrics per split against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.al import EnergyShift, LabelledSet, evaluate, evaluate_splits
from fntk.data import make_adsorbate_structures


def test_metrics_in_mev_per_atom_and_mev_per_angstrom(mace):
    structures = make_adsorbate_structures(3, seed=11, metals=("Cu",))
    predicted = mace.predict(structures, batch_size=2)
    energy_offsets = np.array([0.01, -0.02, 0.04])  # eV/atom
    force_offset = 0.05  # eV/Angstrom on the x component of every atom
    for atoms, (energy, forces), de in zip(structures, predicted, energy_offsets):
        labels = forces.numpy().copy()
        labels[:, 0] += force_offset
        atoms.calc = SinglePointCalculator(atoms, energy=energy + de * len(atoms), forces=labels)
    labelled = LabelledSet.from_structures(structures)
    metrics = evaluate(mace, labelled, batch_size=2)
    assert metrics.n_structures == 3 and metrics.n_atoms == sum(len(a) for a in structures)
    assert metrics.energy_mae_mev_per_atom == pytest.approx(1000 * np.mean(np.abs(energy_offsets)))
    assert metrics.energy_rmse_mev_per_atom == pytest.approx(
        1000 * np.sqrt(np.mean(energy_offsets**2))
    )
    assert metrics.force_mae_mev_per_ang == pytest.approx(50 / 3)
    assert metrics.force_rmse_mev_per_ang == pytest.approx(50 / np.sqrt(3))

    copper_only = EnergyShift([29], [0.02])
    by_split = evaluate_splits(mace, {"a": labelled, "b": labelled}, energy_shift=copper_only)
    assert set(by_split) == {"a", "b"} and by_split["a"] == by_split["b"]
    assert by_split["a"].energy_mae_mev_per_atom != metrics.energy_mae_mev_per_atom
    assert by_split["a"].force_mae_mev_per_ang == pytest.approx(metrics.force_mae_mev_per_ang)
