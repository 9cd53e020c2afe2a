"""Helpers shared by the readers of published data sets: HDF5 opening and labelled Atoms."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.errors import InputError


def open_hdf5(path: str | os.PathLike):
    """Open ``path`` read-only with h5py; :class:`InputError` if missing or not HDF5."""
    try:
        import h5py
    except ImportError:
        raise InputError(
            "reading HDF5 data sets needs the 'h5py' package",
            file=str(path),
            hint="pip install h5py",
        ) from None
    if not os.path.isfile(path):
        raise InputError("file not found", file=str(path), hint="check the path")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(
            f"not a readable HDF5 file ({exc})", file=str(path), hint="check the download"
        ) from None


def labelled_atoms(
    numbers: np.ndarray,
    positions: np.ndarray,
    energy: float,
    forces: np.ndarray | None,
    info: dict,
) -> Atoms:
    """Non-periodic Atoms with a single-point calculator (eV, eV/Angstrom) and ``info``."""
    atoms = Atoms(numbers=np.asarray(numbers, dtype=int), positions=np.asarray(positions, float))
    results: dict[str, Any] = {"energy": float(energy)}
    if forces is not None:
        results["forces"] = np.asarray(forces, dtype=np.float64)
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(info)
    return atoms
