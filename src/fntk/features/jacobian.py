"""Pooled hidden features s(x) = sum_i w_i h_i and their position Jacobians, two ways.

The hidden (linear-readout) path needs, for a basis B (F x d) of the readout's hidden space,
the projected Jacobian ``-(ds/dr)^T B`` of every structure (DESIGN.md section 2). Graphs in a
batch are disconnected, so one pass serves every structure of the batch at once:

- *reverse mode* (:func:`projected_rows_reverse`): one backward pass of ``sum_x s(x) . b_k`` per
  column b_k of B, all on one retained forward graph: d passes, each ~0.65 energy+force
  evaluations on a CPU.
- *forward mode* (:func:`hidden_jacobian_forward`): one forward-mode (dual-number) pass per
  tangent "coordinate k of atom a of every structure": 3 x (largest atom count) passes give the
  whole F-wide Jacobian, each 0.6-1.3 energy+force evaluations on a CPU. It wins when
  3 N_max x :data:`FORWARD_PASS_COST` < d x :data:`REVERSE_PASS_COST` (exact maps of small
  molecules and clusters up to ~40 atoms).

Both give the same rows to float rounding (tests/features/test_jacobian.py).
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as forward_ad

from fntk.features.readout import LinearReadout
from fntk.models.base import ModelBackend
from fntk.models.graph import GraphBatch

REVERSE_PASS_COST = 0.65
"""One backward pass of ``u . s`` in energy+force evaluations of the same batch (SevenNet-0,
CPU, float32; 0.66 for small molecules and 0.64 for 35-atom clusters in
``benchmarks/results/feature-cost-2026-12-06.txt``)."""
FORWARD_PASS_COST = 0.65
"""One forward-mode pass along one position tangent, in energy+force evaluations (same run:
1.26 for small molecules, where fixed per-pass work dominates, and 0.57 for 35-atom clusters).
Set equal to the reverse cost: forward mode then wins where it needs fewer passes, which is
the right choice for both (exact map: 34x vs 85x E+F for molecules, 60x vs 82x for clusters)."""


def use_forward_mode(max_atoms: int, n_columns: int) -> bool:
    """Whether forward mode (3 ``max_atoms`` passes) is cheaper than ``n_columns`` backward ones."""
    return 3 * max_atoms * FORWARD_PASS_COST < n_columns * REVERSE_PASS_COST


def pool_by_structure(graph: GraphBatch, per_atom: torch.Tensor) -> torch.Tensor:
    """Sum of ``per_atom`` (n_atoms, k) over each structure's atoms, shape (n_graphs, k)."""
    pooled = torch.zeros(
        graph.n_graphs, per_atom.shape[1], dtype=per_atom.dtype, device=per_atom.device
    )
    return pooled.index_add_(0, graph.batch, per_atom)


def projected_rows_reverse(
    backend: ModelBackend,
    graph: GraphBatch,
    readout: LinearReadout,
    basis: torch.Tensor,
    want_forces: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Energy rows ``s^T B`` (n_graphs, d) and force rows ``-(ds/dr)^T B`` (3 n_atoms, d).

    One forward graph, then one backward pass per column of ``basis`` (F, d), reusing it.
    """
    positions = graph.positions.detach().requires_grad_(want_forces)
    weights = readout.atom_weights(graph)
    with torch.set_grad_enabled(want_forces):
        hidden = backend(graph, positions).node_features * weights[:, None]
        projected = hidden @ basis  # (n_atoms, d): (w_i h_i)^T B
        energy = pool_by_structure(graph, projected)
        if not want_forces:
            return energy, None
        d = projected.shape[1]
        forces = torch.empty(
            3 * positions.shape[0], d, dtype=positions.dtype, device=positions.device
        )
        for k in range(d):
            # Graphs are disconnected, so the gradient of the batch sum is each structure's own.
            (grad,) = torch.autograd.grad(projected[:, k].sum(), positions, retain_graph=k < d - 1)
            forces[:, k] = -grad.reshape(-1)
    return energy.detach(), forces


def pooled_jvp(
    backend: ModelBackend, graph: GraphBatch, readout: LinearReadout, tangent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """s (n_graphs, F) and its derivative along the position tangent (n_atoms, 3), one pass."""
    weights = readout.atom_weights(graph)[:, None]
    with torch.no_grad(), forward_ad.dual_level():
        dual = forward_ad.make_dual(graph.positions.detach(), tangent)
        hidden = backend(graph, dual).node_features * weights
        primal, derivative = forward_ad.unpack_dual(pool_by_structure(graph, hidden))
    return primal, derivative


def hidden_jacobian_forward(
    backend: ModelBackend, graph: GraphBatch, readout: LinearReadout
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features s (n_graphs, F) and Jacobian rows ``ds/dr`` (3 n_atoms, F), forward mode.

    Row ``3 a + k`` is the derivative of its own structure's s with respect to coordinate k of
    atom a. Pass (a, k) moves coordinate k of the a-th atom of every structure that has one, so
    3 x (largest atom count) passes cover the batch.
    """
    positions = graph.positions
    start = graph.ptr[:-1]
    jacobian = torch.empty(
        3 * positions.shape[0], readout.n_hidden, dtype=positions.dtype, device=positions.device
    )
    pooled = torch.empty(0)
    for a in range(int(graph.n_atoms.max())):
        has_atom = graph.n_atoms > a
        atoms = start[has_atom] + a
        for k in range(3):
            tangent = torch.zeros_like(positions)
            tangent[atoms, k] = 1.0
            primal, derivative = pooled_jvp(backend, graph, readout, tangent)
            jacobian[3 * atoms + k] = derivative[has_atom]
            if a == 0 and k == 0:
                pooled = primal
    return pooled, jacobian


def projected_rows(
    backend: ModelBackend,
    graph: GraphBatch,
    readout: LinearReadout,
    basis: torch.Tensor,
    want_forces: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`projected_rows_reverse`'s rows, by whichever mode is cheaper for this batch."""
    if want_forces and use_forward_mode(int(graph.n_atoms.max()), int(basis.shape[1])):
        pooled, jacobian = hidden_jacobian_forward(backend, graph, readout)
        return pooled @ basis, -(jacobian @ basis)
    return projected_rows_reverse(backend, graph, readout, basis, want_forces)
