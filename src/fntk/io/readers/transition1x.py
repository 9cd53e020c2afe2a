"""Reader of Transition1x (Schreiner et al., Sci. Data 2022): reaction paths at wB97x/6-31G(d).

The HDF5 file holds one group per split (``data``, ``train``, ``val``, ``test``), inside it
``{formula}/{reaction}`` groups with datasets ``atomic_numbers`` (n_atoms,), ``positions``
(n_conformers, n_atoms, 3, Angstrom), ``wB97x_6-31G(d).energy`` (n_conformers, eV) and
``wB97x_6-31G(d).forces`` (n_conformers, n_atoms, 3, eV/Angstrom): the NEB images of the path.
Subgroups ``reactant``, ``product`` and ``transition_state`` hold the end points and the saddle
point in the same layout (their ``atomic_numbers`` may be left to the reaction group).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ase import Atoms

from fntk.errors import InputError
from fntk.io.readers._common import labelled_atoms, open_hdf5

ENERGY_KEY = "wB97x_6-31G(d).energy"
FORCES_KEY = "wB97x_6-31G(d).forces"
ROLES = ("reactant", "transition_state", "product")
"""Subgroups of a reaction group, yielded after its path images in this order."""


def iter_transition1x(
    path: str | os.PathLike, *, split: str = "data", include_path: bool = True
) -> Iterator[Atoms]:
    """Yield every conformer of split ``split`` as labelled Atoms.

    Parameters
    ----------
    path : path of the Transition1x ``.h5`` file
    split : str
        Top-level group: ``data`` (all), ``train``, ``val`` or ``test``.
    include_path : bool
        Yield the path images of each reaction (``role="path"``), not only the reactant,
        transition state and product.

    Yields
    ------
    Atoms
        Energy (eV) and forces (eV/Angstrom) as a single-point calculator; ``info`` has
        ``source="transition1x"``, ``split``, ``formula``, ``reaction``, ``role`` and
        ``conformer`` (index within its group).

    Raises
    ------
    InputError
        Missing file or split, or a group without the datasets above (names the group).
    """
    with open_hdf5(path) as handle:
        if split not in handle:
            raise InputError(
                f"no split group {split!r}",
                file=str(path),
                hint=f"choose one of: {', '.join(handle.keys()) or '(file is empty)'}",
            )
        for formula, reactions in handle[split].items():
            for reaction, group in reactions.items():
                numbers = _dataset(group, "atomic_numbers", path)[()]
                info = {"source": "transition1x", "split": split, "formula": formula}
                info["reaction"] = reaction
                if include_path:
                    yield from _conformers(group, numbers, {**info, "role": "path"}, path)
                for role in ROLES:
                    if role in group:
                        own = group[role].get("atomic_numbers")
                        role_numbers = numbers if own is None else own[()]
                        yield from _conformers(
                            group[role], role_numbers, {**info, "role": role}, path
                        )


def _conformers(group, numbers, info: dict, path) -> Iterator[Atoms]:
    positions = _dataset(group, "positions", path)[()]
    energies = _dataset(group, ENERGY_KEY, path)[()]
    forces = _dataset(group, FORCES_KEY, path)[()]
    for k in range(positions.shape[0]):
        yield labelled_atoms(
            numbers, positions[k], energies[k], forces[k], {**info, "conformer": k}
        )


def _dataset(group, name: str, path):
    if name not in group:
        raise InputError(
            f"group {group.name} has no dataset {name!r}",
            file=str(path),
            hint="is this a Transition1x file?",
        )
    return group[name]
