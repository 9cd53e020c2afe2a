"""Offline benchmark data sets: a registry of generators and :func:`make_dataset`.

Each data set is made with real physics (EMT, GFN2-xTB), split into ``init`` / ``pool`` /
test splits, and written as one extended XYZ file per split plus a ``README.md`` that says how
it was made and how its forces are distributed. ``e0_reference.xyz`` holds one small reference
structure per element of the data set (bulk metal, gas-phase molecule), labelled by the same
method: they pin the per-element energy shifts, including those of elements that a labelled set
lacks (e.g. the unseen metals of an out-of-distribution split; see ``e0_reference`` in
:func:`fntk.learn.finetune`).
A generator receives one child seed per split (``np.random.SeedSequence(seed).spawn``), so a
split depends only on the seed and its own size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.errors import InputError
from fntk.io import atomic_write_text, prepare_output_dir, write_extxyz
from fntk.registry import Registry

SplitMaker = Callable[[str, int, np.random.Generator], list[Atoms]]

REFERENCE_MOLECULES = {1: "H2", 6: "CH4", 7: "N2", 8: "O2"}
"""Gas-phase reference structure of each non-metal (ASE g2 geometry)."""


def reference_molecule(z: int) -> Atoms:
    """The reference molecule of element ``z`` (H2, CH4, N2, O2), non-periodic."""
    atoms = molecule(REFERENCE_MOLECULES[z])
    atoms.info.clear()
    return atoms


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set.

    Attributes
    ----------
    name : str
    default_sizes : dict of str to int
        Structures per split, in split order (the keys are the split names).
    make_split : callable
        ``make_split(split, size, rng)`` -> labelled structures.
    description : str
        Markdown paragraphs on how the data are made (go into the README).
    calculator : callable
        Returns a fresh ASE calculator of the labelling method (for the reference structures).
    reference_structure : callable
        ``reference_structure(z)``: a small unlabelled structure holding element ``z``.
    """

    name: str
    default_sizes: dict[str, int]
    make_split: SplitMaker
    description: str
    calculator: Callable[[], Calculator]
    reference_structure: Callable[[int], Atoms]


@dataclass(frozen=True)
class DatasetFiles:
    """Paths written by :func:`make_dataset`.

    Attributes
    ----------
    splits : dict of str to Path
        One extended XYZ file per split made.
    e0_reference : Path
        One labelled reference structure per element present in the splits.
    readme : Path
    """

    splits: dict[str, Path]
    e0_reference: Path
    readme: Path


DATASETS: Registry[Callable[[], DatasetSpec]] = Registry("data set")
"""The registry: data set name -> function returning its :class:`DatasetSpec`."""


def register_dataset(
    name: str, help: str = ""
) -> Callable[[Callable[[], DatasetSpec]], Callable[[], DatasetSpec]]:
    """Register a function returning the :class:`DatasetSpec` of ``name`` (imported lazily)."""
    return DATASETS.register(name, help=help)


def available_datasets() -> list[str]:
    """Names :func:`make_dataset` accepts."""
    _import_builtin()
    return sorted(DATASETS.names())


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; an unknown name raises an ``InputError`` listing the valid ones."""
    _import_builtin()
    return DATASETS.get(name)()


def make_dataset(
    name: str,
    out_dir: str | os.PathLike,
    *,
    sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetFiles:
    """Generate data set ``name`` and write ``<split>.xyz`` files and ``README.md`` to ``out_dir``.

    Parameters
    ----------
    name : str
        ``emt-adsorbates``, ``xtb-md`` or ``xtb-reactions`` (see :func:`available_datasets`).
    out_dir : path
        Created if missing; an existing non-empty folder is refused unless ``overwrite``
        (then files of the same names are replaced atomically, others left alone).
    sizes : mapping of str to int or None
        Structures per split; splits left out keep their defaults, a size of 0 skips the split.
    seed : int
        Same seed and sizes, same structures (bit for bit) on any machine.
    overwrite : bool
        Write into a non-empty ``out_dir``.

    Raises
    ------
    InputError
        Unknown data set or split name, or a negative size (checked before ``out_dir`` is
        created); an output path that is a file or a non-empty folder without ``overwrite``.
    """
    spec = dataset_spec(name)
    chosen = dict(spec.default_sizes)
    for split, size in (sizes or {}).items():
        if split not in chosen:
            raise InputError(
                f"data set {name!r} has no split {split!r}; splits: {', '.join(chosen)}"
            )
        if size < 0:
            raise InputError(f"size of split {split!r} must be >= 0, got {size}")
        chosen[split] = int(size)
    children = np.random.SeedSequence(seed).spawn(len(chosen))
    out = prepare_output_dir(out_dir, overwrite=overwrite)
    written: dict[str, Path] = {}
    made: dict[str, list[Atoms]] = {}
    for (split, size), child in zip(chosen.items(), children):
        if size == 0:
            continue
        structures = spec.make_split(split, size, np.random.default_rng(child))
        for atoms in structures:
            atoms.info.update(dataset=name, split=split)
        path = out / f"{split}.xyz"
        write_extxyz(path, structures)
        written[split], made[split] = path, structures
    references = _references(spec, made)
    reference_path = out / "e0_reference.xyz"
    write_extxyz(reference_path, references)
    readme = out / "README.md"
    atomic_write_text(readme, _readme(spec, made, references, seed))
    return DatasetFiles(splits=written, e0_reference=reference_path, readme=readme)


def _references(spec: DatasetSpec, made: Mapping[str, list[Atoms]]) -> list[Atoms]:
    """A labelled reference structure of each element in ``made``, by atomic number."""
    numbers = sorted({int(z) for frames in made.values() for a in frames for z in a.numbers})
    references = []
    for z in numbers:
        atoms = spec.reference_structure(z)
        atoms.calc = spec.calculator()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info.update(dataset=spec.name, split="e0_reference", element=int(z))
        references.append(atoms)
    return references


def _readme(
    spec: DatasetSpec, made: Mapping[str, list[Atoms]], references: list[Atoms], seed: int
) -> str:
    lines = [
        f"# {spec.name}",
        "",
        spec.description.strip(),
        "",
        f"Made by `fntk.data.make_dataset({spec.name!r}, out_dir, sizes=..., seed={seed})`.",
        "Labels: `energy=` (eV) and `forces` (eV/Angstrom) of each frame; provenance in the frame",
        "info (`dataset`, `split` and the keys above).",
        "",
        "| split | structures | atoms (min-max) | median |F| | 99th pct |F| | max |F| "
        "| energy/atom min-max (eV) |",
        "|---|---|---|---|---|---|---|",
    ]
    for split, structures in made.items():
        norms = np.concatenate([np.linalg.norm(a.get_forces(), axis=1) for a in structures])
        n_atoms = [len(a) for a in structures]
        per_atom = [a.get_potential_energy() / len(a) for a in structures]
        p50, p99 = np.percentile(norms, [50, 99])
        lines.append(
            f"| {split} | {len(structures)} | {min(n_atoms)}-{max(n_atoms)} | {p50:.2f} "
            f"| {p99:.2f} | {norms.max():.2f} | {min(per_atom):.3f} to {max(per_atom):.3f} |"
        )
    listed = ", ".join(
        f"{a.get_chemical_formula()} ({a.get_potential_energy() / len(a):.4f} eV/atom)"
        for a in references
    )
    lines += [
        "",
        "|F|: per-atom force norms, eV/Angstrom.",
        "",
        f"`e0_reference.xyz`: one reference structure per element, same method: {listed}.",
        "Joined to the least-squares fit of per-element energy shifts, they pin each",
        "element's shift and give one to elements that a labelled set lacks",
        "(`fntk.learn.finetune(..., e0_reference=...)`).",
        "",
    ]
    return "\n".join(lines)


def _import_builtin() -> None:
    # The generators register themselves on import; imported here so ``fntk.data`` stays light.
    from fntk.data import emt_adsorbates, xtb_md, xtb_reactions  # noqa: F401
