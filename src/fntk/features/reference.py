"""fntk's built-in reference set: the structures a data-adaptive hidden basis is fitted on.

A data-adaptive basis (``basis="pca"``, :mod:`fntk.features.basis`) keeps the principal
directions of the exact feature rows of a reference set. The built-in set is generated here
from the seed alone (no file, no pool), so the features stay a function of (structures, model,
options) and one store serves every round. It covers the chemistry of fntk's generated data
sets (``fntk data make``): small rattled and stretched organic molecules (H, C, N, O), small
clusters of the EMT metals (Al, Cu, Ag, Au, Ni, Pd, Pt) with and without an adsorbate, and
periodic four-atom cells of the same metals. Every structure has at most 14 atoms, so its
exact Jacobian costs at most 42 forward-mode passes (:mod:`fntk.features.jacobian`).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule

REFERENCE_NAME = "builtin-v1"
"""Name of this set's construction; stored in the feature options, so a store made with
another construction (or another seed) is refused."""

_MOLECULES = (
    "H2O",
    "NH3",
    "CH4",
    "CH3OH",
    "C2H4",
    "C2H6",
    "HCOOH",
    "CH3CHO",
    "CH3CN",
    "CH3CH2OH",
    "C6H6",
    "CO2",
    "HCN",
    "N2H4",
    "H2CO",
    "CH3NO2",
)
_METALS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")
_ADSORBATES = ("H", "O", "CO", "OH")


def builtin_reference(seed: int) -> list[Atoms]:
    """The built-in reference structures for ``seed`` (same seed, same structures, bit for bit).

    Returns
    -------
    list of ase.Atoms
        16 molecules rattled by 0.05-0.15 Angstrom, 16 with one bond stretched by 20-60%,
        7 metal clusters of 6-10 atoms (half with an adsorbate) and 7 periodic fcc cells.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xF17,)))
    structures = []
    for name in _MOLECULES:
        atoms = molecule(name)
        atoms.positions += rng.normal(0.0, rng.uniform(0.05, 0.15), atoms.positions.shape)
        structures.append(atoms)
    for name in _MOLECULES:
        structures.append(_stretched(molecule(name), rng))
    for k, metal in enumerate(_METALS):
        structures.append(_cluster(metal, _ADSORBATES[k % 4] if k % 2 else None, rng))
    for metal in _METALS:
        cell = bulk(metal, "fcc", cubic=True)
        cell.set_cell(cell.cell * rng.uniform(0.97, 1.03), scale_atoms=True)
        cell.positions += rng.normal(0.0, 0.08, cell.positions.shape)
        structures.append(cell)
    return structures


def _stretched(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    """Move one atom away from its nearest neighbour by 20-60% of their distance."""
    first = int(rng.integers(len(atoms)))
    distances = np.linalg.norm(atoms.positions - atoms.positions[first], axis=1)
    distances[first] = np.inf
    nearest = int(np.argmin(distances))
    bond = atoms.positions[first] - atoms.positions[nearest]
    atoms.positions[first] += rng.uniform(0.2, 0.6) * bond
    atoms.positions += rng.normal(0.0, 0.03, atoms.positions.shape)
    return atoms


def _cluster(metal: str, adsorbate: str | None, rng: np.random.Generator) -> Atoms:
    """A compact fcc fragment of 6-10 atoms, rattled, with an adsorbate on top of one atom."""
    lattice = bulk(metal, "fcc", cubic=True).repeat((2, 2, 2))
    centre = lattice.positions.mean(axis=0)
    order = np.argsort(np.linalg.norm(lattice.positions - centre, axis=1), kind="stable")
    cluster = lattice[order[: int(rng.integers(6, 11))]]
    cluster.set_cell(np.zeros((3, 3)))
    cluster.set_pbc(False)
    cluster.positions += rng.normal(0.0, 0.1, cluster.positions.shape)
    if adsorbate is not None:
        top = int(np.argmax(cluster.positions[:, 2]))
        site = cluster.positions[top] + (0.0, 0.0, 1.8)
        species = molecule(adsorbate) if len(adsorbate) > 1 else Atoms(adsorbate)
        species.translate(site - species.positions[0])
        cluster += species
    return cluster
