"""Per-element reference-energy shifts (E0s) that carry a model to a new level of theory.

A change of reference method (PBE to wB97X, DFT to EMT, ...) shifts total energies mostly by a
constant per element. :class:`EnergyShift` holds ``delta_E0[z]`` as one small tensor next to the
backend, so the fine-tuned energy is ``E_model(x) + sum_i delta_E0[z_i]``;
:func:`fit_energy_shift` finds it by linear least squares on residuals ``E^ref - E^model``
(DESIGN.md section 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

_MAX_Z = 119


class EnergyShift(nn.Module):
    """Energy shift ``sum_i delta_E0[z_i]`` of each structure in a batched graph.

    Parameters
    ----------
    species : sequence of int
        Atomic numbers with a fitted shift; any other element shifts by 0.
    values : sequence of float or None
        ``delta_E0`` of each species, eV per atom (default zeros).

    Attributes
    ----------
    delta : Parameter, shape (n_species,), eV
    species : tuple of int
    """

    _slot: torch.Tensor  # buffer: slot of each atomic number in ``delta`` (last: absent)

    def __init__(self, species: Sequence[int], values: Sequence[float] | None = None) -> None:
        super().__init__()
        self.species = tuple(int(z) for z in species)
        array = np.zeros(len(self.species)) if values is None else np.asarray(values, float)
        if array.shape != (len(self.species),):
            raise ValueError(f"{len(self.species)} species but values of shape {array.shape}")
        self.delta = nn.Parameter(torch.as_tensor(array, dtype=torch.float64))
        slot = torch.full((_MAX_Z,), len(self.species), dtype=torch.long)
        slot[list(self.species)] = torch.arange(len(self.species))
        self.register_buffer("_slot", slot, persistent=False)

    def as_dict(self) -> dict[int, float]:
        """``{atomic_number: delta_E0}`` in eV."""
        return dict(zip(self.species, self.delta.detach().cpu().tolist()))

    def of_structures(self, numbers: Sequence[np.ndarray]) -> np.ndarray:
        """Shift of each structure given its atomic numbers, shape (n,), eV, float64 (numpy
        counterpart of :meth:`forward`)."""
        values = np.append(self.delta.detach().cpu().double().numpy(), 0.0)
        slot = self._slot.cpu().numpy()
        return np.array([float(values[slot[np.asarray(z)]].sum()) for z in numbers])

    def forward(
        self, atomic_numbers: torch.Tensor, batch: torch.Tensor, n_graphs: int
    ) -> torch.Tensor:
        """Shift of each structure, shape (n_graphs,), eV, in the dtype of ``delta``.

        Parameters
        ----------
        atomic_numbers, batch : LongTensor, shape (n_atoms,)
            Element and structure index of every atom (a :class:`GraphBatch`'s fields).
        n_graphs : int
        """
        padded = torch.cat([self.delta, self.delta.new_zeros(1)])
        per_atom = padded[self._slot[atomic_numbers]]
        return per_atom.new_zeros(n_graphs).index_add(0, batch, per_atom)


def composition_matrix(numbers: Sequence[np.ndarray], species: Sequence[int]) -> np.ndarray:
    """Counts ``C[s, k]`` of element ``species[k]`` in structure ``s``, shape (n, n_species)."""
    column = {int(z): k for k, z in enumerate(species)}
    counts = np.zeros((len(numbers), len(column)), dtype=np.float64)
    for s, z in enumerate(numbers):
        for value, count in zip(*np.unique(z, return_counts=True)):
            counts[s, column[int(value)]] = count
    return counts


def fit_energy_shift(numbers: Sequence[np.ndarray], residuals: np.ndarray) -> EnergyShift:
    """Least-squares ``delta_E0`` with ``sum_i delta_E0[z_i] ~ residual`` for every structure.

    Parameters
    ----------
    numbers : sequence of ndarray
        Atomic numbers of each structure.
    residuals : ndarray, shape (n,), eV
        Reference energy minus model energy of each structure.

    Returns
    -------
    EnergyShift
        Over the elements present. When compositions do not fix every element separately
        (e.g. every slab has 12 metal atoms and one O atom, so a shift of +t per metal atom
        and -12t per O atom changes no fit), the minimum-norm solution is taken, which fits
        the residuals as well as any other; reference structures of single elements remove
        such ambiguities.
    """
    species = sorted({int(z) for n in numbers for z in np.asarray(n)})
    counts = composition_matrix(numbers, species)
    solution, *_ = np.linalg.lstsq(counts, np.asarray(residuals, dtype=np.float64), rcond=None)
    return EnergyShift(species, solution)
