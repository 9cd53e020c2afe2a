"""Adsorbates on fcc metal slabs, generated with ASE and labelled with EMT (OC20-like).

Deterministic for a seed: the same call returns the same structures on any machine. EMT covers
Al, Cu, Ag, Au, Ni, Pd, Pt with H, C, N, O, which is what these sets use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, fcc100, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

LATTICE_CONSTANTS = {"Cu": 3.61, "Ag": 4.09, "Au": 4.08, "Ni": 3.52, "Pd": 3.89, "Pt": 3.92}
ADSORBATES = {
    "H": Atoms("H"),
    "O": Atoms("O"),
    "N": Atoms("N"),
    "C": Atoms("C"),
    "OH": Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]]),
    "CO": Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]]),
    "NH": Atoms("NH", positions=[[0, 0, 0], [0, 0, 1.03]]),
    "CH2": molecule("CH2_s1A1d"),
}
SITES = {"111": ("ontop", "bridge", "fcc", "hcp"), "100": ("ontop", "bridge", "hollow")}
SITE_HEIGHTS_ANGSTROM = {"ontop": 1.85, "bridge": 1.55, "fcc": 1.3, "hcp": 1.3, "hollow": 1.2}
"""Typical adsorbate heights above the top layer; each structure adds -0.1..+0.3 Angstrom."""


def make_adsorbate_structures(
    n: int,
    *,
    metals: Sequence[str] = ("Cu", "Pt", "Ni"),
    adsorbates: Sequence[str] = ("H", "O", "OH", "CO"),
    facets: Sequence[str] = ("111", "100"),
    rattle_angstrom: float = 0.08,
    seed: int = 0,
    label: bool = True,
) -> list[Atoms]:
    """``n`` rattled adsorbate-on-slab structures (2x2x3 slabs, 10 Angstrom vacuum).

    Each structure records ``metal``, ``adsorbate``, ``facet`` and ``site`` in ``info``. With
    ``label=True`` energy (eV) and forces (eV/Angstrom) from ASE's EMT are attached as a
    single-point calculator, which extended XYZ writes as ``energy=`` and ``forces``.
    """
    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(n):
        metal = str(rng.choice(metals))
        name = str(rng.choice(adsorbates))
        facet = str(rng.choice(facets))
        site = str(rng.choice(SITES[facet]))
        build = fcc111 if facet == "111" else fcc100
        slab = build(metal, size=(2, 2, 3), a=LATTICE_CONSTANTS[metal], vacuum=10.0)
        height = SITE_HEIGHTS_ANGSTROM[site] + rng.uniform(-0.1, 0.3)
        add_adsorbate(slab, ADSORBATES[name].copy(), height, site)
        slab.positions += rng.normal(scale=rattle_angstrom, size=slab.positions.shape)
        slab.info.pop("adsorbate_info", None)  # nested dicts do not survive extended XYZ
        slab.info.update(metal=metal, adsorbate=name, facet=facet, site=site)
        if label:
            slab.calc = EMT()
            energy, forces = slab.get_potential_energy(), slab.get_forces()
            slab.calc = SinglePointCalculator(slab, energy=energy, forces=forces)
        structures.append(slab)
    return structures
