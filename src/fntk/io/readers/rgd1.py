"""Readers of RGD1 (Zhao et al., Sci. Data 2023), B3LYP-D3/TZVP, as the publisher releases it.

Checked against the publisher's ``parse_data.py`` and README (github.com/zhaoqy1996/RGD1):

- ``RGD1_CHNO.h5``: one group per reaction (``MR_100_0``, ...) with ``elements`` (atomic
  numbers), geometries ``RG``, ``TSG``, ``PG`` (n_atoms, 3, Angstrom), single-point energies
  ``R_E``, ``TS_E``, ``P_E`` (Hartree), enthalpies ``*_H`` and free energies ``*_F``, and bytes
  SMILES ``Rsmiles``, ``Psmiles``. The publisher notes that ``RG`` and ``PG`` are *unoptimised*:
  ``R_E``/``P_E`` belong to the optimised, separated molecules, not to these geometries. Only
  the transition state (``TSG`` with ``TS_E``) is a labelled geometry; :func:`iter_rgd1` yields
  it, and with ``endpoints=True`` also ``RG``/``PG`` without labels (pool candidates).
- ``RGD1_RPs.h5``: one group per molecule (``molX``; ``RandP_smiles.txt`` maps SMILES to them)
  with ``elements``, DFT-optimised ``DFTG`` and its energy ``DFT_SPE`` (Hartree), the GFN2-xTB
  ``xTBG``/``xTB_SPE`` and ``_id``: read by :func:`iter_rgd1_molecules`.

RGD1 publishes no forces: every labelled frame carries an energy only, and ``info`` says so
(``labels="energy"``), so a benchmark can use them for energy metrics but not force metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from ase import Atoms, units

from fntk.errors import InputError
from fntk.io.readers._common import labelled_atoms, open_hdf5


def iter_rgd1(path: str | os.PathLike, *, endpoints: bool = False) -> Iterator[Atoms]:
    """Yield the transition state of every reaction of ``RGD1_CHNO.h5`` with its energy.

    Parameters
    ----------
    path : path of ``RGD1_CHNO.h5``
    endpoints : bool
        Also yield the unoptimised reactant and product geometries (``RG``, ``PG``), unlabelled.

    Yields
    ------
    Atoms
        The transition state with its energy in eV (from Hartree), no forces; ``info``:
        ``dataset="rgd1"``, ``reaction``, ``role``, ``reactant_smiles``, ``product_smiles``,
        ``labels`` (``"energy"``, or ``"none"`` for an end point) and ``record``
        (``{reaction}/{role}``).

    Raises
    ------
    InputError
        Missing file, or a reaction group without ``elements`` or a needed dataset.
    """
    roles: list[tuple[str, str, str | None]] = [("transition_state", "TSG", "TS_E")]
    if endpoints:
        roles = [("reactant", "RG", None), *roles, ("product", "PG", None)]
    with open_hdf5(path) as handle:
        for reaction, group in handle.items():
            numbers = _get(group, "elements", path, "RGD1_CHNO.h5")[()]
            info = {
                "dataset": "rgd1",
                "reaction": reaction,
                "reactant_smiles": _text(group.get("Rsmiles")),
                "product_smiles": _text(group.get("Psmiles")),
            }
            for role, geometry, energy in roles:
                positions = _get(group, geometry, path, "RGD1_CHNO.h5")[()]
                frame = {**info, "role": role, "record": f"{reaction}/{role}"}
                if energy is None:
                    atoms = Atoms(numbers=numbers, positions=positions)
                    atoms.info.update(frame, labels="none")
                    yield atoms
                    continue
                energy_ev = float(_get(group, energy, path, "RGD1_CHNO.h5")[()]) * units.Hartree
                yield labelled_atoms(
                    numbers, positions, energy_ev, None, {**frame, "labels": "energy"}
                )


def count_rgd1(path: str | os.PathLike, *, endpoints: bool = False) -> int:
    """Number of frames :func:`iter_rgd1` yields."""
    with open_hdf5(path) as handle:
        return len(handle) * (3 if endpoints else 1)


def iter_rgd1_molecules(path: str | os.PathLike, *, level: str = "dft") -> Iterator[Atoms]:
    """Yield the optimised molecules of ``RGD1_RPs.h5`` with their energies.

    Parameters
    ----------
    path : path of ``RGD1_RPs.h5``
    level : {"dft", "xtb"}
        ``dft``: ``DFTG`` with ``DFT_SPE`` (B3LYP-D3/TZVP); ``xtb``: ``xTBG`` with ``xTB_SPE``.

    Yields
    ------
    Atoms
        Energy in eV (from Hartree), no forces; ``info``: ``dataset="rgd1"``, ``molecule``
        (``molX``), ``molecule_id`` (``_id``), ``role="molecule"``, ``level``,
        ``labels="energy"`` and ``record`` (``molX``).

    Raises
    ------
    InputError
        Missing file, unknown level, or a molecule group without the datasets above.
    """
    keys = {"dft": ("DFTG", "DFT_SPE"), "xtb": ("xTBG", "xTB_SPE")}
    if level not in keys:
        raise InputError(f"level {level!r} is not dft or xtb", file=str(path))
    geometry, energy = keys[level]
    with open_hdf5(path) as handle:
        for name, group in handle.items():
            numbers = _get(group, "elements", path, "RGD1_RPs.h5")[()]
            positions = _get(group, geometry, path, "RGD1_RPs.h5")[()]
            energy_ev = float(np.asarray(_get(group, energy, path, "RGD1_RPs.h5")[()]).reshape(()))
            info = {
                "dataset": "rgd1",
                "molecule": name,
                "molecule_id": _text(group.get("_id")),
                "role": "molecule",
                "level": level,
                "labels": "energy",
                "record": name,
            }
            yield labelled_atoms(numbers, positions, energy_ev * units.Hartree, None, info)


def count_rgd1_molecules(path: str | os.PathLike, *, level: str = "dft") -> int:
    """Number of molecules in ``RGD1_RPs.h5``."""
    with open_hdf5(path) as handle:
        return len(handle)


def is_rgd1_reactions(path: str) -> bool:
    """Whether the first group of ``path`` looks like an ``RGD1_CHNO.h5`` reaction."""
    return _first_group_has(path, ("elements", "TSG", "TS_E"))


def is_rgd1_molecules(path: str) -> bool:
    """Whether the first group of ``path`` looks like an ``RGD1_RPs.h5`` molecule."""
    return _first_group_has(path, ("elements", "DFTG", "DFT_SPE"))


def _first_group_has(path: str, names: tuple[str, ...]) -> bool:
    try:
        with open_hdf5(path) as handle:
            for group in handle.values():
                return all(name in group for name in names)
    except (InputError, OSError, TypeError):
        return False
    return False


def _get(group, name: str, path, which: str):
    if name not in group:
        raise InputError(
            f"group {group.name} has no dataset {name!r}", file=str(path), hint=f"is this {which}?"
        )
    return group[name]


def _text(dataset) -> str:
    if dataset is None:
        return ""
    value = dataset[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
