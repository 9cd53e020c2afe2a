"""Structure kernels on posterior blocks, invariant to the atom count and order.

A structure ``x`` is represented by its posterior block ``B(x)`` (m(x) x d). Two kernels
(DESIGN.md section 4, ``SelectOptions.kernel``):

- ``gram``: ``k(x, y) = ||B(x) B(y)^T||_F^2 = <G(x), G(y)>_F`` with ``G = B^T B``. Permuting or
  rotating the rows of a block (atom order, rigid rotation of force rows) leaves it unchanged,
  and force rows are never summed.
- ``linear``: ``k(x, y) = b(x) . b(y)`` for one-row blocks; this is bmdal_reg's linear kernel
  after its posterior transform (``sigma L^{-1} phi``), so LCMD etc. reproduce bmdal_reg there.

Squared distances are ``k(x, x) + k(y, y) - 2 k(x, y)``, clipped at zero.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse

from fntk.errors import CapabilityError
from fntk.select.options import KernelName
from fntk.select.precision import PosteriorBlocks


def size_groups(offsets: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Group structures by row count, for batched per-block linear algebra.

    Parameters
    ----------
    offsets : ndarray, shape (n_structures + 1,), int64

    Yields
    ------
    m : int
        Row count of the group (groups with ``m == 0`` are skipped).
    positions : ndarray, shape (k,), int64
        Structures of the group.
    rows : ndarray, shape (k, m), int64
        Row indices of each structure's block.
    """
    counts = np.diff(offsets)
    for m in np.unique(counts):
        if m == 0:
            continue
        positions = np.flatnonzero(counts == m)
        yield int(m), positions, offsets[positions][:, None] + np.arange(m)[None, :]


def _segment_matrix(offsets: np.ndarray) -> scipy.sparse.csr_matrix:
    """Sparse (n_structures x n_rows) indicator matrix: row ``j`` sums the rows of block ``j``."""
    n_rows = int(offsets[-1])
    return scipy.sparse.csr_matrix(
        (np.ones(n_rows), np.arange(n_rows), offsets), shape=(len(offsets) - 1, n_rows)
    )


class StructureKernel:
    """Kernel between structures given by posterior blocks.

    Parameters
    ----------
    blocks : PosteriorBlocks
        The structures this kernel is evaluated on (rows of :meth:`cross`).
    kind : {"linear", "gram"}
        See the module docstring.

    Raises
    ------
    CapabilityError
        For ``kind="linear"`` when a block has more than one row.
    """

    def __init__(self, blocks: PosteriorBlocks, kind: KernelName) -> None:
        if kind not in ("linear", "gram"):
            raise ValueError(f"kernel must be 'linear' or 'gram', got {kind!r}")
        self.blocks = blocks
        self.kind = kind
        counts = blocks.rows_per_structure
        if kind == "linear":
            if np.any(counts > 1):
                raise CapabilityError(
                    f"kernel='linear' needs one-row blocks, but a block has {int(counts.max())} "
                    "rows; summing force rows is not invariant (use kernel='gram' or 'auto')"
                )
            self.vectors = np.zeros((blocks.n_structures, blocks.values.shape[1]))
            self.vectors[counts == 1] = blocks.values
        else:
            self.segments = _segment_matrix(blocks.offsets)

    @property
    def n_structures(self) -> int:
        return self.blocks.n_structures

    def diag(self) -> np.ndarray:
        """``k(x, x)`` of every structure, shape (n_structures,), float64."""
        if self.kind == "linear":
            return np.einsum("ij,ij->i", self.vectors, self.vectors)
        out = np.zeros(self.n_structures)
        values = self.blocks.values
        for _, positions, rows in size_groups(self.blocks.offsets):
            stacked = values[rows]
            gram = stacked @ stacked.transpose(0, 2, 1)
            out[positions] = np.einsum("kij,kij->k", gram, gram)
        return out

    def cross(self, other: StructureKernel, positions: np.ndarray) -> np.ndarray:
        """``k(x, y)`` for every structure ``x`` here and ``y = other[positions]``.

        Parameters
        ----------
        other : StructureKernel
            Of the same kind.
        positions : ndarray, shape (k,), int64

        Returns
        -------
        ndarray, shape (n_structures, k), float64
        """
        if self.kind == "linear":
            return self.vectors @ other.vectors[positions].T
        offsets = other.blocks.offsets
        rows = np.concatenate(
            [np.arange(offsets[p], offsets[p + 1]) for p in positions] + [np.zeros(0, int)]
        )
        sub_offsets = np.concatenate([[0], np.cumsum(offsets[positions + 1] - offsets[positions])])
        products = self.blocks.values @ other.blocks.values[rows].T
        summed = self.segments @ (products * products)
        return np.asarray((_segment_matrix(sub_offsets) @ summed.T).T)


def squared_distances(kernel_xy: np.ndarray, diag_x: np.ndarray, diag_y: np.ndarray) -> np.ndarray:
    """Squared feature-space distances from kernel values, clipped at zero.

    Parameters
    ----------
    kernel_xy : ndarray, shape (n_x, n_y)
    diag_x : ndarray, shape (n_x,)
    diag_y : ndarray, shape (n_y,)

    Returns
    -------
    ndarray, shape (n_x, n_y), float64
    """
    return np.maximum(diag_x[:, None] + diag_y[None, :] - 2.0 * kernel_xy, 0.0)
