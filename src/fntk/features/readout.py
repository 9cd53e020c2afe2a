"""Factorisation of a linear readout: dE/dtheta_readout = M s(x), s(x) = sum_i w_i h_i.

SevenNet-0 reads the energy out of the invariant node features h_i (128) with two e3nn linear
layers (128 -> 64 -> 1, no bias, no nonlinearity), a fixed species-wise scale sigma_z and shift,
and a sum over atoms. Hence E = sum_i sigma_{z_i} a(theta)^T h_i + const, and the readout
gradient is a fixed linear map M = da/dtheta (P x F) of the pooled features
s(x) = sum_i sigma_{z_i} h_i (DESIGN.md section 2). A backend says it has such a readout by
declaring the :data:`~fntk.models.base.LINEAR_READOUT` capability; M is then found by probing its
readout with the identity matrix, so e3nn's internal normalisation constants are measured, not
assumed. A backend without the capability takes the generic parameter path; one that declares
it but whose readout fails the linearity probe is an error, never a silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fntk.errors import CapabilityError
from fntk.models.base import (
    LINEAR_READOUT,
    LINEARITY_TOLERANCE,
    ModelBackend,
    readout_linearity_error,
)
from fntk.models.graph import GraphBatch


@dataclass(frozen=True)
class LinearReadout:
    """A readout that is linear in the node features.

    Attributes
    ----------
    matrix : Tensor, shape (P, F)
        M with dE/dtheta = M s(x) for the readout parameters, in ``parameter_group`` order.
    scale : Tensor, shape (n_types,)
        Per-type weight w of each atom's features in s(x) (species scale times reduce constant).
    type_index : Tensor, shape (119,), int64
        Type index of each atomic number (-1 for unknown elements).
    """

    matrix: torch.Tensor
    scale: torch.Tensor
    type_index: torch.Tensor

    @property
    def n_hidden(self) -> int:
        """Width F of the node features."""
        return int(self.matrix.shape[1])

    def atom_weights(self, graph: GraphBatch) -> torch.Tensor:
        """Weight w_i of every atom in s(x), shape (n_atoms,)."""
        return self.scale[self.type_index[graph.atomic_numbers]]


def linear_readout(backend: ModelBackend, group: str) -> LinearReadout | None:
    """The factorised readout of ``backend`` for ``group``, or ``None`` when there is none.

    Only the ``readout`` group of a backend with the ``linear_readout`` capability qualifies;
    everything else goes through the generic parameter-space path.

    Raises
    ------
    CapabilityError
        The backend declares a linear readout, but probing shows it is not linear in h.
    """
    if group != "readout" or LINEAR_READOUT not in backend.capabilities:
        return None
    params = backend.parameter_group("readout")
    names = list(params)
    n_hidden = backend.n_node_features
    with torch.enable_grad():
        eye = torch.eye(n_hidden, dtype=backend.dtype, device=backend.device)
        coefficients = backend.readout_energy(eye)  # a(theta), shape (F,)
        rows = []
        for f in range(n_hidden):
            grads = torch.autograd.grad(
                coefficients[f], [params[n] for n in names], retain_graph=True, allow_unused=True
            )
            rows.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(params[n])).reshape(-1)
                        for g, n in zip(grads, names)
                    ]
                )
            )
    matrix = torch.stack(rows, dim=1).detach()
    error = readout_linearity_error(backend.readout_energy, coefficients.detach())
    if error > LINEARITY_TOLERANCE:
        raise CapabilityError(
            f"model {backend.spec} declares a linear readout, but its readout is not linear in "
            f"the node features (relative probe error {error:.1e}); this is a bug of the backend"
        )
    scale, type_index = backend.readout_atom_weights()
    return LinearReadout(matrix=matrix, scale=scale, type_index=type_index)
