"""Forward-mode and reverse-mode hidden Jacobians agree with each other and with differences."""

from __future__ import annotations

import pytest
import torch
from ase.build import bulk, molecule

from fntk.features import jacobian as jacobian_module
from fntk.features.basis import readout_root
from fntk.features.jacobian import (
    hidden_jacobian_forward,
    pool_by_structure,
    projected_rows_reverse,
    use_forward_mode,
)
from fntk.features.readout import linear_readout
from fntk.models.base import reproducible_execution


def _mixed_batch() -> list:
    """Molecules of 3, 5 and 6 atoms and a periodic cell: ragged, with periodic images."""
    structures = [molecule(name) for name in ("H2O", "CH4", "CH3OH")]
    cell = bulk("Cu", "fcc", cubic=True)
    cell.rattle(0.05, seed=1)
    structures.append(cell)
    for k, atoms in enumerate(structures[:3]):
        atoms.rattle(0.05, seed=k)
    return structures


@pytest.fixture(scope="module")
def readout64(sevennet64):
    readout = linear_readout(sevennet64, "readout")
    assert readout is not None
    return readout


def test_forward_mode_jacobian_equals_reverse_mode_rows(sevennet64, readout64):
    graph = sevennet64.build_graph(_mixed_batch())
    basis = readout_root(readout64)[:, :6]
    with reproducible_execution():
        energy, forces = projected_rows_reverse(sevennet64, graph, readout64, basis, True)
        pooled, jacobian = hidden_jacobian_forward(sevennet64, graph, readout64)
    assert forces is not None
    torch.testing.assert_close(pooled @ basis, energy, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(-(jacobian @ basis), forces, rtol=1e-9, atol=1e-10)


def test_forward_mode_jacobian_does_not_depend_on_the_tangent_group(
    sevennet64, readout64, monkeypatch
):
    graph = sevennet64.build_graph(_mixed_batch())
    with reproducible_execution():
        pooled, jacobian = hidden_jacobian_forward(sevennet64, graph, readout64)
        # 18 atoms: groups of 1 and of 7 tangents instead of all 18 at once.
        for tangent_atoms in (1, 7 * 18):
            monkeypatch.setattr(jacobian_module, "TANGENT_ATOMS", tangent_atoms)
            grouped_pooled, grouped = hidden_jacobian_forward(sevennet64, graph, readout64)
            torch.testing.assert_close(grouped_pooled, pooled, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(grouped, jacobian, rtol=1e-10, atol=1e-12)


def test_forward_mode_jacobian_equals_finite_differences(sevennet64, readout64):
    structures = _mixed_batch()
    graph = sevennet64.build_graph(structures)
    with reproducible_execution():
        _, jacobian = hidden_jacobian_forward(sevennet64, graph, readout64)
    weights = readout64.atom_weights(graph)[:, None]

    def pooled_at(positions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            hidden = sevennet64(graph, positions).node_features * weights
        return pool_by_structure(graph, hidden)

    step = 1e-5
    ptr = graph.ptr.tolist()
    for g, atom, k in ((0, 1, 2), (2, 5, 0), (3, 2, 1)):  # a molecule's H, methanol, the cell
        row = 3 * (ptr[g] + atom) + k
        shift = torch.zeros_like(graph.positions)
        shift[ptr[g] + atom, k] = step
        difference = (pooled_at(graph.positions + shift) - pooled_at(graph.positions - shift)) / (
            2 * step
        )
        torch.testing.assert_close(jacobian[row], difference[g], rtol=1e-5, atol=1e-6)
        others = [h for h in range(graph.n_graphs) if h != g]
        assert difference[others].abs().max() < 1e-8  # graphs in a batch are disconnected


def test_mode_choice_follows_the_cost_model():
    assert use_forward_mode(7, 128)  # exact map of small molecules: 21 tangents
    assert use_forward_mode(35, 128)  # 35-atom clusters: 105 tangents
    assert not use_forward_mode(70, 128)
    assert not use_forward_mode(7, 8)  # a narrow basis: 8 backward passes are cheaper
