"""Reference labels (energies and forces) of a frame, from named keys or the attached calculator.

Like MACE's command line, ``energy_key`` names an ``atoms.info`` entry and ``forces_key`` an
``atoms.arrays`` entry. Without a key, labels come from the calculator ASE attached on reading
(extended XYZ ``energy=``/``forces`` columns become a ``SinglePointCalculator``). Once a key is
named it is the only source: a frame without it is an error naming the frame, never a silent
fallback to the calculator (which may hold a model's values, not the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fntk.errors import InputError


@dataclass(frozen=True)
class Labels:
    """Reference energy in eV and forces in eV/Angstrom, shape (n_atoms, 3).

    Forces are all NaN for an energy-only frame read with ``require_forces=False`` (RGD1).
    """

    energy: float
    forces: np.ndarray


def read_labels(
    atoms: Atoms,
    *,
    file: str,
    index: int,
    energy_key: str | None = None,
    forces_key: str | None = None,
    require_forces: bool = True,
) -> Labels:
    """Labels of ``atoms``; raise :class:`InputError` when missing or malformed.

    With ``require_forces=False`` a frame without forces gets NaN forces (energy only).
    """
    energy = _energy(atoms, file, index, energy_key)
    if not require_forces and not _has_forces(atoms, forces_key):
        return Labels(energy=_finite(energy, file, index), forces=np.full((len(atoms), 3), np.nan))
    forces = _forces(atoms, file, index, forces_key)
    if not np.isfinite(energy):
        raise InputError(
            f"energy is {energy}", file=file, index=index, hint="fix or remove the frame"
        )
    if forces.shape != (len(atoms), 3):
        raise InputError(
            f"forces have shape {forces.shape}, expected ({len(atoms)}, 3)",
            file=file,
            index=index,
            hint="the forces array must hold one 3-vector per atom",
        )
    if not np.all(np.isfinite(forces)):
        raise InputError(
            "forces contain non-finite values",
            file=file,
            index=index,
            hint="fix or remove the frame",
        )
    return Labels(energy=energy, forces=forces)


def _has_forces(atoms: Atoms, key: str | None) -> bool:
    if key is not None:
        return key in atoms.arrays
    return _from_calculator(atoms, "forces") is not None


def _finite(energy: float, file: str, index: int) -> float:
    if not np.isfinite(energy):
        raise InputError(
            f"energy is {energy}", file=file, index=index, hint="fix or remove the frame"
        )
    return energy


def _energy(atoms: Atoms, file: str, index: int, key: str | None) -> float:
    if key is not None:
        if key not in atoms.info:
            raise InputError(
                f"no reference energy: the frame has no info key {key!r} (the energy key named)",
                file=file,
                index=index,
                hint=f"info keys of this frame: {', '.join(atoms.info) or '(none)'}",
            )
        value = atoms.info[key]
    else:
        value = _from_calculator(atoms, "energy")
        if value is None:
            raise InputError(
                "no reference energy (no energy= on the frame, no --energy-key given)",
                file=file,
                index=index,
                hint=_key_hint("--energy-key", _number_keys(atoms)),
            )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"energy {value!r} is not a number", file=file, index=index, hint="fix the frame"
        ) from None


def _forces(atoms: Atoms, file: str, index: int, key: str | None) -> np.ndarray:
    if key is not None:
        if key not in atoms.arrays:
            arrays = [k for k in atoms.arrays if k not in ("numbers", "positions")]
            raise InputError(
                f"no reference forces: the frame has no array {key!r} (the forces key named)",
                file=file,
                index=index,
                hint=f"per-atom arrays of this frame: {', '.join(arrays) or '(none)'}",
            )
        value = atoms.arrays[key]
    else:
        value = _from_calculator(atoms, "forces")
        if value is None:
            raise InputError(
                "no reference forces (no forces column on the frame, no --forces-key given)",
                file=file,
                index=index,
                hint=_key_hint("--forces-key", _vector_keys(atoms)),
            )
    return np.asarray(value, dtype=np.float64)


def _number_keys(atoms: Atoms) -> list[str]:
    """``info`` keys holding one real number: the only ones that could be an energy."""
    keys = []
    for key, value in atoms.info.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            continue
        keys.append(key)
    return keys


def _vector_keys(atoms: Atoms) -> list[str]:
    """Per-atom float arrays of shape (n_atoms, 3) besides positions: possible forces."""
    return [
        key
        for key, value in atoms.arrays.items()
        if key not in ("positions", "momenta")
        and np.asarray(value).shape == (len(atoms), 3)
        and np.issubdtype(np.asarray(value).dtype, np.floating)
    ]


def _key_hint(flag: str, keys: list[str]) -> str:
    if keys:
        return f"pass {flag} with one of: {', '.join(keys)}"
    return "the frame holds no reference labels: label it first, or give the labelled file"


def _from_calculator(atoms: Atoms, name: str):
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(name)
