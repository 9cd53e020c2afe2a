"""Fixtures of the feature-map tests: brute-force references (double loops of autograd.grad)."""

from __future__ import annotations

import pytest
import torch
from ase import Atoms

from fntk.models import ModelBackend


def _flat(grads, parameters) -> torch.Tensor:
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, parameters)
        ]
    )


def brute_force_jacobians(
    backend: ModelBackend, atoms: Atoms, group: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """dE/dtheta, shape (P,), and dF/dtheta, shape (3N, P), row by row."""
    parameters = list(backend.parameter_group(group).values())
    graph = backend.build_graph([atoms])
    positions = graph.positions.detach().requires_grad_(True)
    energy = backend(graph, positions).energy.sum()
    energy_grad = _flat(
        torch.autograd.grad(energy, parameters, retain_graph=True, allow_unused=True), parameters
    )
    (grad_r,) = torch.autograd.grad(energy, positions, create_graph=True)
    forces = -grad_r.reshape(-1)
    rows = [
        _flat(torch.autograd.grad(f, parameters, retain_graph=True, allow_unused=True), parameters)
        for f in forces
    ]
    return energy_grad.detach(), torch.stack(rows).detach()


def forces_at(backend: ModelBackend, atoms: Atoms) -> torch.Tensor:
    """Forces of ``atoms`` flattened atom-major, shape (3N,)."""
    _, forces = backend.energy_and_forces(backend.build_graph([atoms]))
    return forces.detach().reshape(-1)


def finite_difference_force_columns(
    backend: ModelBackend, atoms: Atoms, group: str, directions: torch.Tensor, step: float
) -> torch.Tensor:
    """Central differences (F(theta + h w) - F(theta - h w)) / 2h, shape (3N, n_directions).

    The parameters are restored bit for bit afterwards.
    """
    parameters = list(backend.parameter_group(group).values())
    saved = [p.detach().clone() for p in parameters]
    columns = []
    try:
        for k in range(directions.shape[1]):
            pieces = torch.split(directions[:, k], [p.numel() for p in parameters])
            values = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for p, s, piece in zip(parameters, saved, pieces):
                        p.copy_(s + sign * step * piece.reshape(p.shape))
                values.append(forces_at(backend, atoms))
            columns.append((values[0] - values[1]) / (2 * step))
    finally:
        with torch.no_grad():
            for p, s in zip(parameters, saved):
                p.copy_(s)
    return torch.stack(columns, dim=1)


@pytest.fixture(scope="module")
def brute_force_cache() -> dict:
    """Brute-force Jacobians shared by the tests of one module, keyed by the caller."""
    return {}


@pytest.fixture(scope="session")
def reference():
    """The brute-force helpers of this module, as a namespace (tests call them by attribute)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        jacobians=brute_force_jacobians,
        finite_difference_force_columns=finite_difference_force_columns,
    )
