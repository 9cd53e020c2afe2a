"""The ``xtb-md`` benchmark set: a user-like molecular MD pool labelled with GFN2-xTB.

What a user who fine-tunes on their own simulations holds: many Langevin MD trajectories of
small C/H/N/O molecules at several temperatures, frames saved every 2 fs (consecutive frames
are nearly the same structure), a pool dominated by a few molecules (three hold ~72% of the
frames), and ~2% rare events (2000 K frames and stretched bonds). Test splits ask what a user
cares about: ``test_id`` (other trajectories, the pool's mix), ``test_balanced`` (equal frames
per pool molecule), ``test_rare`` (rare events only) and ``test_ood`` (molecules absent from
the pool). Labels are the MD's own GFN2-xTB energies and forces at each saved frame
(Bannwarth, Ehlert, Grimme, JCTC 2019; ``xtb`` Python package).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import CalculationFailed
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import natural_cutoffs, neighbor_list
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fntk.data.datasets import DatasetSpec, reference_molecule, register_dataset
from fntk.data.xtb_reactions import (
    _FRICTION_PER_FS,
    _TIMESTEP_FS,
    ID_MOLECULES,
    OOD_MOLECULES,
    xtb_calculator,
    xtb_langevin,
)

POOL_MOLECULES = ID_MOLECULES
"""ASE g2 names of the molecules of ``init``, ``pool``, ``test_id``, ``test_balanced`` and
``test_rare``."""

DOMINANT_SHARES = {"CH3OH": 0.30, "C2H6": 0.22, "CH3CHO": 0.20}
"""Share of normal frames held by the dominant molecules; the others split the rest equally."""

TEMPERATURES_K = (300.0, 600.0, 1000.0)
"""Temperatures of normal trajectories (one drawn per trajectory)."""

RARE_TEMPERATURE_K = 2000.0
RARE_FRACTION = 0.02
"""Share of rare-event frames in ``pool`` and ``test_id`` (half hot, half stretched)."""

STRETCH_RANGE = (1.3, 1.8)
"""A stretched frame's bond length over its length in the MD frame it comes from."""

MAX_RARE_FORCE = 25.0
"""Largest atomic force (eV/Angstrom) a rare frame may have; steeper ones are drawn again."""

DEFAULT_SIZES = {
    "init": 16,
    "pool": 5000,
    "test_id": 200,
    "test_balanced": 160,
    "test_rare": 100,
    "test_ood": 160,
}

_WARMUP_STEPS = 20
"""Unsaved steps that leave the g2 geometry before a trajectory's first frame."""


@dataclass(frozen=True)
class _SplitPlan:
    """How a split is drawn.

    Attributes
    ----------
    molecules : tuple of str
    balanced : bool
        Equal frames per molecule (else :data:`DOMINANT_SHARES`).
    rare_fraction : float
        Share of rare frames (1.0: rare frames only).
    frames_per_trajectory : int
    save_every : int
        MD steps between saved frames.
    """

    molecules: tuple[str, ...]
    balanced: bool
    rare_fraction: float
    frames_per_trajectory: int
    save_every: int


PLANS = {
    "init": _SplitPlan(POOL_MOLECULES, False, 0.0, 1, 4),
    "pool": _SplitPlan(POOL_MOLECULES, False, RARE_FRACTION, 50, 4),
    "test_id": _SplitPlan(POOL_MOLECULES, False, RARE_FRACTION, 10, 20),
    "test_balanced": _SplitPlan(POOL_MOLECULES, True, 0.0, 5, 20),
    "test_rare": _SplitPlan(POOL_MOLECULES, True, 1.0, 1, 4),
    "test_ood": _SplitPlan(OOD_MOLECULES, True, 0.0, 10, 20),
}


def molecule_counts(molecules: tuple[str, ...], balanced: bool, n_frames: int) -> dict[str, int]:
    """Frames of each molecule: equal, or :data:`DOMINANT_SHARES` and an equal rest; the
    counts sum to ``n_frames`` (largest remainders)."""
    if balanced:
        shares = np.full(len(molecules), 1.0 / len(molecules))
    else:
        rest = [m for m in molecules if m not in DOMINANT_SHARES]
        left = 1.0 - sum(DOMINANT_SHARES.values())
        shares = np.array([DOMINANT_SHARES.get(m, left / len(rest)) for m in molecules])
    exact = shares * n_frames
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n_frames - counts.sum()]:
        counts[i] += 1
    return dict(zip(molecules, counts.tolist()))


def make_split(name: str, size: int, rng: np.random.Generator) -> list[Atoms]:
    """``size`` GFN2-xTB-labelled frames of split ``name`` (a key of :data:`PLANS`)."""
    xtb_calculator()  # fail before any work when xtb is missing
    plan = PLANS[name]
    n_rare = round(plan.rare_fraction * size)
    structures: list[Atoms] = []
    trajectory = 0
    for mol, count in molecule_counts(plan.molecules, plan.balanced, size - n_rare).items():
        made: list[Atoms] = []
        while len(made) < count:
            temperature = float(rng.choice(TEMPERATURES_K))
            frames = _trajectory(
                mol,
                temperature,
                min(plan.frames_per_trajectory, count - len(made)),
                plan.save_every,
                rng,
            )
            for atoms in frames:
                atoms.info.update(kind="md", rare=False, trajectory=trajectory)
            made += frames
            trajectory += 1
        structures += made
    rare_molecules = rng.choice(plan.molecules, size=n_rare)
    for k, mol in enumerate(rare_molecules):
        atoms = _hot_frame(str(mol), rng) if k % 2 == 0 else _stretched_frame(str(mol), rng)
        atoms.info.update(rare=True, trajectory=trajectory)
        structures.append(atoms)
        trajectory += 1
    for atoms in structures:
        atoms.info["split"] = name
    return structures


def _trajectory(
    name: str, temperature: float, n_frames: int, save_every: int, rng: np.random.Generator
) -> list[Atoms]:
    """Up to ``n_frames`` labelled frames of one Langevin run (fewer if the SCF fails)."""
    atoms = molecule(name)
    atoms.info.clear()
    dynamics = xtb_langevin(atoms, temperature, rng, fixcm=False)
    frames: list[Atoms] = []
    try:
        dynamics.run(_WARMUP_STEPS)
        for point in range(n_frames):
            dynamics.run(save_every)
            frame = Atoms(atoms.numbers, positions=atoms.positions)
            # the step's own GFN2-xTB results at these positions: no second calculation
            frame.calc = SinglePointCalculator(
                frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
            )
            frame.info.update(molecule=name, temperature_K=temperature, point=point)
            frames.append(frame)
    except CalculationFailed:
        pass
    return frames


def _hot_frame(name: str, rng: np.random.Generator) -> Atoms:
    """One frame of a short :data:`RARE_TEMPERATURE_K` run (drawn again if the SCF fails or a
    force exceeds :data:`MAX_RARE_FORCE`)."""
    while True:
        frames = _trajectory(name, RARE_TEMPERATURE_K, 1, 20, rng)
        if frames and np.linalg.norm(frames[0].get_forces(), axis=1).max() <= MAX_RARE_FORCE:
            frames[0].info["kind"] = "hot"
            return frames[0]


def _stretched_frame(name: str, rng: np.random.Generator) -> Atoms:
    """A 600 K frame with one bond a-b stretched by :data:`STRETCH_RANGE`, relabelled: the
    fragment on b's side moves (b alone when the bond is in a ring)."""
    while True:
        frames = _trajectory(name, 600.0, 1, 4, rng)
        if not frames:
            continue
        start = frames[0]
        i, j = neighbor_list("ij", start, natural_cutoffs(start, mult=1.1))
        if not len(i):
            continue
        k = int(rng.integers(len(i)))
        a, b = int(i[k]), int(j[k])
        keep = ~(((i == a) & (j == b)) | ((i == b) & (j == a)))
        graph = coo_matrix((np.ones(keep.sum()), (i[keep], j[keep])), shape=(len(start),) * 2)
        _, component = connected_components(graph, directed=False)
        moving = component == component[b]
        if moving[a]:
            moving = np.arange(len(start)) == b
        factor = float(rng.uniform(*STRETCH_RANGE))
        atoms = Atoms(start.numbers, positions=start.positions)
        atoms.positions[moving] += (factor - 1.0) * (start.positions[b] - start.positions[a])
        atoms.calc = xtb_calculator()
        try:
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        except CalculationFailed:
            continue
        if np.linalg.norm(forces, axis=1).max() > MAX_RARE_FORCE:
            continue
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info.update(
            molecule=name, temperature_K=600.0, point=0, kind="stretch", bond=f"{a}-{b}"
        )
        return atoms


@register_dataset("xtb-md")
def _spec() -> DatasetSpec:
    others = [m for m in POOL_MOLECULES if m not in DOMINANT_SHARES]
    left = 1.0 - sum(DOMINANT_SHARES.values())
    dominant = ", ".join(f"{m} {share:.0%}" for m, share in DOMINANT_SHARES.items())
    rows = "\n".join(
        f"| {split} | {'equal per molecule' if plan.balanced else 'imbalanced'} "
        f"| {plan.rare_fraction:.0%} | {plan.frames_per_trajectory} "
        f"| {plan.save_every * _TIMESTEP_FS:g} fs | {', '.join(plan.molecules)} |"
        for split, plan in PLANS.items()
    )
    description = f"""
A user-like pool of molecular MD frames labelled with GFN2-xTB (`xtb` Python package,
`xtb.ase.calculator.XTB`, method GFN2-xTB, gas phase, neutral singlet).

Every normal frame comes from a Langevin trajectory ({_TIMESTEP_FS} fs steps, friction
{_FRICTION_PER_FS}/fs, temperature drawn per trajectory from
{", ".join(f"{t:.0f}" for t in TEMPERATURES_K)} K) started from the ASE g2 geometry with
Maxwell-Boltzmann velocities and {_WARMUP_STEPS} unsaved steps; its labels are the MD step's
own energy and forces. The pool saves a frame every {4 * _TIMESTEP_FS:g} fs along trajectories
of 50 frames, so neighbouring frames are nearly redundant, as in a real MD pool.

- Imbalance: in `init`, `pool` and `test_id` the normal frames are shared {dominant} and
  {left / len(others):.1%} for each of the other {len(others)} molecules.
- Rare events ({RARE_FRACTION:.0%} of `pool` and `test_id`, all of `test_rare`; molecules drawn
  uniformly): alternately a `hot` frame ({RARE_TEMPERATURE_K:.0f} K, 40 steps from the g2
  geometry) and a `stretch` frame (a 600 K frame whose bond a-b is stretched to
  {STRETCH_RANGE[0]}-{STRETCH_RANGE[1]} times its length by moving the fragment on b's side,
  or b alone in a ring, relabelled); rare frames with an atomic force above
  {MAX_RARE_FORCE:g} eV/Angstrom are drawn again. Rare frames are single frames (the
  trajectory columns below do not apply to them).
- `test_id` uses its own trajectories (disjoint from the pool's), the pool's mix, frames
  {20 * _TIMESTEP_FS:g} fs apart; `test_balanced` has equal frames per pool molecule; `test_ood`
  holds molecules absent from every other split.

Frame info: `molecule`, `temperature_K`, `kind` (`md`, `hot`, `stretch`), `rare`,
`trajectory` (index within the split), `point` (frame index along it), `bond` (stretch).
Geometries whose SCF fails end their trajectory early (the split draws another).

| split | molecule mix | rare | frames per trajectory | saved every | molecules |
|---|---|---|---|---|---|
{rows}
"""
    return DatasetSpec(
        name="xtb-md",
        default_sizes=dict(DEFAULT_SIZES),
        make_split=make_split,
        description=description,
        calculator=xtb_calculator,
        reference_structure=reference_molecule,
    )
