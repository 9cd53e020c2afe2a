"""The NTK feature maps: energy NTK, force NTK and the joint energy-force NTK.

All three project gradients of the model with one effective sketch Omega_eff (P x d), so that
``phi_E = Omega_eff^T dE/dtheta`` and ``Phi_F = (dF/dtheta) Omega_eff`` (DESIGN.md section 2).
Two computational paths share the block assembly:

- *hidden path* (a linear readout, :mod:`fntk.features.readout`): dE/dtheta = M s(x), so with
  a basis B (F x d) of the readout's hidden space, ``phi_E = s^T B`` and
  ``Phi_F = -(ds/dr)^T B``; one forward pass plus one backward pass per column of B
  (:func:`hidden_basis`). With ``d >= F``, B = (M^T M)^{1/2}, the symmetric PSD square root,
  and Omega_eff = M (M^T M)^{-1/2} has orthonormal columns (exact, an isometry: kernels equal
  the unsketched ones). With ``d < F``, B = M^T Omega with Omega the seeded P x d Gaussian
  sketch of the parameter path, so ``phi_E = (M s)^T Omega = Omega^T dE/dtheta``: the hidden
  path computes exactly the parameter path's features, at F/P of the memory. Both are
  functions of M and the seed alone (no eigenbasis is ever chosen), which matters because
  SevenNet-0's M^T M has a 64-fold degenerate eigenvalue: a basis taken from its
  eigenvectors would change with the dtype, the LAPACK build and the thread count.
- *parameter path* (any group, any backend): with a dummy weight u_g = 1 per structure,
  ``g(u, r) = d(sum_g u_g E_g)/dtheta`` is built with ``create_graph``; for each sketch column
  omega_k one backward pass of ``h_k = g . omega_k`` gives ``dh_k/du_g = dE_g/dtheta . omega_k``
  (energy rows) and ``-dh_k/dr = (dF/dtheta) omega_k`` (force rows) for the whole batch at once.
  Columns of Omega are generated from the seed one at a time (:mod:`fntk.features.sketch`), so
  the P x d matrix is never stored and the full P-column Jacobian is never built. Without a
  sketch (P <= d) the columns are unit vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from ase import Atoms

from fntk.chunk import FeatureChunk
from fntk.features.assembly import (
    assemble_chunk,
    check_backend_dtype,
    iter_batches,
    stack_block,
    weigh_rows,
)
from fntk.features.basis import pca_basis, readout_root, sketch_basis
from fntk.features.jacobian import projected_rows
from fntk.features.options import EnergyNTKOptions, ForceNTKOptions, JointNTKOptions
from fntk.features.readout import LinearReadout, linear_readout
from fntk.features.registry import has_energy_rows, has_force_rows
from fntk.features.sketch import sketch_column, sketch_matrix
from fntk.models.base import ModelBackend, reproducible_execution
from fntk.models.graph import GraphBatch

NTKOptions = EnergyNTKOptions | ForceNTKOptions | JointNTKOptions


@dataclass(frozen=True)
class _HiddenPlan:
    readout: LinearReadout
    basis: torch.Tensor  # B, shape (F, d)


@dataclass(frozen=True)
class _ParameterPlan:
    parameters: tuple[torch.nn.Parameter, ...]
    n_parameters: int
    sketched: bool


class NTKFeatureMap:
    """Energy NTK (1 row), force NTK (3N rows) or joint NTK (1 + 3N rows) of a backend.

    Parameters
    ----------
    options : EnergyNTKOptions | ForceNTKOptions | JointNTKOptions
        Which rows, parameter group, sketch width and seed (see :mod:`fntk.features.options`).
    """

    def __init__(self, options: NTKOptions) -> None:
        self.options = options

    @property
    def energy_rows(self) -> bool:
        return has_energy_rows(self.options.name)

    @property
    def force_rows(self) -> bool:
        return has_force_rows(self.options.name)

    def n_features(self, backend: ModelBackend) -> int:
        """Number of feature columns d_eff for ``backend`` (d, or less when exact)."""
        plan = self._plan(backend)
        if isinstance(plan, _HiddenPlan):
            return int(plan.basis.shape[1])
        return self.options.dim if plan.sketched else plan.n_parameters

    def path(self, backend: ModelBackend) -> Literal["hidden", "parameter"]:
        """Which computation runs on ``backend``: the linear-readout ``hidden`` path or the
        generic ``parameter`` path (see the module docstring)."""
        return "hidden" if isinstance(self._plan(backend), _HiddenPlan) else "parameter"

    def describe(self, backend: ModelBackend) -> str:
        """One status line: map, path, group and width, e.g. for run.json."""
        plan = self._plan(backend)
        name, group = self.options.name, self.options.group
        if isinstance(plan, _HiddenPlan):
            exact = self.options.dim >= plan.readout.n_hidden
            how = "exact square-root basis" if exact else f"{self.options.basis} basis"
            return (
                f"{name} features: hidden path (linear readout of {backend.spec}, "
                f"{plan.readout.n_hidden} hidden features, {how}, d={self.n_features(backend)})"
            )
        how = f"sketched, seed {self.options.seed}" if plan.sketched else "unsketched"
        return (
            f"{name} features: parameter path (group {group}, {plan.n_parameters} parameters, "
            f"{how}, d={self.n_features(backend)})"
        )

    def projection(self, backend: ModelBackend) -> torch.Tensor:
        """The effective Omega_eff with ``Phi = J Omega_eff``, shape (P, d_eff).

        Materialises P x d_eff values: meant for tests and small groups.
        """
        plan = self._plan(backend)
        if isinstance(plan, _HiddenPlan):
            m = plan.readout.matrix
            return m @ torch.linalg.solve(m.T @ m, plan.basis)
        if not plan.sketched:
            return torch.eye(plan.n_parameters, dtype=backend.dtype, device=backend.device)
        return sketch_matrix(
            self.options.seed,
            plan.n_parameters,
            self.options.dim,
            dtype=backend.dtype,
            device=backend.device,
        )

    def __call__(
        self,
        backend: ModelBackend,
        structures: Sequence[Atoms],
        source_index: Sequence[int] | np.ndarray | None = None,
    ) -> FeatureChunk:
        """Feature blocks of ``structures``, computed batch by batch (see the options).

        Parameters
        ----------
        backend : ModelBackend
            Loaded model; its dtype must match ``options.dtype``.
        structures : sequence of ase.Atoms
        source_index : array-like of int, shape (n_structures,), optional
            Global pool index of each structure (default ``0..n-1``).

        Returns
        -------
        FeatureChunk
            Rows per structure: energy row first (energy-ntk, joint; eV, or eV/atom with
            ``per_atom``), then 3N force rows in atom-major x, y, z order (eV/Angstrom, times
            lambda for joint), each of width :meth:`n_features`.
        """
        check_backend_dtype(backend, self.options.dtype)
        plan = self._plan(backend)
        blocks: list[np.ndarray] = []
        kinds: list[np.ndarray] = []
        options = self.options
        for batch in iter_batches(structures, options.batch_size, options.max_batch_atoms):
            graph = backend.build_graph(batch)
            with reproducible_execution():
                if isinstance(plan, _HiddenPlan):
                    energy, forces = projected_rows(
                        backend, graph, plan.readout, plan.basis, self.force_rows
                    )
                elif self.force_rows:
                    energy, forces = _parameter_rows(backend, graph, plan, options)
                else:
                    energy, forces = _parameter_energy_rows(backend, graph, plan, options), None
            self._append_blocks(graph, energy, forces, blocks, kinds)
        return assemble_chunk(blocks, kinds, structures, source_index)

    def _append_blocks(
        self,
        graph: GraphBatch,
        energy: torch.Tensor,
        forces: torch.Tensor | None,
        blocks: list[np.ndarray],
        kinds: list[np.ndarray],
    ) -> None:
        n_atoms = graph.n_atoms.tolist()
        energy, forces = weigh_rows(
            energy, forces, graph.n_atoms.to(energy.dtype)[:, None], self.options
        )
        energy_np = energy.detach().cpu().numpy() if self.energy_rows else None
        force_np = None if forces is None else forces.detach().cpu().numpy()
        row = 0
        for g, n in enumerate(n_atoms):
            block, block_kinds = stack_block(
                None if energy_np is None else energy_np[g : g + 1],
                None if force_np is None else force_np[row : row + 3 * n],
            )
            row += 3 * n
            blocks.append(block)
            kinds.append(block_kinds)

    def _plan(self, backend: ModelBackend) -> _HiddenPlan | _ParameterPlan:
        options = self.options
        readout = linear_readout(backend, options.group)
        if readout is not None:
            return _HiddenPlan(readout=readout, basis=hidden_basis(readout, options, backend))
        parameters = tuple(backend.parameter_group(options.group).values())
        n_parameters = sum(p.numel() for p in parameters)
        return _ParameterPlan(parameters, n_parameters, sketched=n_parameters > options.dim)


def hidden_basis(
    readout: LinearReadout, options: NTKOptions, backend: ModelBackend | None = None
) -> torch.Tensor:
    """Basis B of the readout's hidden space with ``B B^T ~ M^T M``, shape (F, d_eff).

    ``d >= F``: the PSD square root ``(M^T M)^{1/2}`` (d_eff = F, exact). ``d < F``: with
    ``basis="sketch"``, ``M^T Omega`` with Omega the seed's P x d Gaussian sketch
    (:func:`sketch_matrix`); with ``basis="pca"``, the reference set's principal directions
    completed by a sketch (:func:`fntk.features.basis.pca_basis`; needs ``backend``). All are
    unique for a seed and model, also where M^T M has degenerate eigenvalues (a square root
    does not depend on the eigenvectors eigh happens to return), and are computed in float64
    on the CPU whatever the model's dtype and device, then cast to them: the basis of a
    float32 model on a GPU equals the float64 CPU one to float32 rounding.
    """
    if options.dim >= readout.n_hidden:
        basis = readout_root(readout)
    elif options.basis == "pca":
        if backend is None:
            raise ValueError("the 'pca' hidden basis is fitted on the model: pass its backend")
        basis = pca_basis(backend, readout, options)
    else:
        basis = sketch_basis(readout, options.seed, options.dim)
    return basis.to(device=readout.matrix.device, dtype=readout.matrix.dtype)


def _flat_gradient(
    outputs: torch.Tensor, parameters: tuple[torch.nn.Parameter, ...], create_graph: bool
) -> torch.Tensor:
    grads = torch.autograd.grad(
        outputs, parameters, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, parameters)
        ]
    )


def _direction(
    plan: _ParameterPlan, options: NTKOptions, k: int, like: torch.Tensor
) -> torch.Tensor:
    return sketch_column(
        options.seed, k, plan.n_parameters, options.dim, dtype=like.dtype, device=like.device
    )


def _parameter_rows(
    backend: ModelBackend, graph: GraphBatch, plan: _ParameterPlan, options: NTKOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy rows (n_graphs, d) and force rows (3 n_atoms, d) by the parameter path."""
    positions = graph.positions.detach().requires_grad_(True)
    weights = torch.ones(graph.n_graphs, dtype=positions.dtype, device=positions.device)
    weights.requires_grad_(True)
    d = options.dim if plan.sketched else plan.n_parameters
    energy = torch.empty(graph.n_graphs, d, dtype=positions.dtype, device=positions.device)
    forces = torch.empty(3 * positions.shape[0], d, dtype=positions.dtype, device=positions.device)
    with torch.enable_grad():
        total = (backend(graph, positions).energy * weights).sum()
        gradient = _flat_gradient(total, plan.parameters, create_graph=True)
        for k in range(d):
            if plan.sketched:
                h = gradient @ _direction(plan, options, k, gradient)
            else:
                h = gradient[k]
            du, dr = torch.autograd.grad(
                h, (weights, positions), retain_graph=k < d - 1, allow_unused=True
            )
            energy[:, k] = 0.0 if du is None else du
            forces[:, k] = 0.0 if dr is None else -dr.reshape(-1)
    return energy, forces


def _parameter_energy_rows(
    backend: ModelBackend, graph: GraphBatch, plan: _ParameterPlan, options: NTKOptions
) -> torch.Tensor:
    """Energy rows (n_graphs, d): per-structure gradients, then the sketch, column by column."""
    with torch.enable_grad():
        energy = backend(graph).energy
        jacobian = torch.stack(
            [_flat_gradient(e, plan.parameters, create_graph=False) for e in energy]
        )  # (n_graphs, P): P floats per structure, never P x d
    if not plan.sketched:
        return jacobian
    return torch.stack(
        [jacobian @ _direction(plan, options, k, jacobian) for k in range(options.dim)], dim=1
    )
