"""Factorisation of a linear readout: dE/dtheta_readout = M s(x), s(x) = sum_i w_i h_i.

SevenNet-0 reads the energy out of the invariant node features h_i (128) with two e3nn linear
layers (128 -> 64 -> 1, no bias, no nonlinearity), a fixed species-wise scale sigma_z and shift,
and a sum over atoms. Hence E = sum_i sigma_{z_i} a(theta)^T h_i + const, and the readout
gradient is a fixed linear map M = da/dtheta (P x F) of the pooled features
s(x) = sum_i sigma_{z_i} h_i (DESIGN.md section 2). M is found by probing the readout modules with
the identity matrix, so e3nn's internal normalisation constants are measured, not assumed; a
readout that turns out not to be linear in h yields ``None`` and the generic path is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fntk.models.base import ModelBackend
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

    Only the ``readout`` group of a SevenNet model whose readout is a bias-free linear chain
    qualifies; everything else goes through the generic parameter-space path.
    """
    from fntk.models.sevennet import SevenNetBackend

    if group != "readout" or not isinstance(backend, SevenNetBackend):
        return None
    model = backend.model
    modules = [
        getattr(model, name, None) for name in ("reduce_input_to_hidden", "reduce_hidden_to_energy")
    ]
    rescale = getattr(model, "rescale_atomic_energy", None)
    reduce = getattr(model, "reduce_total_enegy", None)
    if any(m is None for m in modules) or rescale is None or reduce is None:
        return None
    params = backend.parameter_group("readout")
    names = list(params)
    n_hidden = backend.n_node_features

    def readout(h: torch.Tensor) -> torch.Tensor:
        data = {modules[0].key_input: h}
        for module in modules:
            data = module(data)
        return data[modules[1].key_output].reshape(-1)

    with torch.enable_grad():
        eye = torch.eye(n_hidden, dtype=backend.dtype, device=backend.device)
        coefficients = readout(eye)  # a(theta), shape (F,)
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
    # Linearity check: a nonlinear or biased readout would not reproduce these probes.
    probe = torch.randn(
        5, n_hidden, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    ).to(backend.device, backend.dtype)
    with torch.no_grad():
        expected = probe @ coefficients.detach()
        linear = torch.allclose(readout(probe), expected, rtol=1e-4, atol=1e-6 * n_hidden)
        zero = torch.allclose(readout(torch.zeros_like(probe)), torch.zeros(5, dtype=probe.dtype))
    if not (linear and zero):
        return None
    type_index = torch.arange(119, device=backend.device)
    if model.eval_type_map:
        type_index = model._atomic_numbers_to_onehot(type_index)
    return LinearReadout(
        matrix=matrix,
        scale=(rescale.scale.detach() * float(reduce.constant)).to(backend.dtype),
        type_index=type_index,
    )
