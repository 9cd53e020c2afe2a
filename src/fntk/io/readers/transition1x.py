"""Reader of Transition1x (Schreiner et al., Sci. Data 2022): NEB reaction paths, wB97x/6-31G(d).

Checked against the publisher's loader, ``transition1x/dataloader.py`` of the Transition1x
repository (gitlab.com/matschreiner/Transition1x), and the release file ``transition1x.h5``:
the group ``data`` holds every reaction as ``data/{formula}/{reaction}``; ``train``, ``val`` and
``test`` hold soft links into ``data`` (h5py follows them), so ``data`` is exactly the union of
the three splits. A reaction group has ``atomic_numbers`` (n_atoms,), ``positions``
(n_images, n_atoms, 3, Angstrom), ``wB97x_6-31G(d).energy`` (n_images, eV),
``wB97x_6-31G(d).forces`` (n_images, n_atoms, 3, eV/Angstrom) and
``wB97x_6-31G(d).atomization_energy``: every image of the NEB optimisation. Subgroups
``reactant``, ``transition_state`` and ``product`` hold one conformer each in the same layout
(with their own ``atomic_numbers`` and, in the release, a ``hash``). They are copies of images
of the path: the publisher's loader yields reactant and product *and* the path, so each appears
twice. This reader yields every image once and marks the images that are the reactant,
transition state or product (exact geometry match); an end point that matches no image is
yielded after the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from ase import Atoms

from fntk.errors import InputError
from fntk.io.readers._common import labelled_atoms, open_hdf5

ENERGY_KEY = "wB97x_6-31G(d).energy"
FORCES_KEY = "wB97x_6-31G(d).forces"
ROLES = ("reactant", "transition_state", "product")
SPLITS = ("data", "train", "val", "test")
_LABELLED = ("positions", ENERGY_KEY, FORCES_KEY)
MATCH_TOLERANCE = 1e-6
"""Largest coordinate difference (Angstrom) at which an end point is the same as an image."""


def iter_transition1x(
    path: str | os.PathLike, *, split: str = "data", include_path: bool = True
) -> Iterator[Atoms]:
    """Yield every distinct conformer of ``split`` as labelled Atoms, reaction by reaction.

    Parameters
    ----------
    path : path of ``transition1x.h5``
    split : {"data", "train", "val", "test"}
        ``data``: every reaction (the union of the three splits, which link into it).
    include_path : bool
        Yield all NEB images; ``False``: only reactant, transition state and product.

    Yields
    ------
    Atoms
        Energy (eV) and forces (eV/Angstrom) as a single-point calculator. ``info``:
        ``dataset="transition1x"``, ``split``, ``formula``, ``reaction``, ``role`` (``path``,
        ``reactant``, ``transition_state`` or ``product``), ``image`` (index in the path, -1
        for an end point that is no image), ``hash`` of an end point when the file has one,
        and ``record`` (``{formula}/{reaction}/{image or role}``).

    Raises
    ------
    InputError
        Missing file or split, or a group without the datasets above (names the group).
    """
    with open_hdf5(path) as handle:
        for formula, reaction, group in _reactions(handle, split, path):
            info = {"dataset": "transition1x", "split": split, "formula": formula}
            info["reaction"] = reaction
            arrays: dict[str, tuple[np.ndarray, ...]] = {}  # one read per group, not per frame
            for role, image, hash_, source_, k in _plan(group, path, include_path):
                source: Any = source_
                if source.name not in arrays:
                    arrays[source.name] = (
                        _numbers(source, group, path),
                        *(_dataset(source, key, path)[()] for key in _LABELLED),
                    )
                numbers, positions, energies, forces = arrays[source.name]
                frame_info = {**info, "role": role, "image": image}
                if hash_:
                    frame_info["hash"] = hash_
                frame_info["record"] = f"{formula}/{reaction}/{image if image >= 0 else role}"
                yield labelled_atoms(numbers, positions[k], energies[k], forces[k], frame_info)


def count_transition1x(
    path: str | os.PathLike, *, split: str = "data", include_path: bool = True
) -> int:
    """Number of frames :func:`iter_transition1x` yields (reads positions, builds no Atoms)."""
    with open_hdf5(path) as handle:
        return sum(
            len(_plan(group, path, include_path)) for _, _, group in _reactions(handle, split, path)
        )


def is_transition1x(path: str) -> bool:
    """Whether ``path`` is an HDF5 file with a Transition1x split group of reaction groups."""
    try:
        with open_hdf5(path) as handle:
            for split in SPLITS:
                if split in handle:
                    for formula in handle[split].values():
                        for group in formula.values():
                            return "positions" in group and ENERGY_KEY in group
            return False
    except (InputError, OSError, AttributeError):
        return False


def _reactions(handle, split: str, path) -> Iterator[tuple[str, str, object]]:
    if split not in handle:
        raise InputError(
            f"no split group {split!r}",
            file=str(path),
            hint=f"choose one of: {', '.join(handle.keys()) or '(file is empty)'}",
        )
    for formula, reactions in handle[split].items():
        for reaction, group in reactions.items():
            yield formula, reaction, group


def _plan(group, path, include_path: bool) -> list[tuple[str, int, str, object, int]]:
    """``(role, image, hash, h5 group, row)`` of every frame to yield from one reaction."""
    positions = _dataset(group, "positions", path)[()] if include_path else None
    roles_of_image: dict[int, tuple[str, str]] = {}
    leftovers: list[tuple[str, int, str, object, int]] = []
    for role in ROLES:
        if role not in group:
            continue
        sub = group[role]
        own = _dataset(sub, "positions", path)[()]
        hash_ = _text(sub.get("hash")) or _text_value(sub.attrs.get("hash"))
        for k in range(own.shape[0]):
            image = _matching_image(positions, own[k]) if positions is not None else None
            if image is not None and image not in roles_of_image:
                roles_of_image[image] = (role, hash_)
            else:
                leftovers.append((role, -1, hash_, sub, k))
    plan = []
    if positions is not None:
        for image in range(positions.shape[0]):
            role, hash_ = roles_of_image.get(image, ("path", ""))
            plan.append((role, image, hash_, group, image))
    return plan + leftovers


def _matching_image(images: np.ndarray, conformer: np.ndarray) -> int | None:
    if images.shape[1:] != conformer.shape:
        return None
    differences = np.abs(images - conformer[None]).reshape(len(images), -1).max(axis=1)
    best = int(np.argmin(differences)) if len(differences) else -1
    return best if best >= 0 and differences[best] <= MATCH_TOLERANCE else None


def _numbers(source, reaction_group, path) -> np.ndarray:
    if "atomic_numbers" in source:
        return source["atomic_numbers"][()]
    return _dataset(reaction_group, "atomic_numbers", path)[()]


def _text(dataset) -> str:
    return "" if dataset is None else _text_value(dataset[()])


def _text_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _dataset(group, name: str, path):
    if name not in group:
        raise InputError(
            f"group {group.name} has no dataset {name!r}",
            file=str(path),
            hint="is this a Transition1x file?",
        )
    return group[name]
