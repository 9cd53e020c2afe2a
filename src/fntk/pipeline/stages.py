"""Stages of the distributed pool pass, as plain functions over chunks (no Dask here).

:mod:`fntk.parallel` maps :func:`score_pool_chunk` over the pool chunks on workers and merges
their results on the client with :class:`ShortlistMerge`; the batch selector then runs on the
merged shortlist on the client (:meth:`fntk.select.Selector.select`). Each pool chunk is scored
by :func:`fntk.select.build_shortlist` itself, so a scored chunk ranks exactly as it would in
the single-process stream, and the merge keeps the same top ``M`` under the same tie rule
(:mod:`fntk.select.ties`), whatever the completion order. A chunk ships back the blocks only of
the structures that beat the ``M``-th best score known when it was sent (the *bar*): the final
shortlist is always among them, because the bar only rises, while the client holds ``O(M)``
blocks and a few numbers per chunk, never the pool's features.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from fntk.chunk import FeatureChunk
from fntk.features.options import FeatureMapOptions
from fntk.features.registry import compute_features
from fntk.features.store import FeatureStore
from fntk.io.read import StructureChunk
from fntk.models import ModelBackend
from fntk.pipeline.featurize import StoreChunk, stored_features
from fntk.report.plots import structure_summaries
from fntk.select import (
    Precision,
    SelectOptions,
    Selector,
    build_shortlist,
    factorize_precision,
    uniform_shortlist_key,
)
from fntk.select.shortlist import uniform_keys
from fntk.select.ties import tie_keys

Bar = tuple[float, int]
"""``(tie key, source index)`` of the ``M``-th best structure so far."""


def chunk_features(
    backend: ModelBackend,
    options: FeatureMapOptions,
    store: FeatureStore | None,
    where: StoreChunk,
    chunk: StructureChunk,
) -> tuple[FeatureChunk, bool]:
    """Features of ``chunk`` (running source indices), through ``store`` when one is given.

    Returns the features (source indices as in ``chunk``) and whether the model ran.
    """
    if store is None:
        return compute_features(backend, chunk.structures, options, chunk.global_indices), True
    local = StructureChunk(
        chunk.structures,
        chunk.source_files,
        chunk.frame_indices,
        chunk.global_indices - where.offset,
    )
    features, computed = stored_features(backend, options, store, where, local)
    return (
        FeatureChunk(
            values=features.values,
            offsets=features.offsets,
            source_index=features.source_index + where.offset,
            n_atoms=features.n_atoms,
            row_kind=features.row_kind,
        ),
        computed,
    )


def scoring_precision(selector: Selector, n_features: int) -> Precision:
    """The precision the pool is scored against: the fitted one, or ``sigma^2 I`` without a
    training set (what :meth:`~fntk.select.Selector.select` builds in that case)."""
    if selector.precision_ is not None:
        return selector.precision_
    options = selector.options
    return factorize_precision(
        np.zeros((n_features, n_features)),
        0,
        0,
        sigma=options.sigma,
        relative_noise=options.relative_noise,
        jitter_tries=options.jitter_tries,
    )


def shortlist_random_key(options: SelectOptions, seed: int) -> int | None:
    """The uniform-sample shortlist key :meth:`~fntk.select.Selector.select` draws from
    ``seed`` (None for the selectors that shortlist by posterior variance)."""
    return uniform_shortlist_key(options, np.random.default_rng(np.random.SeedSequence(seed)))


@dataclass(frozen=True)
class ScoredChunk:
    """What a scored pool chunk sends back to the client.

    Attributes
    ----------
    source_index, score : ndarray, shape (n_kept,)
        Every scored structure and its ranking value: the shortlist score, or for a
        uniform-sample shortlist its uniform key (:func:`fntk.select.shortlist.uniform_keys`).
    candidates : FeatureChunk or None
        Blocks of the structures that beat the bar the chunk was sent with.
    summaries : ndarray, shape (n_sampled, n_features)
        Plot summaries of the structures asked for (:func:`structure_summaries`).
    computed : bool
        Whether the model ran (False: features read back from the store).
    feature_s, scoring_s : float
        Seconds spent on the features and on the scoring.
    """

    source_index: np.ndarray
    score: np.ndarray
    candidates: FeatureChunk | None
    summaries: np.ndarray
    computed: bool
    feature_s: float
    scoring_s: float


def score_pool_chunk(
    backend: ModelBackend,
    feature_options: FeatureMapOptions,
    store: FeatureStore | None,
    where: StoreChunk,
    chunk: StructureChunk,
    keep: list[int],
    sampled: list[int],
    precision: Precision,
    select_options: SelectOptions,
    random_key: int | None,
    bar: Bar | None,
) -> ScoredChunk:
    """Features of one pool chunk (computed or read back), then its shortlist scores.

    Parameters
    ----------
    chunk : StructureChunk
        The chunk's supported structures (running source indices).
    keep : list of int
        Positions in ``chunk`` that are scored (not duplicates of the training set or of
        earlier pool structures).
    sampled : list of int
        Positions in ``keep`` whose plot summaries are sent back.
    bar : (float, int) or None
        ``M``-th best ``(tie key, source index)`` known to the client; only blocks that beat it
        are sent back (None: all).
    """
    tick = time.perf_counter()
    features, computed = chunk_features(backend, feature_options, store, where, chunk)
    feature_s = time.perf_counter() - tick
    tick = time.perf_counter()
    scored = score_features(
        features.subset(keep), sampled, precision, select_options, random_key, bar
    )
    return dataclasses.replace(
        scored, computed=computed, feature_s=feature_s, scoring_s=time.perf_counter() - tick
    )


def score_features(
    features: FeatureChunk,
    sampled: list[int],
    precision: Precision,
    select_options: SelectOptions,
    random_key: int | None,
    bar: Bar | None,
) -> ScoredChunk:
    """Shortlist scores of one chunk of pool features, and the blocks that beat ``bar``.

    ``sampled``: positions whose plot summaries are sent back. The scores are those of
    :func:`fntk.select.build_shortlist` on this chunk.
    """
    if not features.n_structures:
        empty = np.zeros(0)
        return ScoredChunk(np.zeros(0, dtype=np.int64), empty, None, np.zeros((0, 0)), True, 0, 0)
    scored = build_shortlist(
        [features],
        precision,
        size=features.n_structures,
        normalization=select_options.normalization,
        energy_weight=select_options.energy_weight,
        force_weight=select_options.force_weight,
        cost_exponent=select_options.cost_exponent,
        random_key=random_key,
    )
    rank = scored.score if random_key is None else uniform_keys(scored.source_index, random_key)
    passing = np.flatnonzero(beats(tie_keys(rank), scored.source_index, bar))
    return ScoredChunk(
        source_index=scored.source_index,
        score=rank,
        candidates=scored.chunk.subset(passing) if len(passing) else None,
        summaries=structure_summaries(features.subset(sampled)),
        computed=True,
        feature_s=0.0,
        scoring_s=0.0,
    )


def beats(key: np.ndarray, source: np.ndarray, bar: Bar | None) -> np.ndarray:
    """Which ``(key, source)`` rank strictly before ``bar`` (higher key, then smaller source)."""
    if bar is None:
        return np.ones(len(key), dtype=bool)
    bar_key, bar_source = bar
    return (key > bar_key) | ((key == bar_key) & (source < bar_source))


class ShortlistMerge:
    """Running top-``size`` over scored chunks, in any order; keeps ``O(size)`` blocks.

    Ranks by the tie key of the score, then the smaller source index, as
    :func:`fntk.select.build_shortlist` does, so the kept set does not depend on the order in
    which chunks arrive.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.key = np.zeros(0)
        self.source = np.zeros(0, dtype=np.int64)
        self.pieces: list[FeatureChunk] = []
        self.n_stored = 0

    def bar(self) -> Bar | None:
        """The ``size``-th best ``(key, source)`` so far, or None while fewer were seen."""
        if len(self.key) < self.size:
            return None
        return float(self.key[-1]), int(self.source[-1])

    def offer(self, scored: ScoredChunk) -> None:
        """Merge a chunk's scores and keep its candidate blocks that are still in the top."""
        self.key = np.concatenate([self.key, tie_keys(scored.score)])
        self.source = np.concatenate([self.source, scored.source_index])
        order = np.lexsort((self.source, -self.key))[: self.size]
        self.key, self.source = self.key[order], self.source[order]
        if scored.candidates is not None:
            self.pieces.append(scored.candidates)
            self.n_stored += scored.candidates.n_structures
        if self.n_stored > 2 * self.size:
            self._prune()

    def _prune(self) -> None:
        pieces = []
        for piece in self.pieces:
            inside = np.flatnonzero(np.isin(piece.source_index, self.source))
            if len(inside):
                pieces.append(piece.subset(inside))
        self.pieces = [FeatureChunk.concatenate(pieces)] if pieces else []
        self.n_stored = sum(p.n_structures for p in self.pieces)

    def candidates(self) -> FeatureChunk | None:
        """Blocks of the final top ``size`` (in arrival order), or None when nothing was seen.

        Raises
        ------
        RuntimeError
            A kept structure's block never arrived (a broken bar: a bug).
        """
        self._prune()
        merged = self.pieces[0] if self.pieces else None
        if (0 if merged is None else merged.n_structures) != len(self.source):
            raise RuntimeError("shortlist merge lost candidate blocks")
        return merged
