"""The ``xtb-reactions`` benchmark set: reaction-like geometries of small C/H/N/O molecules.

Transition1x-like data labelled with GFN2-xTB (Bannwarth, Ehlert, Grimme, JCTC 2019) through
the ``xtb`` Python package. Three kinds of geometry leave the equilibrium basin the way reaction
paths do: high-temperature Langevin MD snapshots (``md``), bond-dissociation scans that pull one
fragment away along a bond (``stretch``) and hydrogen transfers that carry an H atom from its
donor to another heavy atom (``h-transfer``). Whole trajectories and scans go to one split;
``test_ood`` holds molecules never seen in ``init``, ``pool`` or ``test_id``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.calculator import CalculationFailed
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.neighborlist import natural_cutoffs, neighbor_list
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fntk.data.datasets import DatasetSpec, reference_molecule, register_dataset
from fntk.errors import CapabilityError

ID_MOLECULES = (
    "CH4", "NH3", "H2O", "C2H2", "C2H4", "C2H6", "CH3OH", "H2CO", "HCOOH", "CH3CHO", "HCN",
    "H3CNH2", "CO2", "N2H4", "CH3CN", "H2O2",
)  # fmt: skip
"""ASE g2 names of the in-distribution molecules."""

OOD_MOLECULES = (
    "CH3CH2OH", "CH3COOH", "CH3CONH2", "CH3NO2", "HCOOCH3", "CH3OCH3", "CH3CH2NH2",
)  # fmt: skip
"""Larger molecules, only in ``test_ood``."""

SPLITS: dict[str, tuple[str, ...]] = {
    "init": ID_MOLECULES,
    "pool": ID_MOLECULES,
    "test_id": ID_MOLECULES,
}
SPLITS["test_ood"] = OOD_MOLECULES

DEFAULT_SIZES = {"init": 20, "pool": 1500, "test_id": 200, "test_ood": 200}
"""Structures per split: ~1900 structures, well under a minute of GFN2-xTB on one core."""

KINDS = ("md", "stretch", "h-transfer")
KIND_PROBABILITIES = (0.5, 0.25, 0.25)
TEMPERATURES_K = (500.0, 1000.0, 1500.0, 2000.0)
PATH_POINTS = 5
"""Labelled points along each stretch or transfer path."""

_MD_STEPS = 40
_SNAPSHOT_EVERY = 10
_TIMESTEP_FS = 0.5
_FRICTION_PER_FS = 0.01
_STRETCH_RANGE = (1.15, 2.2)
"""Final bond length over the equilibrium length of a dissociation scan."""
_ACCEPTOR_MAX_ANGSTROM = 3.5
_TRANSFERRED_BOND_ANGSTROM = 1.05
_PATH_CLEARANCE_ANGSTROM = 0.9
_RATTLE_ANGSTROM = 0.03


def xtb_calculator():
    """A fresh GFN2-xTB ASE calculator.

    Raises
    ------
    CapabilityError
        The ``xtb`` package is not installed (``pip install xtb``).
    """
    try:
        from xtb.ase.calculator import XTB
    except ImportError:
        raise CapabilityError(
            "data set 'xtb-reactions' needs the 'xtb' Python package (GFN2-xTB labels); "
            "install it with: pip install xtb"
        ) from None
    return XTB(method="GFN2-xTB")


def make_split(name: str, size: int, rng: np.random.Generator) -> list[Atoms]:
    """``size`` GFN2-xTB-labelled structures of split ``name`` (a key of :data:`SPLITS`)."""
    xtb_calculator()  # fail before any work when xtb is missing
    structures: list[Atoms] = []
    path = 0
    while len(structures) < size:
        name_ = str(rng.choice(SPLITS[name]))
        kind = str(rng.choice(KINDS, p=KIND_PROBABILITIES))
        for atoms in _path(name_, kind, rng):
            atoms.info.update(split=name, path=path)
            structures.append(atoms)
        path += 1
    return structures[:size]


def _path(name: str, kind: str, rng: np.random.Generator) -> list[Atoms]:
    """Labelled geometries of one MD run or scan; SCF failures are dropped."""
    start = molecule(name)
    start.info.clear()
    if kind == "md":
        temperature = float(rng.choice(TEMPERATURES_K))
        geometries = _md(start, temperature, rng)
        info: dict[str, object] = {"temperature_K": temperature}
    elif kind == "h-transfer" and (pair := _transfer_pair(start, rng)) is not None:
        geometries = _transfer(start, *pair, rng)
        info = {"moving_atom": pair[0], "acceptor_atom": pair[1]}
    else:
        kind = "stretch"
        i, j = _random_bond(start, rng)
        geometries = _stretch(start, i, j, rng)
        info = {"bond": f"{i}-{j}"}
    labelled = []
    for point, geometry in enumerate(geometries):
        atoms = _label(geometry)
        if atoms is not None:
            atoms.info.update(info, molecule=name, kind=kind, point=point)
            labelled.append(atoms)
    return labelled


def xtb_langevin(
    atoms: Atoms, temperature: float, rng: np.random.Generator, *, fixcm: bool = True
) -> Langevin:
    """Langevin dynamics of ``atoms`` (given GFN2-xTB and Maxwell-Boltzmann velocities drawn
    from ``rng``) at ``temperature`` K, with this module's time step and friction."""
    atoms.calc = xtb_calculator()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    return Langevin(
        atoms,
        _TIMESTEP_FS * units.fs,
        temperature_K=temperature,
        friction=_FRICTION_PER_FS / units.fs,
        fixcm=fixcm,
        rng=rng,
    )


def _md(atoms: Atoms, temperature: float, rng: np.random.Generator) -> list[Atoms]:
    atoms = atoms.copy()
    dynamics = xtb_langevin(atoms, temperature, rng)
    snapshots = []
    for _ in range(_MD_STEPS // _SNAPSHOT_EVERY):
        try:
            dynamics.run(_SNAPSHOT_EVERY)
        except CalculationFailed:
            break
        snapshots.append(Atoms(atoms.numbers, positions=atoms.positions))
    return snapshots


def _bonds(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.1))
    return i, j


def _random_bond(atoms: Atoms, rng: np.random.Generator) -> tuple[int, int]:
    i, j = _bonds(atoms)
    k = int(rng.integers(len(i)))
    return int(i[k]), int(j[k])


def _stretch(atoms: Atoms, i: int, j: int, rng: np.random.Generator) -> list[Atoms]:
    """Pull the fragment holding ``j`` away from ``i`` along the bond (only ``j`` in a ring)."""
    bi, bj = _bonds(atoms)
    keep = ~(((bi == i) & (bj == j)) | ((bi == j) & (bj == i)))
    graph = coo_matrix((np.ones(keep.sum()), (bi[keep], bj[keep])), shape=(len(atoms),) * 2)
    _, component = connected_components(graph, directed=False)
    moving = component == component[j]
    if moving[i]:
        moving = np.arange(len(atoms)) == j
    bond = atoms.positions[j] - atoms.positions[i]
    final = rng.uniform(*_STRETCH_RANGE)
    geometries = []
    for factor in np.linspace(1.0, final, PATH_POINTS):
        geometry = atoms.copy()
        geometry.positions[moving] += (factor - 1.0) * bond
        geometries.append(_rattled(geometry, rng))
    return geometries


def _transfer_pair(atoms: Atoms, rng: np.random.Generator) -> tuple[int, int] | None:
    """A bonded H atom and another heavy atom within 3.5 Angstrom that it can reach, or None.

    A pair qualifies when the straight path of :func:`_transfer_path` keeps the H atom at
    least 0.9 Angstrom from every other atom (no path through the donor or a third atom).
    """
    bi, bj = _bonds(atoms)
    numbers = atoms.numbers
    candidates = []
    for h in np.flatnonzero(numbers == 1):
        donors = set(bj[bi == h].tolist())
        distances = atoms.get_distances(h, range(len(atoms)))
        for a in np.flatnonzero((numbers > 1) & (distances < _ACCEPTOR_MAX_ANGSTROM)):
            if int(a) in donors:
                continue
            others = np.delete(atoms.positions, h, axis=0)
            path = _transfer_path(atoms, int(h), int(a))
            gaps = np.linalg.norm(path[:, None, :] - others[None, :, :], axis=-1)
            if gaps.min() >= _PATH_CLEARANCE_ANGSTROM:
                candidates.append((int(h), int(a)))
    if not candidates:
        return None
    return candidates[int(rng.integers(len(candidates)))]


def _transfer_path(atoms: Atoms, h: int, acceptor: int) -> np.ndarray:
    """Positions (PATH_POINTS, 3) of H on the line to a bond length from the acceptor."""
    start = atoms.positions[h]
    direction = start - atoms.positions[acceptor]
    end = atoms.positions[acceptor] + _TRANSFERRED_BOND_ANGSTROM * direction / np.linalg.norm(
        direction
    )
    t = np.linspace(0.0, 1.0, PATH_POINTS)[:, None]
    return (1.0 - t) * start + t * end


def _transfer(atoms: Atoms, h: int, acceptor: int, rng: np.random.Generator) -> list[Atoms]:
    """Move H in a straight line to a bond length from the acceptor."""
    geometries = []
    for position in _transfer_path(atoms, h, acceptor):
        geometry = atoms.copy()
        geometry.positions[h] = position
        geometries.append(_rattled(geometry, rng))
    return geometries


def _rattled(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    atoms.positions += rng.normal(scale=_RATTLE_ANGSTROM, size=atoms.positions.shape)
    return atoms


def _label(geometry: Atoms) -> Atoms | None:
    """GFN2-xTB energy and forces attached as a single-point calculator; None if SCF fails."""
    atoms = Atoms(geometry.numbers, positions=geometry.positions)
    atoms.calc = xtb_calculator()
    try:
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    except CalculationFailed:
        return None
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


@register_dataset("xtb-reactions")
def _spec() -> DatasetSpec:
    description = f"""
Transition1x-like reaction geometries of small C/H/N/O molecules labelled with GFN2-xTB
(`xtb` Python package, `xtb.ase.calculator.XTB`, method GFN2-xTB, gas phase, neutral singlet).

Each path starts from an ASE g2 molecule and is one of (probabilities {KIND_PROBABILITIES}):
- `md`: Langevin MD with GFN2-xTB ({_TIMESTEP_FS} fs steps, friction {_FRICTION_PER_FS}/fs) at
  {", ".join(f"{t:.0f}" for t in TEMPERATURES_K)} K, a snapshot every {_SNAPSHOT_EVERY} steps
  for {_MD_STEPS} steps;
- `stretch`: a bond-dissociation scan, {PATH_POINTS} points from the equilibrium length to
  {_STRETCH_RANGE[0]}-{_STRETCH_RANGE[1]} times it, moving the fragment on one side (one atom
  when the bond is in a ring);
- `h-transfer`: an H atom carried in {PATH_POINTS} straight-line points from its donor to
  {_TRANSFERRED_BOND_ANGSTROM} Angstrom from another heavy atom within
  {_ACCEPTOR_MAX_ANGSTROM} Angstrom (a 1,2- or 1,3-H shift) whose path stays
  {_PATH_CLEARANCE_ANGSTROM} Angstrom from every other atom (a `stretch` for molecules without
  such a pair).

Scan points get a {_RATTLE_ANGSTROM} Angstrom Gaussian rattle. Geometries whose SCF fails are
dropped. xtb runs OpenMP threads: on a shared machine `OMP_NUM_THREADS=1` is fastest.
Frame info: `molecule`, `kind`, `point` (index along the path), `path`, and
`temperature_K`, `bond` or `moving_atom`/`acceptor_atom`.

| split | molecules |
|---|---|
""" + "\n".join(f"| {split} | {', '.join(names)} |" for split, names in SPLITS.items())
    return DatasetSpec(
        name="xtb-reactions",
        default_sizes=dict(DEFAULT_SIZES),
        make_split=make_split,
        description=description,
        calculator=xtb_calculator,
        reference_structure=reference_molecule,
    )
