"""Pooled hidden features s(x) = sum_i w_i h_i and their position Jacobians, two ways.

The hidden (linear-readout) path needs, for a basis B (F x d) of the readout's hidden space,
the projected Jacobian ``-(ds/dr)^T B`` of every structure (DESIGN.md section 2). Graphs in a
batch are disconnected, so one pass serves every structure of the batch at once:

- *reverse mode* (:func:`projected_rows_reverse`): one backward pass of ``sum_x s(x) . b_k`` per
  column b_k of B, all on one retained forward graph: d passes, each ~0.65 energy+force
  evaluations on a CPU.
- *forward mode* (:func:`hidden_jacobian_forward`): one tangent per "coordinate k of atom a
  of every structure": 3 x (largest atom count) tangents give the whole F-wide Jacobian. The
  tangents are carried together through one vectorised forward-mode pass (``torch.func``
  ``vmap`` of ``jvp``: the primal once, every op on a wider tensor), ~0.45 energy+force
  evaluations per tangent on a CPU against 0.6-1.3 for one dual-number pass per tangent. It
  wins when 3 N_max x :data:`FORWARD_PASS_COST` < d x :data:`REVERSE_PASS_COST` (exact maps
  up to ~60 atoms per structure; the d = 32 sketch for structures of up to ~15 atoms).

Both give the same rows to float rounding (tests/features/test_jacobian.py).
"""

from __future__ import annotations

import torch

from fntk.features.readout import LinearReadout
from fntk.models.base import ModelBackend
from fntk.models.graph import GraphBatch

REVERSE_PASS_COST = 0.65
"""One backward pass of ``u . s`` in energy+force evaluations of the same batch (SevenNet-0,
CPU, float32; 0.66 for small molecules and 0.64 for 35-atom clusters in
``benchmarks/results/feature-cost-2026-12-06.txt``)."""
FORWARD_PASS_COST = 0.65
"""One forward-mode position tangent, in energy+force evaluations. Measured per tangent (one
dual-number pass each): 1.26 for small molecules and 0.57 for 35-atom clusters
(``benchmarks/results/feature-cost-2026-12-06.txt``); set equal to the reverse cost, so forward
mode wins where it needs fewer passes. The vectorised pass (all tangents of a group in one
``vmap``) was 1.2-2.6x faster than one pass per tangent in
``benchmarks/results/feature-cost-2026-12-06/forward_vmap_check.txt``, which would lower this
constant; it stays at the measured per-tangent value until ``benchmarks/feature_cost.py``'s
exact-map row measures it (a lower value would move the default d = 32 sketch of structures up
to about 15 atoms to forward mode on an estimate)."""


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


TANGENT_ATOMS = 2048
"""Most (tangents x atoms) per vectorised forward-mode pass: the tangents of a batch are split
into groups of ``TANGENT_ATOMS // n_atoms`` (memory grows with the group; the values do not
depend on it)."""


def pooled_jvps(
    backend: ModelBackend, graph: GraphBatch, readout: LinearReadout, tangents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """s (n_graphs, F) and its derivatives (c, n_graphs, F) along tangents (c, n_atoms, 3).

    One vectorised forward-mode pass (``torch.func.vmap`` of ``torch.func.jvp``): the primal
    graph is evaluated once and the c tangents are carried through it together, so each op
    runs once on a c-times wider tensor instead of c times (2-3x faster than one dual-number
    pass per tangent on a CPU, ``benchmarks/feature_cost.py``).
    """
    weights = readout.atom_weights(graph)[:, None]
    positions = graph.positions.detach()

    def pooled(moved: torch.Tensor) -> torch.Tensor:
        return pool_by_structure(graph, backend(graph, moved).node_features * weights)

    def along(tangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = torch.func.jvp(pooled, (positions,), (tangent,))  # (primal, derivative)
        return output[0], output[1]

    # out_dims None: the primal does not depend on the tangent (torch's stub lacks None here).
    batched = torch.func.vmap(along, out_dims=(None, 0))  # type: ignore[arg-type]
    with torch.no_grad():
        primal, derivatives = batched(tangents)
    return primal, derivatives


def hidden_jacobian_forward(
    backend: ModelBackend, graph: GraphBatch, readout: LinearReadout
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features s (n_graphs, F) and Jacobian rows ``ds/dr`` (3 n_atoms, F), forward mode.

    Row ``3 a + k`` is the derivative of its own structure's s with respect to coordinate k of
    atom a. Tangent ``t = 3 a' + k`` moves coordinate k of the a'-th atom of every structure
    that has one, so 3 x (largest atom count) tangents cover the batch; they are carried in
    groups of ``TANGENT_ATOMS // n_atoms`` (:func:`pooled_jvps`).
    """
    positions = graph.positions
    n_atoms = positions.shape[0]
    local = torch.arange(n_atoms, device=positions.device) - graph.ptr[:-1][graph.batch]
    # The tangent index of every (atom, coordinate): 3 x its index within its structure + k.
    tangent_of = 3 * local[:, None] + torch.arange(3, device=positions.device)
    n_tangents = 3 * int(graph.n_atoms.max())
    group = max(1, TANGENT_ATOMS // n_atoms)
    pooled = torch.empty(0)
    derivatives = []
    for first in range(0, n_tangents, group):
        index = torch.arange(first, min(first + group, n_tangents), device=positions.device)
        tangents = (tangent_of == index[:, None, None]).to(positions.dtype)
        pooled, derivative = pooled_jvps(backend, graph, readout, tangents)
        derivatives.append(derivative)
    every = torch.cat(derivatives)  # (n_tangents, n_graphs, F)
    jacobian = every[tangent_of, graph.batch[:, None]]  # (n_atoms, 3, F)
    return pooled, jacobian.reshape(3 * n_atoms, -1)


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
