"""Mini-batches of labelled structures as one graph plus label tensors on the backend's device.

Fine-tuning and evaluation both turn a slice of a :class:`~fntk.learn.labelled.LabelledSet` into a
:class:`LabelledBatch` (graph batching: several structures in one disconnected graph) and run
the model plus the per-element energy shift on it. Those two steps live here, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fntk.learn.e0 import EnergyShift
from fntk.learn.labelled import LabelledSet
from fntk.models import GraphBatch, ModelBackend


@dataclass(frozen=True)
class LabelledBatch:
    """Structures of one mini-batch with their labels.

    Attributes
    ----------
    graph : GraphBatch
    energies : Tensor, shape (n_graphs,), eV
    forces : Tensor, shape (n_atoms, 3), eV/Angstrom
    """

    graph: GraphBatch
    energies: torch.Tensor
    forces: torch.Tensor


def make_batch(
    labelled: LabelledSet, indices: Sequence[int], backend: ModelBackend
) -> LabelledBatch:
    """Batch the structures at ``indices`` on ``backend``'s device and dtype."""
    device, dtype = backend.device, backend.dtype
    return LabelledBatch(
        graph=backend.build_graph([labelled.structures[i] for i in indices]),
        energies=torch.as_tensor(labelled.energies[list(indices)], dtype=dtype, device=device),
        forces=torch.as_tensor(
            np.concatenate([labelled.forces[i] for i in indices]), dtype=dtype, device=device
        ),
    )


def iter_labelled_batches(
    labelled: LabelledSet, indices: Sequence[int], batch_size: int, backend: ModelBackend
) -> Iterator[LabelledBatch]:
    """Consecutive batches of at most ``batch_size`` structures over ``indices``."""
    for start in range(0, len(indices), batch_size):
        yield make_batch(labelled, indices[start : start + batch_size], backend)


def predict(
    backend: ModelBackend,
    energy_shift: EnergyShift | None,
    graph: GraphBatch,
    *,
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies (n_graphs,) in eV, shifted by ``energy_shift``, and forces (n_atoms, 3) in eV/A.

    With ``create_graph=True`` both stay differentiable in the trainable parameters.
    """
    energies, forces = backend.energy_and_forces(graph, create_graph=create_graph)
    if energy_shift is not None:
        shift = energy_shift.to(graph.positions.device)
        energies = energies + shift(graph.atomic_numbers, graph.batch, graph.n_graphs).to(
            energies.dtype
        )
    return energies, forces
