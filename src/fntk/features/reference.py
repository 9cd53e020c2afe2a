"""fntk's built-in reference sets: the structures a data-adaptive hidden basis is fitted on.

A data-adaptive basis (``basis="pca"``, :mod:`fntk.features.basis`) keeps the principal
directions of the exact feature rows of a reference set. The built-in sets are generated here
from the seed alone (no file, no pool), so the features stay a function of (structures, model,
options) and one store serves every round. They cover the chemistry of fntk's generated data
sets (``fntk data make``):

- ``builtin-v1``: small rattled and stretched organic molecules (H, C, N, O), small clusters
  of the EMT metals (Al, Cu, Ag, Au, Ni, Pd, Pt) with and without an adsorbate, and periodic
  four-atom cells of the same metals; at most 14 atoms per structure. Its principal
  directions miss much of the force kernel of larger structures (35-atom clusters).
- ``builtin-v2``: v1 plus larger structures, stratified by atom count: one metal cluster per
  metal, the metals taking the bins of :data:`CLUSTER_SIZE_BINS` in turn (half with an
  adsorbate), and one adsorbate-on-slab structure (periodic in-plane, 2x2x3 or 3x3x3) per
  metal; up to 49 atoms per structure.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc100, fcc111, molecule

REFERENCE_NAMES = ("builtin-v1", "builtin-v2")
"""Names of the constructions; the one used is stored in the feature options, so a store made
with another construction (or another seed) is refused."""
CLUSTER_SIZE_BINS = ((11, 20), (21, 32), (33, 48))
"""Atom-count bins (inclusive) of ``builtin-v2``'s larger metal clusters."""

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


def builtin_reference(seed: int, name: str = "builtin-v1") -> list[Atoms]:
    """The built-in reference structures ``name`` for ``seed`` (same seed, same structures, bit
    for bit).

    Returns
    -------
    list of ase.Atoms
        ``builtin-v1``: 16 molecules rattled by 0.05-0.15 Angstrom, 16 with one bond stretched
        by 20-60%, 7 metal clusters of 6-10 atoms (half with an adsorbate) and 7 periodic fcc
        cells (46 structures, 273 atoms for seed 0). ``builtin-v2``: the same, then 7 metal
        clusters of 11-48 atoms and 7 slabs with an adsorbate (60 structures).

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the valid ones).
    """
    if name not in REFERENCE_NAMES:
        raise ValueError(f"unknown reference set {name!r}; valid: {', '.join(REFERENCE_NAMES)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xF17,)))
    structures = []
    for formula in _MOLECULES:
        atoms = molecule(formula)
        atoms.positions += rng.normal(0.0, rng.uniform(0.05, 0.15), atoms.positions.shape)
        structures.append(atoms)
    for formula in _MOLECULES:
        structures.append(_stretched(molecule(formula), rng))
    for k, metal in enumerate(_METALS):
        size = int(rng.integers(6, 11))
        structures.append(_cluster(metal, _ADSORBATES[k % 4] if k % 2 else None, size, 2, rng))
    for metal in _METALS:
        cell = bulk(metal, "fcc", cubic=True)
        cell.set_cell(cell.cell * rng.uniform(0.97, 1.03), scale_atoms=True)
        cell.positions += rng.normal(0.0, 0.08, cell.positions.shape)
        structures.append(cell)
    if name == "builtin-v2":
        structures += _larger_structures(seed)
    return structures


def _larger_structures(seed: int) -> list[Atoms]:
    """``builtin-v2``'s additions: clusters stratified by atom count, and slabs."""
    # A stream of its own, so that the v1 part stays bit-identical.
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xF17, 2)))
    structures = []
    for k, metal in enumerate(_METALS):
        low, high = CLUSTER_SIZE_BINS[k % len(CLUSTER_SIZE_BINS)]
        size = int(rng.integers(low, high + 1))
        structures.append(_cluster(metal, _ADSORBATES[k % 4] if k % 2 else None, size, 3, rng))
    for k, metal in enumerate(_METALS):
        build = fcc111 if k % 2 else fcc100
        slab = build(metal, size=(2 + k % 2, 2 + k % 2, 3), vacuum=8.0)
        slab.info.pop("adsorbate_info", None)
        top = int(np.argmax(slab.positions[:, 2]))
        species = _species(_ADSORBATES[k % 4])
        site = slab.positions[top] + (0.0, 0.0, rng.uniform(1.6, 2.0))
        species.translate(site - species.positions[np.argmin(species.positions[:, 2])])
        slab += species
        slab.positions += rng.normal(0.0, 0.08, slab.positions.shape)
        structures.append(slab)
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


def _species(adsorbate: str) -> Atoms:
    return molecule(adsorbate) if len(adsorbate) > 1 else Atoms(adsorbate)


def _cluster(
    metal: str, adsorbate: str | None, size: int, repeat: int, rng: np.random.Generator
) -> Atoms:
    """A compact fragment of ``size`` atoms cut from a ``repeat``-fold fcc cube, rattled, with
    an adsorbate on top of one atom."""
    lattice = bulk(metal, "fcc", cubic=True).repeat((repeat,) * 3)
    centre = lattice.positions.mean(axis=0)
    order = np.argsort(np.linalg.norm(lattice.positions - centre, axis=1), kind="stable")
    cluster = lattice[order[:size]]
    cluster.set_cell(np.zeros((3, 3)))
    cluster.set_pbc(False)
    cluster.positions += rng.normal(0.0, 0.1, cluster.positions.shape)
    if adsorbate is not None:
        top = int(np.argmax(cluster.positions[:, 2]))
        site = cluster.positions[top] + (0.0, 0.0, 1.8)
        species = _species(adsorbate)
        species.translate(site - species.positions[0])
        cluster += species
    return cluster
