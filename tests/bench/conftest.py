"""Fixtures of the benchmark tests: tiny labelled sets, made here without any model."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.learn import LabelledSet


def labelled_atoms(i: int, metal: str = "Cu", temperature: float = 300.0) -> Atoms:
    """A 3-atom structure with made-up labels and info keys, distinct for every ``i``."""
    rng = np.random.default_rng(i)
    atoms = Atoms(f"{metal}2O", positions=rng.normal(scale=2.0, size=(3, 3)) + [[0, 0, 0]] * 3)
    atoms.info.update(metal=metal, temperature_K=temperature, index=i)
    atoms.calc = SinglePointCalculator(atoms, energy=float(-i), forces=rng.normal(size=(3, 3)))
    return atoms


@pytest.fixture
def tiny_sets() -> dict[str, LabelledSet]:
    """init (3), pool (10, two metals and temperatures) and one test split (2)."""
    pool = [
        labelled_atoms(10 + i, "Cu" if i % 2 else "Pt", 300.0 if i < 5 else 900.0)
        for i in range(10)
    ]
    return {
        "init": LabelledSet.from_structures([labelled_atoms(i) for i in range(3)]),
        "pool": LabelledSet.from_structures(pool),
        "test": LabelledSet.from_structures([labelled_atoms(100 + i) for i in range(2)]),
    }
