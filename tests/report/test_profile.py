"""Picks vs pool table of the select report: atoms, largest reference force, info tags."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.report.profile import StructureProfile, picks_vs_pool_rows


def _structure(n: int, force: float, kind: str, labelled: bool = True) -> Atoms:
    atoms = Atoms("H" * n, positions=np.arange(3 * n).reshape(n, 3) * 1.5)
    atoms.info.update(kind=kind, dataset="demo", temperature=300.0)
    if labelled:
        forces = np.zeros((n, 3))
        forces[0, 0] = force
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=forces)
    return atoms


def test_outlier_picks_stand_out_against_the_pool():
    pool = [_structure(7, 1.0, "md") for _ in range(19)] + [_structure(3, 12.0, "stretch")]
    picked = [_structure(3, 12.0, "stretch"), _structure(3, 11.0, "stretch")]
    pool_row, picked_row = picks_vs_pool_rows(
        StructureProfile.of(pool), StructureProfile.of(picked)
    )
    assert pool_row["median atoms"] == "7" and picked_row["median atoms"] == "3"
    assert pool_row["median max abs F (eV/Å)"] == "1.00"
    assert picked_row["above pool's 95th pct max abs F"] == "100%"
    assert pool_row["kind=stretch"] == "5%" and picked_row["kind=stretch"] == "100%"
    assert picked_row["kind=md"] == "0%"
    assert not any(k.startswith("dataset=") or k.startswith("temperature") for k in pool_row)


def test_unlabelled_structures_show_no_force_columns():
    pool = [_structure(4, 0.0, k, labelled=False) for k in ("a", "b", "a")]
    pool_row, picked_row = picks_vs_pool_rows(
        StructureProfile.of(pool), StructureProfile.of(pool[:1])
    )
    assert pool_row["median max abs F (eV/Å)"] == "-" and picked_row["kind=a"] == "100%"
