"""The ``emt-adsorbates`` benchmark set: adsorbates on fcc slabs from relaxation and short MD.

OC20-like data made with real (if simple) physics: H, C, N, O and small adsorbates on (111),
(100) and (211) slabs of six fcc metals, each placed at a physical height, pre-relaxed for a few
BFGS steps and run through a short Langevin trajectory with ASE's EMT; snapshots along the
trajectory are labelled with EMT energies (eV) and forces (eV/Angstrom). The in-distribution
splits use :data:`ID_METALS` x :data:`ID_ADSORBATES`; the out-of-distribution test splits swap
in unseen adsorbates (``test_ood-ads``), unseen metals (``test_ood-cat``) or both
(``test_ood-both``). Whole trajectories go to one split, so no split holds a near-copy of a
structure in another.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from ase import Atoms, units
from ase.build import bulk, fcc100, fcc111, fcc211
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.data import chemical_symbols
from ase.geometry import get_distances
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import BFGS

from fntk.data.adsorbates import LATTICE_CONSTANTS
from fntk.data.datasets import DatasetSpec, reference_molecule, register_dataset

ID_METALS = ("Cu", "Ag", "Pd", "Pt")
OOD_METALS = ("Au", "Ni")
ID_ADSORBATES = ("H", "O", "N", "C", "OH", "CO", "NH", "CH")
OOD_ADSORBATES = ("CH2", "NH2", "NO")
FACETS = ("111", "100", "211")
TEMPERATURES_K = (300.0, 600.0, 900.0)

SPLITS = {
    "init": (ID_METALS, ID_ADSORBATES),
    "pool": (ID_METALS, ID_ADSORBATES),
    "test_id": (ID_METALS, ID_ADSORBATES),
    "test_ood-ads": (ID_METALS, OOD_ADSORBATES),
    "test_ood-cat": (OOD_METALS, ID_ADSORBATES),
    "test_ood-both": (OOD_METALS, OOD_ADSORBATES),
}
"""Metals and adsorbates each split draws from."""

DEFAULT_SIZES = {
    "init": 20,
    "pool": 600,
    "test_id": 80,
    "test_ood-ads": 40,
    "test_ood-cat": 40,
    "test_ood-both": 40,
}
"""Structures per split: 820 structures, under a minute of EMT on one CPU core. Sized for
``fntk bench`` on a laptop: each slab's design rows cost about 2.7 s at the default width 32
(one backward pass of SevenNet-0 per column), so the default benchmark is about 40 minutes
of one CPU thread; raise the sizes on a GPU."""

_ADSORBATE_GEOMETRY = {
    # Anchor (surface-bonded) atom first, at the origin; the rest point away from the surface.
    "H": ("H", [[0, 0, 0]]),
    "O": ("O", [[0, 0, 0]]),
    "N": ("N", [[0, 0, 0]]),
    "C": ("C", [[0, 0, 0]]),
    "OH": ("OH", [[0, 0, 0], [0, 0, 0.97]]),
    "CO": ("CO", [[0, 0, 0], [0, 0, 1.15]]),
    "NH": ("NH", [[0, 0, 0], [0, 0, 1.03]]),
    "CH": ("CH", [[0, 0, 0], [0, 0, 1.10]]),
    "CH2": ("CH2", [[0, 0, 0], [0.9, 0, 0.6], [-0.9, 0, 0.6]]),
    "NH2": ("NH2", [[0, 0, 0], [0.82, 0, 0.6], [-0.82, 0, 0.6]]),
    "NO": ("NO", [[0, 0, 0], [0, 0, 1.17]]),
}
_ANCHOR_METAL_DISTANCE_ANGSTROM = {"H": 1.75, "C": 1.95, "N": 1.95, "O": 2.0}
"""Target shortest anchor-metal distance when placing an adsorbate (typical bond lengths)."""

_TIMESTEP_FS = 1.0
_FRICTION_PER_FS = 0.02
_RATTLE_ANGSTROM = 0.05


@dataclass(frozen=True)
class TrajectorySettings:
    """How each trajectory is made.

    Attributes
    ----------
    relax_steps : int
        BFGS steps (adsorbate and top layers free) before MD; stops earlier at 0.2 eV/Angstrom.
    md_steps : int
        Langevin steps of 1 fs after the relaxation.
    snapshot_every : int
        Steps between labelled snapshots; the relaxed, rattled start is a snapshot too.
    """

    relax_steps: int = 15
    md_steps: int = 40
    snapshot_every: int = 10


def make_split(
    name: str, size: int, rng: np.random.Generator, settings: TrajectorySettings
) -> list[Atoms]:
    """``size`` labelled snapshots of split ``name`` (a key of :data:`SPLITS`)."""
    metals, adsorbates = SPLITS[name]
    structures: list[Atoms] = []
    trajectory = 0
    while len(structures) < size:
        metal = str(rng.choice(metals))
        adsorbate = str(rng.choice(adsorbates))
        facet = str(rng.choice(FACETS))
        temperature = float(rng.choice(TEMPERATURES_K))
        for snapshot in _trajectory(metal, adsorbate, facet, temperature, rng, settings):
            snapshot.info.update(split=name, trajectory=trajectory)
            structures.append(snapshot)
        trajectory += 1
    return structures[:size]


def _trajectory(
    metal: str,
    adsorbate: str,
    facet: str,
    temperature: float,
    rng: np.random.Generator,
    settings: TrajectorySettings,
) -> list[Atoms]:
    slab = _slab(metal, facet)
    n_metal = len(slab)
    atoms = slab + _place(slab, adsorbate, rng)
    bottom = atoms.positions[:n_metal, 2] < atoms.positions[:n_metal, 2].min() + 0.5
    atoms.set_constraint(FixAtoms(indices=np.flatnonzero(bottom)))
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.2, steps=settings.relax_steps)
    free = np.append(~bottom, np.ones(len(atoms) - n_metal, dtype=bool))
    atoms.positions[free] += rng.normal(scale=_RATTLE_ANGSTROM, size=(int(free.sum()), 3))
    info = {
        "metal": metal,
        "adsorbate": adsorbate,
        "facet": facet,
        "temperature_K": temperature,
    }
    snapshots = [_labelled(atoms, info, md_step=0)]
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(
        atoms,
        _TIMESTEP_FS * units.fs,
        temperature_K=temperature,
        friction=_FRICTION_PER_FS / units.fs,
        rng=rng,
    )
    for step in range(settings.snapshot_every, settings.md_steps + 1, settings.snapshot_every):
        dynamics.run(settings.snapshot_every)
        snapshots.append(_labelled(atoms, info, md_step=step))
    return snapshots


def _slab(metal: str, facet: str) -> Atoms:
    a = LATTICE_CONSTANTS[metal]
    if facet == "211":
        return fcc211(metal, size=(3, 2, 3), a=a, vacuum=10.0)
    build = fcc111 if facet == "111" else fcc100
    return build(metal, size=(2, 2, 3), a=a, vacuum=10.0)


def _place(slab: Atoms, adsorbate: str, rng: np.random.Generator) -> Atoms:
    """The adsorbate above a random in-plane point, at a typical anchor-metal distance.

    The anchor is lowered from 3.5 Angstrom above the top layer until its nearest metal atom
    (periodic images included) is at the target distance, so it sits in whatever site lies
    below: hollow sites let it sink deeper than top sites, as on a real surface.
    """
    symbols, positions = _ADSORBATE_GEOMETRY[adsorbate]
    molecule = Atoms(symbols, positions=positions)
    molecule.rotate(rng.uniform(0.0, 25.0), (rng.normal(), rng.normal(), 0.0))
    molecule.rotate(rng.uniform(0.0, 360.0), "z")
    fractional = np.array([rng.uniform(), rng.uniform(), 0.0])
    xy = fractional @ slab.cell.array
    top = slab.positions[:, 2].max()
    target = _ANCHOR_METAL_DISTANCE_ANGSTROM[molecule.get_chemical_symbols()[0]]
    heights = np.arange(3.5, 0.3, -0.02)
    trial = np.column_stack(
        [np.full_like(heights, xy[0]), np.full_like(heights, xy[1]), top + heights]
    )
    _, distances = get_distances(trial, slab.positions, cell=slab.cell, pbc=slab.pbc)
    nearest = distances.min(axis=1)
    below = np.flatnonzero(nearest <= target)
    anchor = trial[below[0]] if below.size else trial[-1]
    molecule.positions += anchor
    return molecule


def _labelled(atoms: Atoms, info: dict, md_step: int) -> Atoms:
    """A copy without constraints or velocities, with EMT energy and forces attached."""
    snapshot = Atoms(
        atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
    )
    snapshot.calc = EMT()
    energy, forces = snapshot.get_potential_energy(), snapshot.get_forces()
    snapshot.calc = SinglePointCalculator(snapshot, energy=energy, forces=forces)
    snapshot.info.update(info, md_step=md_step)
    return snapshot


@register_dataset("emt-adsorbates")
def _spec() -> DatasetSpec:
    settings = TrajectorySettings()
    description = (
        f"""
OC20-like adsorbate-on-slab structures labelled with ASE's EMT (effective medium theory).

Each trajectory: a (111) or (100) 2x2x3 slab (12 metal atoms) or a (211) 3x2x3 stepped slab
(18 atoms), 10 Angstrom vacuum on each side, bottom layer fixed. The adsorbate (tilted up to
25 degrees, random azimuth) is lowered over a random in-plane point until its anchor atom is at
a typical anchor-metal distance (H 1.75, C/N 1.95, O 2.0 Angstrom), so it settles in the site
below it. Then {settings.relax_steps} BFGS steps at most (stop at 0.2 eV/Angstrom), a
{_RATTLE_ANGSTROM} Angstrom Gaussian rattle of the free atoms, and {settings.md_steps} Langevin
steps of {_TIMESTEP_FS} fs (friction {_FRICTION_PER_FS}/fs) at 300, 600 or 900 K. Snapshots:
the rattled start and every {settings.snapshot_every} steps; each is labelled without
constraints (forces on fixed atoms included). Whole trajectories belong to one split.

| split | metals | adsorbates |
|---|---|---|
"""
        + "\n".join(
            f"| {split} | {', '.join(metals)} | {', '.join(ads)} |"
            for split, (metals, ads) in SPLITS.items()
        )
        + """

Facets: 111, 100, 211 in every split. Frame info: `metal`, `adsorbate`, `facet`,
`temperature_K`, `md_step`, `trajectory` (index within the split).
"""
    )
    return DatasetSpec(
        name="emt-adsorbates",
        default_sizes=dict(DEFAULT_SIZES),
        make_split=partial(make_split, settings=settings),
        description=description,
        calculator=EMT,
        reference_structure=_reference_structure,
    )


def _reference_structure(z: int) -> Atoms:
    """Bulk fcc (one-atom primitive cell) of a metal, else the element's reference molecule."""
    symbol = chemical_symbols[z]
    if symbol in LATTICE_CONSTANTS:
        return bulk(symbol, "fcc", a=LATTICE_CONSTANTS[symbol])
    return reference_molecule(z)
