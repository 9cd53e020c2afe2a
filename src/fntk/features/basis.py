"""Bases B (F x d) of the linear readout's hidden space: the seeded sketch and the PCA basis.

The hidden path's features are ``X B`` with X the structure's hidden rows (energy row s^T,
force rows -(ds/dr)^T; :mod:`fntk.features.jacobian`), and the exact map is ``X R`` with
R = (M^T M)^{1/2} (DESIGN.md section 2). In the coordinates of the exact rows, ``B = R V``:

- ``sketch``: V = R^{-1} M^T Omega, the parameter path's Gaussian sketch (a function of the seed);
  its kernel error falls like 1/sqrt(d).
- ``pca``: V = [V_p, T_q]: the top p = :func:`n_principal` principal directions of the exact rows
  of a reference set (:mod:`fntk.features.reference`), completed by a q-column Gaussian sketch
  of their orthogonal complement, so that what the reference set misses is still estimated
  without bias. The principal directions carry most of the kernel of structures like the
  reference, at a fraction of the width a random sketch needs (``benchmarks/feature_cost.py``).

The PCA basis is computed in float64 on the CPU from the model's reference rows; eigenvector
signs are fixed (largest entry positive), so it is reproducible to float rounding for any
thread count and device. The reference Gram is cached per weights and options, so the
reference set is evaluated once per process and model state, however many chunks are
featurised and whatever the width.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch

from fntk.features.jacobian import TANGENT_ATOMS, pooled_jvps
from fntk.features.options import EnergyNTKOptions, ForceNTKOptions, JointNTKOptions
from fntk.features.readout import LinearReadout
from fntk.features.reference import builtin_reference
from fntk.features.registry import has_energy_rows, has_force_rows
from fntk.features.sketch import sketch_matrix
from fntk.models.base import ModelBackend, reproducible_execution

NTKOptions = EnergyNTKOptions | ForceNTKOptions | JointNTKOptions

# Derived from (weights, options) only, so caching cannot change a value. Keyed by a hash of
# the weights (fine-tuning changes them, and the Gram), not by backend object, so that every
# copy of a model shares it; a few entries (128 KB each) are kept.
_GRAM_CACHE: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
_GRAM_CACHE_SIZE = 8

REFERENCE_TANGENTS = 16
"""Random position tangents of the reference Gram estimate (:func:`reference_gram`)."""


def n_principal(dim: int) -> int:
    """Principal directions p in a PCA basis of width ``dim``; the other ``dim - p`` columns
    are the sketch of their complement (a quarter, rounded down)."""
    return dim - dim // 4


def readout_root(readout: LinearReadout) -> torch.Tensor:
    """R = (M^T M)^{1/2}, the symmetric PSD square root, float64 on the CPU, shape (F, F)."""
    m = readout.matrix.detach().to(device="cpu", dtype=torch.float64)
    eigenvalues, eigenvectors = torch.linalg.eigh(m.T @ m)
    root = (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T
    return 0.5 * (root + root.T)


def sketch_basis(readout: LinearReadout, seed: int, dim: int) -> torch.Tensor:
    """``M^T Omega`` for the seed's P x ``dim`` Gaussian sketch, float64 CPU, shape (F, dim)."""
    m = readout.matrix.detach().to(device="cpu", dtype=torch.float64)
    return m.T @ sketch_matrix(seed, m.shape[0], dim)


def pca_basis(backend: ModelBackend, readout: LinearReadout, options: NTKOptions) -> torch.Tensor:
    """The PCA basis ``R [V_p, T_q]`` of width ``options.dim`` (< F), float64 CPU, (F, dim).

    The reference Gram is cached per weights and the options it depends on.
    """
    key = (_weights_hash(backend), _identity(options))
    if key not in _GRAM_CACHE:
        _GRAM_CACHE[key] = reference_gram(backend, readout, options)
        while len(_GRAM_CACHE) > _GRAM_CACHE_SIZE:
            _GRAM_CACHE.popitem(last=False)
    gram = _GRAM_CACHE[key]
    root = readout_root(readout)
    return root @ _directions(root @ gram @ root, readout, root, options)


def reference_gram(
    backend: ModelBackend, readout: LinearReadout, options: NTKOptions
) -> torch.Tensor:
    """Estimate of ``sum X^T X`` over the reference set's hidden rows, float64 CPU, (F, F).

    Rows are weighted as the map weighs them: energy rows divided by N with ``per_atom``,
    force rows times lambda in the joint map. The energy part is exact. The force part
    ``sum_x J_x J_x^T`` (J = ds/dr, F x 3N) is estimated from :data:`REFERENCE_TANGENTS`
    forward-mode passes along seeded Gaussian position tangents delta, ``E[(J delta)(J
    delta)^T] = J J^T``: a few passes for the whole set instead of 3 N_max exact ones.
    """
    energy_rows = has_energy_rows(options.name)
    force_rows = has_force_rows(options.name)
    force_weight = options.force_weight if isinstance(options, JointNTKOptions) else 1.0
    n = readout.n_hidden
    gram = torch.zeros(n, n, dtype=torch.float64)
    # One fixed batch (not the options' batching), so the basis does not depend on it.
    graph = backend.build_graph(builtin_reference(options.seed, options.reference))
    generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence(options.seed, spawn_key=(0xBA515,)).generate_state(1)[0])
    )
    passes = REFERENCE_TANGENTS if force_rows else 1
    tangents = torch.randn(passes, *graph.positions.shape, generator=generator, dtype=torch.float64)
    group = max(1, TANGENT_ATOMS // graph.positions.shape[0])
    with reproducible_execution():
        for first in range(0, passes, group):
            pooled, derivatives = pooled_jvps(
                backend, graph, readout, tangents[first : first + group].to(graph.positions)
            )
            if first == 0 and energy_rows:
                pooled = pooled.double().cpu()
                if getattr(options, "per_atom", False):
                    pooled = pooled / graph.n_atoms.cpu().double()[:, None]
                gram += pooled.T @ pooled
            if force_rows:
                for derivative in derivatives.double().cpu():
                    gram += (force_weight**2 / passes) * (derivative.T @ derivative)
    return gram


def _directions(
    gram: torch.Tensor, readout: LinearReadout, root: torch.Tensor, options: NTKOptions
) -> torch.Tensor:
    """[V_p, T_q] in the exact rows' coordinates, shape (F, dim)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    rank = int((eigenvalues > 1e-12 * eigenvalues[0]).sum())
    p = min(n_principal(options.dim), rank)
    principal = eigenvectors[:, :p]
    # Fix each eigenvector's sign (eigh's is arbitrary): its largest entry is positive.
    largest = principal.abs().argmax(dim=0)
    principal = principal * torch.sign(principal[largest, torch.arange(p)])
    q = options.dim - p
    if q == 0:
        return principal
    # The sketch directions in these coordinates, R^{-1} M^T Omega_q, have E[T T^T] = I;
    # projected onto the complement of V_p they estimate what the principal part leaves out.
    sketch = torch.linalg.solve(root, sketch_basis(readout, options.seed, q))
    complement = sketch - principal @ (principal.T @ sketch)
    return torch.cat([principal, complement], dim=1)


def _weights_hash(backend: ModelBackend) -> str:
    digest = hashlib.sha256()
    for name, parameter in backend.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _identity(options: NTKOptions) -> str:
    # Everything the Gram depends on: not the width, basis or run-only settings.
    unused = {"batch_size", "max_batch_atoms", "device", "dim", "basis", "sketch", "group"}
    return options.model_dump_json(exclude=unused)
