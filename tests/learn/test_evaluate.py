"""Error metrics per split against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.data import make_adsorbate_structures
from fntk.learn import EnergyShift, LabelledSet, evaluate, evaluate_splits


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


def test_force_errors_of_fixed_atoms_are_left_out_by_default(mace):
    from ase.constraints import FixAtoms

    structures = make_adsorbate_structures(2, seed=12, metals=("Cu",))
    predicted = mace.predict(structures, batch_size=2)
    for atoms, (energy, forces) in zip(structures, predicted):
        labels = forces.numpy().copy()
        fixed = np.arange(4)  # the bottom layer, as OC20's move_mask=False atoms
        labels[:, 0] += 0.05
        labels[fixed, 0] += 1.0  # fixed atoms: a large error that must not count
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=labels)
        atoms.set_constraint(FixAtoms(indices=fixed))
    labelled = LabelledSet.from_structures(structures)
    free = evaluate(mace, labelled, batch_size=1)
    assert free.force_mae_mev_per_ang == pytest.approx(50 / 3)
    every = evaluate(mace, labelled, batch_size=1, free_atoms_only=False)
    n_atoms, n_fixed = sum(len(a) for a in structures), 8
    assert every.force_mae_mev_per_ang == pytest.approx(
        (50 * n_atoms + 1000 * n_fixed) / (3 * n_atoms)
    )


def test_free_force_errors_masks_rows_in_structure_order():
    from ase import Atoms
    from ase.constraints import FixAtoms

    from fntk.learn.evaluate import free_force_errors

    a, b = Atoms("H3", positions=np.eye(3) * 2), Atoms("H2", positions=np.eye(3)[:2] * 2)
    a.set_constraint(FixAtoms(indices=[1]))
    b.set_constraint(FixAtoms(indices=[0, 1]))  # b fully fixed: contributes nothing
    errors = np.arange(15, dtype=float).reshape(5, 3)
    np.testing.assert_array_equal(free_force_errors(errors, [a, b]), [0, 1, 2, 6, 7, 8])
    assert len(free_force_errors(errors, [a, b], free_atoms_only=False)) == 15
    assert len(free_force_errors(errors[3:], [b])) == 6  # no free atom at all: keep every atom
    with pytest.raises(ValueError, match="4 force rows for 5 atoms"):
        free_force_errors(errors[:4], [a, b])
