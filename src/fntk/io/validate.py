"""Checks on single frames, before any model sees them.

Each check raises :class:`fntk.errors.InputError` naming the file, the frame and the fix. They are
cheap (the overlap test uses a neighbour list with a small cutoff, linear in the atom count).
"""

from __future__ import annotations

import hashlib

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import neighbor_list

from fntk.errors import InputError

MIN_DISTANCE_ANGSTROM = 0.5
"""Default smallest allowed interatomic distance; H2's bond is 0.74 Angstrom."""


def validate_structure(
    atoms: Atoms,
    *,
    file: str,
    index: int,
    species: frozenset[int] | None = None,
    min_distance: float = MIN_DISTANCE_ANGSTROM,
) -> None:
    """Raise :class:`InputError` if ``atoms`` cannot be given to a model.

    Checks: at least one atom; finite positions; a non-degenerate cell along periodic directions;
    elements known to the model (``species``, atomic numbers); no two atoms closer than
    ``min_distance`` Angstrom (periodic images included).
    """
    if len(atoms) == 0:
        raise InputError("structure has no atoms", file=file, index=index, hint="remove the frame")
    positions = atoms.get_positions()
    if not np.all(np.isfinite(positions)):
        bad = int(np.argwhere(~np.isfinite(positions))[0, 0])
        raise InputError(
            f"atom {bad} has a non-finite position",
            file=file,
            index=index,
            hint="fix or remove the frame",
        )
    cell = np.asarray(atoms.get_cell())
    if not np.all(np.isfinite(cell)):
        raise InputError("cell has non-finite entries", file=file, index=index, hint="fix the cell")
    periodic = atoms.pbc
    if periodic.any():
        lengths = np.linalg.norm(cell, axis=1)
        if np.any(lengths[periodic] < 1e-6) or (periodic.all() and abs(atoms.cell.volume) < 1e-6):
            raise InputError(
                f"periodic along {''.join('xyz'[i] for i in np.flatnonzero(periodic))} but the "
                "cell is degenerate there",
                file=file,
                index=index,
                hint="set a proper cell or pbc=False",
            )
    if species is not None:
        unknown = sorted(set(atoms.numbers.tolist()) - species)
        if unknown:
            raise unsupported_elements_error(unknown, file, index)
    if min_distance > 0:
        i, j, d = neighbor_list("ijd", atoms, min_distance, self_interaction=False)
        if len(d):
            k = int(np.argmin(d))
            raise InputError(
                f"atoms {i[k]} and {j[k]} overlap ({d[k]:.3f} Angstrom apart, below "
                f"{min_distance} Angstrom)",
                file=file,
                index=index,
                hint="remove the frame (atoms this close are almost always a broken structure)",
            )


def unsupported_elements_error(unknown: list[int], file: str, index: int) -> InputError:
    """The error of a structure whose elements ``unknown`` (atomic numbers) the model lacks."""
    names = ", ".join(_symbol(z) for z in unknown)
    return InputError(
        f"element(s) {names} not supported by the model",
        file=file,
        index=index,
        hint="remove these structures or choose a model that covers these elements",
    )


def _symbol(z: int) -> str:
    return chemical_symbols[z] if 0 <= z < len(chemical_symbols) else f"Z={z}"


def structure_fingerprint(atoms: Atoms) -> str:
    """Hash of species, positions and cell (rounded to 1e-6 Angstrom) for duplicate detection."""
    digest = hashlib.sha1(atoms.numbers.astype(np.int64).tobytes())
    digest.update(np.round(atoms.positions, 6).tobytes())
    digest.update(np.round(np.asarray(atoms.cell), 6).tobytes())
    digest.update(atoms.pbc.tobytes())
    return digest.hexdigest()


DUPLICATE_DECIMALS = 5
"""Coordinates and distances are compared after rounding to 1e-5 Angstrom."""

MOLECULE_PAIR_LIMIT = 500
"""Largest non-periodic structure (atoms) compared up to rotation and atom order."""


def duplicate_key(atoms: Atoms) -> str:
    """Key equal for two structures that are the same up to a rigid motion (duplicates).

    The rule (README, "fntk select in detail"): the same elements, cell and periodicity, and
    positions equal (to 1e-5 Angstrom) up to a rigid translation (across the cell, for
    periodic directions). Non-periodic structures of at most :data:`MOLECULE_PAIR_LIMIT` atoms
    (molecules, clusters) are also the same up to rotation, reflection and atom order: their
    key is the sorted list of (element pair, distance) over all atom pairs, which these motions
    leave unchanged. Unlike :func:`structure_fingerprint`, positions themselves are not keyed,
    so this is for duplicate detection, never for caching position-dependent features.
    """
    digest = hashlib.sha1(atoms.pbc.tobytes())
    numbers = atoms.numbers.astype(np.int64)
    positions = atoms.get_positions()
    if not atoms.pbc.any() and 1 < len(atoms) <= MOLECULE_PAIR_LIMIT:
        i, j = np.triu_indices(len(atoms), k=1)
        distances = np.linalg.norm(positions[i] - positions[j], axis=1)
        low, high = np.minimum(numbers[i], numbers[j]), np.maximum(numbers[i], numbers[j])
        order = np.lexsort((np.round(distances, DUPLICATE_DECIMALS), high, low))
        digest.update(b"pairs")
        digest.update(np.sort(numbers).tobytes())
        digest.update(np.stack([low[order], high[order]]).tobytes())
        digest.update(_rounded(distances[order]))
        return digest.hexdigest()
    cell = np.asarray(atoms.cell)
    relative = positions - positions[0]
    if atoms.pbc.any():
        # fractional coordinates wrap along periodic axes: a translation across the cell
        fractional = relative @ np.linalg.pinv(cell)
        wrapped = np.round(fractional, DUPLICATE_DECIMALS + 2) % 1.0  # 0.99999999 -> 0
        relative = np.where(atoms.pbc, wrapped, fractional) @ cell
    digest.update(numbers.tobytes())
    digest.update(_rounded(relative))
    digest.update(_rounded(cell))
    return digest.hexdigest()


def _rounded(values: np.ndarray) -> bytes:
    """Bytes of ``values`` rounded to :data:`DUPLICATE_DECIMALS`, with -0.0 made 0.0."""
    return (np.round(values, DUPLICATE_DECIMALS) + 0.0).tobytes()
