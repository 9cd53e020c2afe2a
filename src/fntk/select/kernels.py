"""Structure kernels on posterior blocks: invariant to atom count and order, size-consistent.

A structure ``x`` is represented by its posterior block ``B(x)`` (m(x) x d). Two kernels
(DESIGN.md section 4, ``SelectOptions.kernel``):

- ``gram``: the explicit feature map of the normalised posterior Gram
  ``G(x) = B(x)^T B(x) / n(x)`` (d x d), ``k(x, y) = <G(x), G(y)>_F``, where ``n(x)`` follows
  the shortlist's ``normalization``: the row count ``m(x)`` (``per-row``, default), the atom
  count (``per-atom``) or 1 (``total``). ``G`` sums over rows, so permuting or rotating the
  rows (atom order, rigid rotation of force rows) leaves it unchanged, and force rows are never
  summed into one. With ``n(x) = m(x)``, ``tr G(x)`` is the shortlist's per-row posterior
  variance and a structure and its 2x supercell (every force row twice) are the same point;
  without the normalisation (``total``) ``k`` grows with ``m(x) m(y)`` and large structures
  dominate every distance. For one-row blocks ``k(x, y) = (b(x) . b(y))^2 / (n(x) n(y))``: the
  square of bmdal_reg's posterior linear kernel (a monotone map; ``b`` and ``-b`` are the same
  point, as they are for a linear model). The map is ``svec(G)`` (upper triangle, off-diagonal
  entries times ``sqrt 2``, so dot products are Frobenius products), ``d (d + 1) / 2`` numbers
  per structure, built in ``O(m d^2)``; a kernel row against ``M`` structures costs
  ``O(M d^2)`` whatever the atom counts. For ``d >`` :data:`EXACT_GRAM_DIM`, ``G`` is first
  compressed to ``P^T G P`` with ``P`` the top :data:`EXACT_GRAM_DIM` eigenvectors of the
  candidates' summed Gram (their dominant posterior directions), shared by every structure.
- ``linear``: ``k(x, y) = b(x) . b(y)`` for one-row blocks; this is bmdal_reg's linear kernel
  after its posterior transform (``sigma L^{-1} phi``), so LCMD etc. reproduce bmdal_reg there.

Squared distances are ``k(x, x) + k(y, y) - 2 k(x, y)``, clipped at zero.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fntk.errors import CapabilityError
from fntk.select.options import KernelName, Normalization
from fntk.select.precision import PosteriorBlocks

EXACT_GRAM_DIM = 128
"""Largest feature width whose Gram map is kept exact (``d (d + 1) / 2`` numbers per structure);
wider Grams are projected onto this many shared top eigenvectors."""


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


def block_grams(blocks: PosteriorBlocks) -> np.ndarray:
    """Unnormalised Grams ``B(x)^T B(x)`` of every structure, shape (n_structures, d, d)."""
    values = blocks.values
    d = values.shape[1]
    grams = np.zeros((blocks.n_structures, d, d))
    for _, positions, rows in size_groups(blocks.offsets):
        stacked = values[rows]
        grams[positions] = stacked.transpose(0, 2, 1) @ stacked
    return grams


def kernel_normalizer(blocks: PosteriorBlocks, normalization: Normalization) -> np.ndarray:
    """``n(x)`` of every structure (row count, atom count or 1; at least 1), float64."""
    if normalization == "per-row":
        counts = blocks.rows_per_structure
    elif normalization == "per-atom":
        if blocks.n_atoms is None:
            raise ValueError("per-atom kernel normalisation needs the blocks' atom counts")
        counts = blocks.n_atoms
    elif normalization == "total":
        counts = np.ones(blocks.n_structures)
    else:
        raise ValueError(f"unknown normalization {normalization!r}")
    return np.maximum(np.asarray(counts, dtype=np.float64), 1.0)


def gram_basis(blocks: PosteriorBlocks) -> np.ndarray | None:
    """Shared compression basis of the Gram map: ``None`` (exact) for ``d <=``
    :data:`EXACT_GRAM_DIM`, else the top eigenvectors of ``sum_x B(x)^T B(x)`` (d x r)."""
    d = blocks.values.shape[1]
    if d <= EXACT_GRAM_DIM:
        return None
    total = blocks.values.T @ blocks.values
    _, vectors = np.linalg.eigh(total)
    return vectors[:, ::-1][:, :EXACT_GRAM_DIM].copy()


def gram_features(
    blocks: PosteriorBlocks,
    normalization: Normalization,
    basis: np.ndarray | None = None,
    *,
    unit: bool = False,
) -> np.ndarray:
    """Explicit feature map ``svec(G(x))`` of every structure (see the module docstring).

    With ``unit=True``, ``G(x) / tr G(x)`` instead (structures with ``tr G = 0`` stay zero):
    the direction of a structure's posterior, whatever its size.

    Returns
    -------
    ndarray, shape (n_structures, r (r + 1) / 2), float64
        ``r = d``, or the width of ``basis``.
    """
    values = blocks.values if basis is None else blocks.values @ basis
    grams = block_grams(PosteriorBlocks(values, blocks.offsets, blocks.n_atoms))
    if unit:
        traces = np.trace(grams, axis1=1, axis2=2)
        grams /= np.where(traces > 0.0, traces, 1.0)[:, None, None]
    else:
        grams /= kernel_normalizer(blocks, normalization)[:, None, None]
    r = grams.shape[1]
    upper = np.triu_indices(r)
    weights = np.where(upper[0] == upper[1], 1.0, np.sqrt(2.0))
    return grams[:, upper[0], upper[1]] * weights


class StructureKernel:
    """Kernel between structures given by posterior blocks.

    Parameters
    ----------
    blocks : PosteriorBlocks
        The structures this kernel is evaluated on (rows of :meth:`cross`).
    kind : {"linear", "gram"}
        See the module docstring.
    normalization : {"per-row", "per-atom", "total"}
        ``n(x)`` of the Gram map (the shortlist's normalisation).
    basis : ndarray or None
        Compression basis of the Gram map shared with the kernel this one is crossed with
        (:func:`gram_basis`); ``None`` computes it from ``blocks``.
    unit : bool
        Scale every structure's map to unit size: ``G(x) / tr G(x)`` (gram), ``b(x) / |b(x)|``
        (linear), so that only the direction of its posterior counts.

    Raises
    ------
    CapabilityError
        For ``kind="linear"`` when a block has more than one row.
    """

    def __init__(
        self,
        blocks: PosteriorBlocks,
        kind: KernelName,
        normalization: Normalization = "per-row",
        basis: np.ndarray | None = None,
        unit: bool = False,
    ) -> None:
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
            self.basis = None
            self.vectors = np.zeros((blocks.n_structures, blocks.values.shape[1]))
            self.vectors[counts == 1] = blocks.values
            if unit:
                norms = np.linalg.norm(self.vectors, axis=1)
                self.vectors /= np.where(norms > 0.0, norms, 1.0)[:, None]
        else:
            self.basis = gram_basis(blocks) if basis is None else basis
            self.vectors = gram_features(blocks, normalization, self.basis, unit=unit)

    @property
    def n_structures(self) -> int:
        return self.blocks.n_structures

    def diag(self) -> np.ndarray:
        """``k(x, x)`` of every structure, shape (n_structures,), float64."""
        return np.einsum("ij,ij->i", self.vectors, self.vectors)

    def cross(self, other: StructureKernel, positions: np.ndarray) -> np.ndarray:
        """``k(x, y)`` for every structure ``x`` here and ``y = other[positions]``.

        Parameters
        ----------
        other : StructureKernel
            Of the same kind (and the same compression basis).
        positions : ndarray, shape (k,), int64

        Returns
        -------
        ndarray, shape (n_structures, k), float64
        """
        return self.vectors @ other.vectors[positions].T


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
