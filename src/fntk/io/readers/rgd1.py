"""Reader of RGD1 (Zhao et al., Sci. Data 2023): reactant, transition state and product of each
reaction at B3LYP-D3/TZVP, energies only.

``RGD1_CHNO.h5`` holds one group per reaction (e.g. ``MR_100_0``) with ``elements`` (atomic
numbers), geometries ``RG``, ``TSG``, ``PG`` (n_atoms, 3, Angstrom), single-point energies
``R_E``, ``TS_E``, ``P_E`` (Hartree) and SMILES ``Rsmiles``, ``Psmiles``. RGD1 publishes no
forces, so these frames can be scored and used as test energies but not force-labelled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ase import Atoms, units

from fntk.errors import InputError
from fntk.io.readers._common import labelled_atoms, open_hdf5

ROLES = {"reactant": ("RG", "R_E"), "transition_state": ("TSG", "TS_E"), "product": ("PG", "P_E")}
"""Geometry and energy dataset of each yielded role, in yield order."""


def iter_rgd1(path: str | os.PathLike) -> Iterator[Atoms]:
    """Yield reactant, transition state and product of every reaction as Atoms.

    Yields
    ------
    Atoms
        Energy in eV (converted from Hartree) as a single-point calculator, no forces;
        ``info`` has ``source="rgd1"``, ``reaction``, ``role``, ``reactant_smiles`` and
        ``product_smiles``.

    Raises
    ------
    InputError
        Missing file or a reaction group without ``elements`` or a geometry/energy dataset.
    """
    with open_hdf5(path) as handle:
        for reaction, group in handle.items():
            numbers = _get(group, "elements", path)[()]
            info = {
                "source": "rgd1",
                "reaction": reaction,
                "reactant_smiles": _text(group.get("Rsmiles")),
                "product_smiles": _text(group.get("Psmiles")),
            }
            for role, (geometry, energy) in ROLES.items():
                positions = _get(group, geometry, path)[()]
                energy_ev = float(_get(group, energy, path)[()]) * units.Hartree
                yield labelled_atoms(numbers, positions, energy_ev, None, {**info, "role": role})


def _get(group, name: str, path):
    if name not in group:
        raise InputError(
            f"reaction {group.name} has no dataset {name!r}",
            file=str(path),
            hint="is this RGD1_CHNO.h5?",
        )
    return group[name]


def _text(dataset) -> str:
    if dataset is None:
        return ""
    value = dataset[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
