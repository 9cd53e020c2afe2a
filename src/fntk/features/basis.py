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
thread count and device. The reference set's second moments (:func:`reference_moments`: one
energy part, one force part that the joint map's lambda only scales) are cached per weights,
in memory and on disk (:func:`reference_cache_dir`), so the reference set is evaluated once
per model state and device, not once per process, chunk, width or lambda.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from fntk.features.jacobian import TANGENT_ATOMS, pooled_jvps
from fntk.features.options import EnergyNTKOptions, ForceNTKOptions, JointNTKOptions
from fntk.features.readout import LinearReadout
from fntk.features.reference import builtin_reference
from fntk.features.registry import has_energy_rows, has_force_rows
from fntk.features.sketch import sketch_matrix
from fntk.io import atomic_write_npz
from fntk.models.base import ModelBackend, reproducible_execution, torch_threads

NTKOptions = EnergyNTKOptions | ForceNTKOptions | JointNTKOptions

Moments = tuple[torch.Tensor, torch.Tensor | None]
# Derived from (weights, device, options) only, so caching cannot change a value. Keyed by a
# hash of the weights (fine-tuning changes them, and the moments), not by backend object, so
# that every copy of a model shares them; a few entries (256 KB each) are kept.
_MOMENTS_CACHE: OrderedDict[str, Moments] = OrderedDict()
_MOMENTS_CACHE_SIZE = 8
CACHE_DIR_VARIABLE = "FNTK_CACHE_DIR"
"""Environment variable of the on-disk cache folder (:func:`reference_cache_dir`)."""
_MOMENTS_FORMAT = 1
"""Version of the moments' construction; part of the cache key, so a change never reuses a
file made the old way."""
SHIPPED_MOMENTS = Path(__file__).with_name("moments")
"""Moments shipped with fntk (package data), looked up by the same key as the cache: those of
the default joint map on the bundled SevenNet-0 (CPU, float32), so that a first run skips the
reference pass (~65 CPU s for ``builtin-v2``). ``scripts/ship_reference_moments.py`` writes
them; a test checks that the default's file is there and (slow) that it equals a fresh
computation."""

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

    The linear algebra runs on one thread, so the basis is bit-identical in every process
    (a Dask worker and the client) whatever their thread counts."""
    gram = reference_gram(backend, readout, options)
    with torch_threads(1):
        root = readout_root(readout)
        return root @ _directions(root @ gram @ root, readout, root, options)


def reference_gram(
    backend: ModelBackend, readout: LinearReadout, options: NTKOptions
) -> torch.Tensor:
    """``sum X^T X`` over the reference set's hidden rows as the map weighs them, float64 CPU,
    (F, F): the energy moment when the map has energy rows, plus lambda^2 times the force
    moment in the joint map (the force moment alone in the force map); see
    :func:`reference_moments`."""
    energy, force = reference_moments(backend, readout, options)
    gram = energy.clone() if has_energy_rows(options.name) else torch.zeros_like(energy)
    if force is not None:
        weight = options.force_weight if isinstance(options, JointNTKOptions) else 1.0
        gram += weight**2 * force
    return gram


def reference_moments(
    backend: ModelBackend, readout: LinearReadout, options: NTKOptions
) -> Moments:
    """Second moments of the reference set's hidden rows, float64 CPU, each (F, F).

    Returns
    -------
    energy : Tensor
        ``sum s s^T`` over the reference structures' pooled hidden features s (each divided
        by its atom count with ``per_atom``). Exact.
    force : Tensor or None
        Estimate of ``sum_x J_x J_x^T`` (J = ds/dr, F x 3N) from :data:`REFERENCE_TANGENTS`
        forward-mode passes along seeded Gaussian position tangents delta, ``E[(J delta)(J
        delta)^T] = J J^T``: a few passes for the whole set instead of 3 N_max exact ones.
        ``None`` for maps without force rows.

    Cached per (weights, device, dtype, seed, reference, ``per_atom``), in memory and as a file
    in :func:`reference_cache_dir`, and looked up first among the :data:`SHIPPED_MOMENTS`; a
    file is used only when its key (:func:`moments_key`) matches exactly.
    """
    key = moments_key(backend, options)
    if key not in _MOMENTS_CACHE:
        path = _cache_file(key)
        moments = _read_moments(SHIPPED_MOMENTS / f"{key}.npz")
        if moments is None and path is not None:
            moments = _read_moments(path)
        if moments is None:
            moments = _compute_moments(backend, readout, options)
            if path is not None:
                with contextlib.suppress(OSError):  # an unwritable folder only costs the cache
                    save_moments(path, moments)
        _MOMENTS_CACHE[key] = moments
        while len(_MOMENTS_CACHE) > _MOMENTS_CACHE_SIZE:
            _MOMENTS_CACHE.popitem(last=False)
    return _MOMENTS_CACHE[key]


def reference_cache_dir() -> Path | None:
    """Folder of the cached reference moments: ``$FNTK_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/fntk``, else ``~/.cache/fntk``; ``None`` (no disk cache) when
    ``FNTK_CACHE_DIR`` is set to an empty string."""
    chosen = os.environ.get(CACHE_DIR_VARIABLE)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fntk"


def _compute_moments(backend: ModelBackend, readout: LinearReadout, options: NTKOptions) -> Moments:
    n = readout.n_hidden
    energy = torch.zeros(n, n, dtype=torch.float64)
    force = torch.zeros(n, n, dtype=torch.float64) if has_force_rows(options.name) else None
    # One fixed batch (not the options' batching), so the basis does not depend on it.
    graph = backend.build_graph(builtin_reference(options.seed, options.reference))
    generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence(options.seed, spawn_key=(0xBA515,)).generate_state(1)[0])
    )
    passes = REFERENCE_TANGENTS if force is not None else 1
    tangents = torch.randn(passes, *graph.positions.shape, generator=generator, dtype=torch.float64)
    group = max(1, TANGENT_ATOMS // graph.positions.shape[0])
    with reproducible_execution():
        for first in range(0, passes, group):
            pooled, derivatives = pooled_jvps(
                backend, graph, readout, tangents[first : first + group].to(graph.positions)
            )
            if first == 0:
                pooled = pooled.double().cpu()
                if getattr(options, "per_atom", False):
                    pooled = pooled / graph.n_atoms.cpu().double()[:, None]
                energy += pooled.T @ pooled
            if force is not None:
                for derivative in derivatives.double().cpu():
                    force += (derivative.T @ derivative) / passes
    return energy, force


def moments_key(backend: ModelBackend, options: NTKOptions) -> str:
    """SHA-256 of everything the reference moments depend on: the weights, device type,
    dtype, seed, reference set, ``per_atom``, whether the map has force rows, the tangent
    count and the construction's version. Names the cached and shipped files."""
    fields = {
        "format": _MOMENTS_FORMAT,
        "weights": _weights_hash(backend),
        "device": torch.device(backend.device).type,
        "dtype": options.dtype,
        "seed": options.seed,
        "reference": options.reference,
        "per_atom": bool(getattr(options, "per_atom", False)),
        "force": has_force_rows(options.name),
        "tangents": REFERENCE_TANGENTS,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _cache_file(key: str) -> Path | None:
    folder = reference_cache_dir()
    return None if folder is None else folder / "reference-moments" / f"{key}.npz"


def _read_moments(path: Path) -> Moments | None:
    """The moments in ``path``, or ``None`` when it is missing or unreadable (recomputed)."""
    try:
        with np.load(path) as stored:
            energy = torch.from_numpy(stored["energy"].astype(np.float64))
            force = (
                torch.from_numpy(stored["force"].astype(np.float64)) if "force" in stored else None
            )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return energy, force


def save_moments(path: Path, moments: Moments) -> None:
    """Write ``moments`` to ``path`` (an npz file, atomically, 0644), creating its folder."""
    energy, force = moments
    arrays = {"energy": energy.numpy()}
    if force is not None:
        arrays["force"] = force.numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_npz(path, **arrays)


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
