"""Neighbour graphs of batched structures, in one backend-neutral layout.

A :class:`GraphBatch` stacks the atoms of several structures (graph batching), with one radial
neighbour list built on the CPU by ASE. Backends translate it into their own input dictionaries;
positions travel separately so that callers can differentiate with respect to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list


@dataclass(frozen=True)
class GraphBatch:
    """Several structures batched into one disconnected graph.

    Attributes
    ----------
    atomic_numbers : LongTensor, shape (n_atoms,)
    positions : Tensor, shape (n_atoms, 3), Angstrom
    cells : Tensor, shape (n_graphs, 3, 3), Angstrom (zeros for a non-periodic structure)
    batch : LongTensor, shape (n_atoms,)
        Index of the structure each atom belongs to.
    edge_index : LongTensor, shape (2, n_edges)
        Rows ``(sender, receiver)``; the edge vector is
        ``positions[receiver] - positions[sender] + cell_shifts[e] @ cells[batch[sender]]``.
    cell_shifts : Tensor, shape (n_edges, 3)
        Integer lattice translations of each edge, stored in the float dtype.
    n_atoms : LongTensor, shape (n_graphs,)
    """

    atomic_numbers: torch.Tensor
    positions: torch.Tensor
    cells: torch.Tensor
    batch: torch.Tensor
    edge_index: torch.Tensor
    cell_shifts: torch.Tensor
    n_atoms: torch.Tensor

    @property
    def n_graphs(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def ptr(self) -> torch.Tensor:
        """Start offsets of each structure's atoms, shape (n_graphs + 1,)."""
        zero = torch.zeros(1, dtype=torch.long, device=self.n_atoms.device)
        return torch.cat([zero, torch.cumsum(self.n_atoms, 0)])

    def shift_vectors(self) -> torch.Tensor:
        """Cartesian periodic shift of every edge, shape (n_edges, 3), Angstrom."""
        sender_cells = self.cells[self.batch[self.edge_index[0]]]
        return torch.einsum("ei,eij->ej", self.cell_shifts, sender_cells)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> GraphBatch:
        """Copy onto ``device``, with float tensors cast to ``dtype``."""
        return replace(
            self,
            atomic_numbers=self.atomic_numbers.to(device),
            positions=self.positions.to(device, dtype),
            cells=self.cells.to(device, dtype),
            batch=self.batch.to(device),
            edge_index=self.edge_index.to(device),
            cell_shifts=self.cell_shifts.to(device, dtype),
            n_atoms=self.n_atoms.to(device),
        )


def build_graph_batch(
    structures: Sequence[Atoms],
    cutoff: float,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> GraphBatch:
    """Build the radial neighbour graph of ``structures`` (cutoff in Angstrom) and batch it."""
    if not structures:
        raise ValueError("build_graph_batch needs at least one structure")
    numbers, positions, cells, batch, edges, shifts, counts = [], [], [], [], [], [], []
    offset = 0
    for g, atoms in enumerate(structures):
        n = len(atoms)
        senders, receivers, s = neighbor_list("ijS", atoms, cutoff, self_interaction=False)
        numbers.append(atoms.get_atomic_numbers())
        positions.append(atoms.get_positions())
        cell = np.asarray(atoms.get_cell()) if atoms.pbc.any() else np.zeros((3, 3))
        cells.append(cell)
        batch.append(np.full(n, g))
        edges.append(np.stack([senders, receivers]) + offset)
        shifts.append(s)
        counts.append(n)
        offset += n
    return GraphBatch(
        atomic_numbers=torch.as_tensor(np.concatenate(numbers), dtype=torch.long),
        positions=torch.as_tensor(np.concatenate(positions), dtype=dtype),
        cells=torch.as_tensor(np.stack(cells), dtype=dtype),
        batch=torch.as_tensor(np.concatenate(batch), dtype=torch.long),
        edge_index=torch.as_tensor(np.concatenate(edges, axis=1), dtype=torch.long),
        cell_shifts=torch.as_tensor(np.concatenate(shifts), dtype=dtype),
        n_atoms=torch.as_tensor(counts, dtype=torch.long),
    ).to(device, dtype)
