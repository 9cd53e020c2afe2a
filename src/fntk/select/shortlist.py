"""Streamed posterior-variance shortlist: the top ``M`` pool structures, one chunk at a time.

For each pool chunk the posterior variance ``PV(x) = sigma^2 tr(Phi A^{-1} Phi^T)`` of every
block is one triangular solve (DESIGN.md section 3); it is normalised (total, per row or per
atom), divided by the labelling cost when cost-aware acquisition is on, and merged into a
running top-``M`` list. Scores are compared under the tie rule of :mod:`fntk.select.ties` (40
significant bits, then the smaller source index), so that rounding noise from different
chunkings does not reorder equal structures. Memory is
``O(d^2 + chunk * m * d + M * m * d)``: only candidates that beat the current ``M``-th score
are copied, and the kept blocks are compacted whenever dropped ones outnumber them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from fntk.chunk import FeatureChunk
from fntk.errors import InputError
from fntk.select.options import Normalization
from fntk.select.precision import Precision, check_chunk, posterior_rows
from fntk.select.ties import tie_keys


@dataclass(frozen=True)
class Shortlist:
    """The ``M`` pool structures with the highest shortlist score (or, with a ``random_key``,
    a uniform sample of ``M``), in rank order.

    Attributes
    ----------
    chunk : FeatureChunk
        Their raw feature blocks, ordered by decreasing score (uniform sample: by decreasing
        random key; ties: increasing source index).
    posterior_variance : ndarray, shape (M,), float64
        Normalised posterior variance (see ``SelectOptions.normalization``).
    score : ndarray, shape (M,), float64
        Shortlist score: ``posterior_variance / c(N)`` with cost-aware acquisition, else equal
        to ``posterior_variance`` (also for a uniform sample, which is not ranked by it).
    n_pool : int
        Number of pool structures streamed.
    max_rows : int
        Largest block (row count) seen in the pool.
    """

    chunk: FeatureChunk
    posterior_variance: np.ndarray
    score: np.ndarray
    n_pool: int
    max_rows: int

    @property
    def source_index(self) -> np.ndarray:
        """Source indices of the shortlisted structures, best first, shape (M,)."""
        return self.chunk.source_index


def labelling_cost(n_atoms: np.ndarray, cost_exponent: float | None) -> np.ndarray:
    """Labelling cost ``c(N) = N**alpha`` of each structure (ones when ``alpha`` is None).

    Returns
    -------
    ndarray, shape (n_structures,), float64
    """
    n_atoms = np.asarray(n_atoms, dtype=np.float64)
    if cost_exponent is None:
        return np.ones_like(n_atoms)
    return n_atoms**cost_exponent


def posterior_variance(
    chunk: FeatureChunk,
    precision: Precision,
    *,
    normalization: Normalization,
    energy_weight: float,
    force_weight: float,
) -> np.ndarray:
    """Normalised posterior variance ``sigma^2 tr(Phi A^{-1} Phi^T)`` of each block of a chunk.

    Parameters
    ----------
    chunk : FeatureChunk
    precision : Precision
    normalization : {"total", "per-row", "per-atom"}
        Divide by nothing, by the row count ``m(x)`` (a zero-row block scores 0) or by the atom
        count ``N``.
    energy_weight, force_weight : float

    Returns
    -------
    ndarray, shape (n_structures,), float64
    """
    rows = posterior_rows(chunk, precision, energy_weight, force_weight)
    owner = np.repeat(np.arange(chunk.n_structures), chunk.rows_per_structure)
    total = np.bincount(
        owner, weights=np.einsum("ij,ij->i", rows, rows), minlength=chunk.n_structures
    )
    if normalization == "per-row":
        m = chunk.rows_per_structure
        return np.divide(total, m, out=np.zeros_like(total), where=m > 0)
    if normalization == "per-atom":
        return total / chunk.n_atoms
    return total


@dataclass(frozen=True)
class ChunkScores:
    """Shortlist scores of one pool chunk (:func:`score_chunk`), or the part of them that
    beats a bar (:meth:`beating`).

    Attributes
    ----------
    chunk : FeatureChunk
        The scored blocks (after :meth:`beating`: only those that beat the bar).
    posterior_variance, score, rank : ndarray, shape (chunk.n_structures,), float64
        Normalised posterior variance, shortlist score, and the value the shortlist ranks by
        (the score, or for a uniform-sample shortlist the structure's uniform key).
    n_scored : int
        Structures scored in the chunk (before :meth:`beating`).
    max_rows : int
        Largest block of the chunk (before :meth:`beating`); 0 for an empty chunk.
    """

    chunk: FeatureChunk
    posterior_variance: np.ndarray
    score: np.ndarray
    rank: np.ndarray
    n_scored: int
    max_rows: int

    def beating(self, bar: Bar | None) -> ChunkScores:
        """The structures that rank strictly before ``bar`` (all when ``bar`` is None)."""
        if bar is None:
            return self
        bar_key, bar_source = bar
        key, source = tie_keys(self.rank), self.chunk.source_index
        keep = np.flatnonzero((key > bar_key) | ((key == bar_key) & (source < bar_source)))
        return ChunkScores(
            self.chunk.subset(keep),
            self.posterior_variance[keep],
            self.score[keep],
            self.rank[keep],
            self.n_scored,
            self.max_rows,
        )


Bar = tuple[float, int]
"""``(tie key, source index)`` of the ``M``-th best structure merged so far."""


def score_chunk(
    chunk: FeatureChunk,
    precision: Precision,
    *,
    normalization: Normalization = "per-row",
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    cost_exponent: float | None = None,
    random_key: int | None = None,
) -> ChunkScores:
    """Shortlist scores of every structure of one pool chunk (see :func:`build_shortlist`).

    Raises
    ------
    InputError
        For a feature-width mismatch, non-finite features, or a structure with no atoms when
        the score divides by the atom count.
    """
    check_chunk(chunk, precision.n_features, "pool")
    if not chunk.n_structures:
        empty = np.zeros(0)
        return ChunkScores(chunk, empty, empty, empty, 0, 0)
    if (normalization == "per-atom" or cost_exponent is not None) and np.any(chunk.n_atoms < 1):
        bad = int(chunk.source_index[np.flatnonzero(chunk.n_atoms < 1)[0]])
        raise InputError(
            f"pool structure with source index {bad} has no atoms, but the score divides "
            "by the atom count",
            hint="drop empty structures or use normalization='per-row' without cost",
        )
    pv = posterior_variance(
        chunk,
        precision,
        normalization=normalization,
        energy_weight=energy_weight,
        force_weight=force_weight,
    )
    score = pv / labelling_cost(chunk.n_atoms, cost_exponent)
    rank = score if random_key is None else uniform_keys(chunk.source_index, random_key)
    return ChunkScores(
        chunk, pv, score, rank, chunk.n_structures, int(chunk.rows_per_structure.max())
    )


class ShortlistMerge:
    """Running top-``M`` over scored chunks, in any order; keeps only the blocks that may still
    be kept.

    Ranks by the tie key of ``rank``, then the smaller source index, so the kept set does not
    depend on the order in which chunks arrive. Chunks may be offered whole or cut at a
    :meth:`bar` known earlier (:meth:`ChunkScores.beating`): the bar only rises, so a
    structure below it can never enter the top ``M``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.pieces: list[FeatureChunk] = []
        self.key = np.zeros(0)
        self.source = np.zeros(0, dtype=np.int64)
        self.pv = np.zeros(0)
        self.score = np.zeros(0)
        self.piece = np.zeros(0, dtype=np.int64)
        self.position = np.zeros(0, dtype=np.int64)
        self.stored = 0
        self.n_pool = 0
        self.max_rows = 0

    def bar(self) -> Bar | None:
        """The ``M``-th best ``(key, source)`` so far, or None while fewer were merged."""
        if len(self.key) < self.size:
            return None
        return float(self.key[-1]), int(self.source[-1])

    def offer(self, scores: ChunkScores) -> None:
        """Merge one chunk's scores; keep its blocks that are in the top ``M`` now."""
        self.n_pool += scores.n_scored
        self.max_rows = max(self.max_rows, scores.max_rows)
        passing = scores.beating(self.bar())
        n_passing = passing.chunk.n_structures
        if not n_passing:
            return
        self.pieces.append(passing.chunk)
        self.stored += n_passing
        self.key = np.concatenate([self.key, tie_keys(passing.rank)])
        self.source = np.concatenate([self.source, passing.chunk.source_index])
        self.pv = np.concatenate([self.pv, passing.posterior_variance])
        self.score = np.concatenate([self.score, passing.score])
        self.piece = np.concatenate([self.piece, np.full(n_passing, len(self.pieces) - 1)])
        self.position = np.concatenate([self.position, np.arange(n_passing)])
        order = np.lexsort((self.source, -self.key))[: self.size]
        for name in ("key", "source", "pv", "score", "piece", "position"):
            setattr(self, name, getattr(self, name)[order])
        if self.stored > 2 * self.size:
            self._compact()

    def _compact(self) -> None:
        """Copy the kept blocks into one piece, in rank order."""
        if len(self.key):
            parts = [
                self.pieces[p].subset(self.position[self.piece == p]) for p in np.unique(self.piece)
            ]
            merged = FeatureChunk.concatenate(parts)
            # ``parts`` are in piece order; map rank order onto positions in ``merged``.
            piece_order = np.lexsort((np.arange(len(self.piece)), self.piece))
            rank_to_merged = np.empty(len(self.piece), dtype=np.int64)
            rank_to_merged[piece_order] = np.arange(len(self.piece))
            self.pieces = [merged.subset(rank_to_merged)]
        else:
            self.pieces = []
        self.piece = np.zeros(len(self.key), dtype=np.int64)
        self.position = np.arange(len(self.key))
        self.stored = len(self.key)

    def shortlist(self, n_features: int) -> Shortlist:
        """The top ``M`` merged so far, in rank order.

        Raises
        ------
        InputError
            A source index occurs twice among them.
        """
        self._compact()
        if self.pieces:
            chunk = self.pieces[0]
        else:
            chunk = FeatureChunk(
                values=np.zeros((0, n_features)),
                offsets=np.zeros(1, dtype=np.int64),
                source_index=np.zeros(0, dtype=np.int64),
                n_atoms=np.zeros(0, dtype=np.int64),
                row_kind=np.zeros(0, dtype=np.int8),
            )
        unique, counts = np.unique(chunk.source_index, return_counts=True)
        if np.any(counts > 1):
            raise InputError(
                f"source index {int(unique[counts > 1][0])} occurs more than once in the pool",
                hint="source indices must identify pool structures uniquely",
            )
        return Shortlist(
            chunk=chunk,
            posterior_variance=self.pv,
            score=self.score,
            n_pool=self.n_pool,
            max_rows=self.max_rows,
        )


def uniform_keys(source_index: np.ndarray, key: int) -> np.ndarray:
    """Pseudo-random numbers in [0, 1), one per source index, from ``key`` (splitmix64 mix).

    They depend only on the index and the key, so a top-M by these numbers is a uniform random
    M-subset of the pool that does not depend on how the pool is chunked.
    """
    with np.errstate(over="ignore"):
        x = np.asarray(source_index).astype(np.uint64) + np.uint64(key) * np.uint64(
            0x9E3779B97F4A7C15
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def uniform_sample(source_index: np.ndarray, key: int, size: int) -> np.ndarray:
    """The ``size`` of ``source_index`` that a uniform-sample shortlist with ``key`` keeps
    (:class:`ShortlistMerge` ranking by :func:`uniform_keys`: the largest tie keys, then the
    smaller index), known before any feature is computed. Sorted, int64."""
    source_index = np.asarray(source_index, dtype=np.int64)
    order = np.lexsort((source_index, -tie_keys(uniform_keys(source_index, key))))
    return np.sort(source_index[order[:size]])


def build_shortlist(
    pool_chunks: Iterable[FeatureChunk],
    precision: Precision,
    *,
    size: int,
    normalization: Normalization = "per-row",
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    cost_exponent: float | None = None,
    random_key: int | None = None,
) -> Shortlist:
    """Stream the pool once and keep the ``size`` structures with the highest score.

    Parameters
    ----------
    pool_chunks : iterable of FeatureChunk
        The pool, in any chunking; consumed once.
    precision : Precision
        Factorised precision of the training set (:func:`fit_precision`).
    size : int
        Shortlist size ``M``.
    normalization, energy_weight, force_weight, cost_exponent
        See :class:`~fntk.select.options.SelectOptions`.
    random_key : int or None
        Rank by a uniform pseudo-random number of each source index (:func:`uniform_keys`)
        instead of the score: the shortlist is then a uniform random sample of the pool, the
        same for any chunking (the ``random`` selector's shortlist).

    Returns
    -------
    Shortlist

    Raises
    ------
    InputError
        For a feature-width mismatch, non-finite features, a structure with no atoms when the
        score divides by the atom count, or a source index that occurs twice in the shortlist.
    """
    merge = ShortlistMerge(size)
    n_features = precision.n_features
    for chunk in pool_chunks:
        merge.offer(
            score_chunk(
                chunk,
                precision,
                normalization=normalization,
                energy_weight=energy_weight,
                force_weight=force_weight,
                cost_exponent=cost_exponent,
                random_key=random_key,
            )
        )
    return merge.shortlist(n_features)
