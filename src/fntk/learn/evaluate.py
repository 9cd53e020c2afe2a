"""Errors of a model (plus its per-element energy shift) on labelled structures, per split.

The metrics are those of DESIGN.md section 5: energy MAE and RMSE per atom (meV/atom; the
error of each structure's total energy divided by its atom count, averaged over structures) and
force MAE and RMSE over every force component (meV/Angstrom) of the free atoms: atoms held by
an ASE ``FixAtoms`` constraint (OC20's fixed subsurface layers, ``move_mask``) are left out, as
OC20 scores forces (``free_atoms_only=False`` counts every atom).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from fntk.learn.batching import iter_labelled_batches, predict
from fntk.learn.e0 import EnergyShift
from fntk.learn.labelled import LabelledSet
from fntk.models import ModelBackend

_MEV_PER_EV = 1000.0


@dataclass(frozen=True)
class ErrorMetrics:
    """Errors of one model on one set of labelled structures.

    Attributes
    ----------
    n_structures, n_atoms : int
    energy_mae_mev_per_atom, energy_rmse_mev_per_atom : float
        Over structures, of ``(E - E^ref) / N``, meV/atom.
    force_mae_mev_per_ang, force_rmse_mev_per_ang : float
        Over all force components, meV/Angstrom.
    """

    n_structures: int
    n_atoms: int
    energy_mae_mev_per_atom: float
    energy_rmse_mev_per_atom: float
    force_mae_mev_per_ang: float
    force_rmse_mev_per_ang: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def evaluate(
    backend: ModelBackend,
    labelled: LabelledSet,
    *,
    energy_shift: EnergyShift | None = None,
    batch_size: int = 16,
    free_atoms_only: bool = True,
) -> ErrorMetrics:
    """Energy and force errors of ``backend`` (+ ``energy_shift``) on ``labelled``, batched.

    Parameters
    ----------
    backend : ModelBackend
        In its current state (pretrained or fine-tuned).
    labelled : LabelledSet
    energy_shift : EnergyShift or None
        Per-element reference-energy shift from :func:`fntk.learn.finetune`; ``None`` for none.
    batch_size : int
        Structures per batched graph.
    free_atoms_only : bool
        Force errors of atoms not fixed by ``FixAtoms`` only (all atoms when none is free).
    """
    energy_errors, force_errors = [], []
    indices = list(range(len(labelled)))
    for batch in iter_labelled_batches(labelled, indices, batch_size, backend):
        energies, forces = predict(backend, energy_shift, batch.graph)
        n_atoms = batch.graph.n_atoms.to(energies.dtype)
        per_atom = ((energies.detach() - batch.energies) / n_atoms).double().cpu()
        energy_errors.append(per_atom.numpy())
        force_errors.append((forces.detach() - batch.forces).double().cpu().numpy())
    errors = free_force_errors(
        np.concatenate(force_errors), labelled.structures, free_atoms_only=free_atoms_only
    )
    return error_metrics(np.concatenate(energy_errors), errors, int(labelled.n_atoms.sum()))


def free_atoms(atoms: Atoms) -> np.ndarray:
    """Boolean mask, shape (n_atoms,): True for atoms that no ``FixAtoms`` constraint holds."""
    free = np.ones(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            free[constraint.index] = False
    return free


def masked_force_errors(predicted: Sequence[np.ndarray], labelled: LabelledSet) -> list[np.ndarray]:
    """Predicted minus reference forces (eV/Angstrom), one (n_atoms, 3) array per structure of
    ``labelled``, NaN on the atoms that :func:`free_atoms` holds fixed."""
    errors = []
    for atoms, forces, reference in zip(labelled.structures, predicted, labelled.forces):
        error = np.asarray(forces, dtype=np.float64) - reference
        error[~free_atoms(atoms)] = np.nan
        errors.append(error)
    return errors


def free_force_errors(
    errors: np.ndarray, structures: Sequence[Atoms], *, free_atoms_only: bool = True
) -> np.ndarray:
    """The force-error components (flat) of the free atoms of ``structures``.

    ``errors`` has shape (sum of atoms, 3), atoms in the order of ``structures``. Without
    any free atom (or with ``free_atoms_only=False``) every component is kept.
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1, 3)
    if not free_atoms_only:
        return errors.reshape(-1)
    mask = np.concatenate([free_atoms(a) for a in structures]) if structures else np.ones(0, bool)
    if len(mask) != len(errors):
        raise ValueError(f"{len(errors)} force rows for {len(mask)} atoms")
    return (errors[mask] if mask.any() else errors).reshape(-1)


def error_metrics(
    energy_errors_per_atom: np.ndarray, force_errors: np.ndarray, n_atoms: int
) -> ErrorMetrics:
    """:class:`ErrorMetrics` from errors in eV: ``(E - E^ref) / N`` of each structure (eV/atom)
    and every force component's ``F - F^ref`` (eV/Angstrom).

    Components without a reference (NaN: energy-only structures) are left out; with none left
    the force metrics are NaN (omitted).
    """
    de = np.asarray(energy_errors_per_atom, dtype=np.float64) * _MEV_PER_EV
    df = np.asarray(force_errors, dtype=np.float64).reshape(-1) * _MEV_PER_EV
    df = df[np.isfinite(df)]
    no_forces = len(df) == 0
    return ErrorMetrics(
        n_structures=len(de),
        n_atoms=n_atoms,
        energy_mae_mev_per_atom=float(np.mean(np.abs(de))),
        energy_rmse_mev_per_atom=float(np.sqrt(np.mean(de**2))),
        force_mae_mev_per_ang=np.nan if no_forces else float(np.mean(np.abs(df))),
        force_rmse_mev_per_ang=np.nan if no_forces else float(np.sqrt(np.mean(df**2))),
    )


def evaluate_splits(
    backend: ModelBackend,
    splits: Mapping[str, LabelledSet],
    *,
    energy_shift: EnergyShift | None = None,
    batch_size: int = 16,
    free_atoms_only: bool = True,
) -> dict[str, ErrorMetrics]:
    """:func:`evaluate` on every split, keyed like ``splits`` (e.g. ``test_id``, ``test_ood``)."""
    return {
        name: evaluate(
            backend,
            labelled,
            energy_shift=energy_shift,
            batch_size=batch_size,
            free_atoms_only=free_atoms_only,
        )
        for name, labelled in splits.items()
    }
