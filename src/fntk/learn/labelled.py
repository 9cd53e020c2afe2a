"""Labelled structures: Atoms with reference energies and forces, checked once on entry.

:class:`LabelledSet` is what fine-tuning and evaluation consume. It is built from Atoms in
memory (:meth:`LabelledSet.from_structures`) or read from files
(:meth:`LabelledSet.from_files`); labels come from named ``info``/``arrays`` keys or from the
calculator attached on reading, as in :func:`fntk.io.read_labels`. Every structure remembers the
file and frame it came from, so later errors can name them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fntk.errors import InputError
from fntk.io import read_labels, read_structures


@dataclass(frozen=True)
class LabelledSet:
    """Structures with their reference labels.

    Attributes
    ----------
    structures : list of Atoms
    energies : ndarray, shape (n,), float64, eV
    forces : list of ndarray, each shape (n_atoms_i, 3), float64, eV/Angstrom
    source_files : list of str
        File (or ``"<memory>"``) each structure came from.
    frame_indices : list of int
        Frame index of each structure within its source.
    """

    structures: list[Atoms]
    energies: np.ndarray
    forces: list[np.ndarray]
    source_files: list[str]
    frame_indices: list[int]

    def __len__(self) -> int:
        return len(self.structures)

    @property
    def has_forces(self) -> bool:
        """Whether every structure has reference forces (False for energy-only sets)."""
        return all(np.isfinite(f).all() for f in self.forces)

    @property
    def n_atoms(self) -> np.ndarray:
        """Atom count of every structure, shape (n,), int64."""
        return np.array([len(a) for a in self.structures], dtype=np.int64)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabelledSet:
        """The structures at ``indices``, in that order."""
        return LabelledSet(
            structures=[self.structures[i] for i in indices],
            energies=self.energies[np.asarray(indices, dtype=np.int64)],
            forces=[self.forces[i] for i in indices],
            source_files=[self.source_files[i] for i in indices],
            frame_indices=[self.frame_indices[i] for i in indices],
        )

    @classmethod
    def from_structures(
        cls,
        structures: Sequence[Atoms],
        *,
        source: str = "<memory>",
        energy_key: str | None = None,
        forces_key: str | None = None,
        require_forces: bool = True,
    ) -> LabelledSet:
        """Labels of in-memory ``structures`` (named keys, else the attached calculator).

        Raises
        ------
        InputError
            ``structures`` is empty, or a structure lacks a finite energy or a force array of
            shape (n_atoms, 3); the message names ``source`` and the frame index.
        """
        return cls._build(
            list(structures),
            [source] * len(structures),
            list(range(len(structures))),
            energy_key,
            forces_key,
            source,
            require_forces,
        )

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str],
        *,
        energy_key: str | None = None,
        forces_key: str | None = None,
        require_forces: bool = True,
    ) -> LabelledSet:
        """Read every frame of ``paths`` (any format ASE reads) with its labels.

        ``require_forces=False`` admits energy-only frames (NaN forces; for test sets such as
        RGD1, whose force metrics are then omitted).

        Raises
        ------
        InputError
            A file is missing or unreadable, or a frame lacks labels (names file and frame).
        """
        chunk = read_structures(paths)
        return cls._build(
            chunk.structures,
            chunk.source_files,
            chunk.frame_indices,
            energy_key,
            forces_key,
            ", ".join(paths),
            require_forces,
        )

    @classmethod
    def _build(
        cls,
        structures: list[Atoms],
        files: list[str],
        frames: list[int],
        energy_key: str | None,
        forces_key: str | None,
        source: str,
        require_forces: bool = True,
    ) -> LabelledSet:
        if not structures:
            raise InputError(
                "the labelled set is empty",
                file=source,
                hint="fine-tuning and evaluation need at least one labelled structure",
            )
        labels = [
            read_labels(
                a,
                file=f,
                index=i,
                energy_key=energy_key,
                forces_key=forces_key,
                require_forces=require_forces,
            )
            for a, f, i in zip(structures, files, frames)
        ]
        return cls(
            structures=structures,
            energies=np.array([lab.energy for lab in labels], dtype=np.float64),
            forces=[lab.forces for lab in labels],
            source_files=files,
            frame_indices=frames,
        )
