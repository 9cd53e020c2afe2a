"""Labelled sets from files: labels by calculator or by named keys, provenance kept."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.data import make_adsorbate_structures
from fntk.errors import InputError
from fntk.io import write_extxyz
from fntk.learn import LabelledSet


def test_from_files_reads_labels_and_provenance(tmp_path):
    structures = make_adsorbate_structures(3, seed=2)
    for atoms in structures:
        atoms.info["REF_energy"] = atoms.get_potential_energy() + 1.0
        atoms.arrays["REF_forces"] = atoms.get_forces() * 2.0
    path = str(tmp_path / "train.xyz")
    write_extxyz(path, structures)
    by_calc = LabelledSet.from_files([path])
    assert np.allclose(by_calc.energies, [a.get_potential_energy() for a in structures])
    assert by_calc.source_files == [path] * 3 and by_calc.frame_indices == [0, 1, 2]
    by_key = LabelledSet.from_files([path], energy_key="REF_energy", forces_key="REF_forces")
    assert np.allclose(by_key.energies, by_calc.energies + 1.0)
    assert np.allclose(by_key.forces[2], 2.0 * by_calc.forces[2])
    sub = by_key.subset([2, 0])
    assert sub.frame_indices == [2, 0] and np.array_equal(sub.n_atoms, by_key.n_atoms[[2, 0]])


def test_from_files_names_the_frame_without_labels(tmp_path):
    structures = make_adsorbate_structures(2, seed=2, label=False)
    path = str(tmp_path / "pool.xyz")
    write_extxyz(path, structures)
    with pytest.raises(InputError, match=r"pool.xyz, frame 0: no reference energy"):
        LabelledSet.from_files([path])
