"""Seeded Gaussian sketches Omega, generated from the seed alone, column by column.

The NTK maps project parameter gradients with Omega in R^{P x d}, entries N(0, 1/d), so that
``<Omega^T a, Omega^T b>`` estimates ``<a, b>`` with relative error ~ 1/sqrt(d)
(DESIGN.md section 2). Column ``k`` is drawn from its own generator, seeded by
``SeedSequence(seed, spawn_key=(k,))``: every structure, batch size, chunk and worker sees the
same Omega, and no P x d matrix is ever stored (P is 842k for SevenNet-0's full parameter set,
where P x 512 float32 would be 1.7 GB).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _column_generator(seed: int, column: int) -> torch.Generator:
    entropy = np.random.SeedSequence(seed, spawn_key=(column,)).generate_state(2, np.uint64)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(entropy[0] >> np.uint64(1)))
    return generator


def sketch_column(
    seed: int,
    column: int,
    n_rows: int,
    dim: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Column ``column`` of the seeded sketch with ``dim`` columns, shape (n_rows,).

    Entries are N(0, 1/dim). They are drawn in float64 on the CPU, so a column is bit-identical
    whatever the device, dtype or batch; only the final cast depends on ``dtype``.
    """
    if not 0 <= column < dim:
        raise ValueError(f"column {column} is outside a sketch of width {dim}")
    generator = _column_generator(seed, column)
    values = torch.randn(n_rows, generator=generator, dtype=torch.float64)
    return (values / math.sqrt(dim)).to(device=device, dtype=dtype)


def sketch_matrix(
    seed: int,
    n_rows: int,
    dim: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The whole sketch, shape (n_rows, dim); only for small ``n_rows`` (tests, hidden spaces)."""
    return torch.stack(
        [sketch_column(seed, k, n_rows, dim, dtype=dtype, device=device) for k in range(dim)],
        dim=1,
    )
