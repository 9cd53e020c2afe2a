"""Ragged feature chunks: the contract between feature maps, the store and the selectors.

This module is the torch-free core of the package: it needs NumPy only, so the selection engine
(:mod:`fntk.select`), which sees arrays only, can be imported without torch or ASE.

A chunk holds the feature blocks Phi(x) of several structures stacked row-wise
(DESIGN.md section 1). Structure ``j`` owns rows ``offsets[j]:offsets[j + 1]`` of ``values``.
Each row is tagged as an energy row or a force row, because the precision matrix weights
them differently and distance-based selectors must never sum force rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ENERGY_ROW = np.int8(0)
FORCE_ROW = np.int8(1)
CHUNK_FIELDS = ("values", "offsets", "source_index", "n_atoms", "row_kind")
"""Array fields of a :class:`FeatureChunk`, in the order they are stored."""


@dataclass(frozen=True)
class FeatureChunk:
    """Feature blocks of a chunk of structures.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_features), float32 or float64
        All rows of all blocks, stacked.
    offsets : ndarray, shape (n_structures + 1,), int64
        Structure ``j`` owns ``values[offsets[j]:offsets[j + 1]]``; ``offsets[0] == 0``.
    source_index : ndarray, shape (n_structures,), int64
        Global index of each structure in its pool (stable across chunkings; ties break on it).
    n_atoms : ndarray, shape (n_structures,), int64
        Atom count of each structure.
    row_kind : ndarray, shape (n_rows,), int8
        ``ENERGY_ROW`` (0) or ``FORCE_ROW`` (1) for every row.
    """

    values: np.ndarray
    offsets: np.ndarray
    source_index: np.ndarray
    n_atoms: np.ndarray
    row_kind: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.source_index)
        if self.values.ndim != 2:
            raise ValueError(f"values must be 2-D, got shape {self.values.shape}")
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0:
            raise ValueError("offsets must have n_structures + 1 entries starting at 0")
        if self.offsets[-1] != self.values.shape[0] or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must be non-decreasing and end at n_rows")
        if self.n_atoms.shape != (n,) or self.row_kind.shape != (self.values.shape[0],):
            raise ValueError("n_atoms must have one entry per structure and row_kind one per row")

    @property
    def n_structures(self) -> int:
        return len(self.source_index)

    @property
    def n_rows(self) -> int:
        return self.values.shape[0]

    @property
    def n_features(self) -> int:
        return self.values.shape[1]

    @property
    def rows_per_structure(self) -> np.ndarray:
        """Number of rows m(x) of each block, shape (n_structures,)."""
        return np.diff(self.offsets)

    def block(self, j: int) -> np.ndarray:
        """Block Phi of structure ``j`` (position within the chunk), shape (m, n_features)."""
        return self.values[self.offsets[j] : self.offsets[j + 1]]

    def block_kinds(self, j: int) -> np.ndarray:
        """Row kinds of structure ``j``'s block, shape (m,)."""
        return self.row_kind[self.offsets[j] : self.offsets[j + 1]]

    def subset(self, positions: Sequence[int] | np.ndarray) -> FeatureChunk:
        """Chunk holding only the structures at ``positions`` (in that order)."""
        positions = np.asarray(positions, dtype=np.int64)
        starts, stops = self.offsets[positions], self.offsets[positions + 1]
        rows = (
            np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
            if len(positions)
            else np.zeros(0, dtype=np.int64)
        )
        return FeatureChunk(
            values=self.values[rows],
            offsets=np.concatenate([[0], np.cumsum(stops - starts)]).astype(np.int64),
            source_index=self.source_index[positions],
            n_atoms=self.n_atoms[positions],
            row_kind=self.row_kind[rows],
        )

    @staticmethod
    def concatenate(chunks: Sequence[FeatureChunk]) -> FeatureChunk:
        """Stack chunks (structures in the given order); at least one chunk is needed."""
        if not chunks:
            raise ValueError("concatenate needs at least one chunk")
        sizes = [c.n_rows for c in chunks]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        offsets = np.concatenate(
            [[0]] + [c.offsets[1:] + s for c, s in zip(chunks, starts)]
        ).astype(np.int64)
        return FeatureChunk(
            values=np.concatenate([c.values for c in chunks]),
            offsets=offsets,
            source_index=np.concatenate([c.source_index for c in chunks]).astype(np.int64),
            n_atoms=np.concatenate([c.n_atoms for c in chunks]).astype(np.int64),
            row_kind=np.concatenate([c.row_kind for c in chunks]).astype(np.int8),
        )

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The arrays keyed ``prefix + field`` (for ``np.savez``); see :meth:`from_arrays`."""
        return {prefix + name: getattr(self, name) for name in CHUNK_FIELDS}

    @staticmethod
    def from_arrays(arrays: Mapping[str, np.ndarray], prefix: str = "") -> FeatureChunk:
        """The chunk that :meth:`to_arrays` wrote (``arrays``: a dict or an open ``NpzFile``)."""
        return FeatureChunk(**{name: np.asarray(arrays[prefix + name]) for name in CHUNK_FIELDS})

    def split(self, chunk_size: int) -> list[FeatureChunk]:
        """Split into consecutive chunks of at most ``chunk_size`` structures."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return [
            self.subset(np.arange(i, min(i + chunk_size, self.n_structures)))
            for i in range(0, self.n_structures, chunk_size)
        ]
