"""Stages of the pool pass of ``fntk select``, as plain functions over chunks (no engine here).

The pass is read -> features -> score -> merge. The client reads the structure files in chunks
(:meth:`~fntk.pipeline.featurize.ChunkFeaturizer.stored_chunks`); an engine
(:mod:`fntk.engine`: one process, or Dask workers through :mod:`fntk.parallel`) maps
:func:`feature_stage` (training set) or :func:`pool_stage` (pool: features, then the shortlist
scores of :meth:`fntk.select.Selector.pool_scorers`, one ranking or more) over those chunks; the
client merges the scored chunks with one :class:`fntk.select.ShortlistMerge` per ranking and the
batch selector runs on the merged shortlists (:meth:`fntk.select.Selector.select_shortlists`).
Both engines run the same stages on the same chunks, so their picks and scores are the same. A
pool chunk carries each merge's bar at the time it was handed out and returns the blocks only of
the structures that beat it: the final shortlists are always among them (a bar only rises),
while the client holds ``O(M)`` blocks, never the pool's features. A chunk may also send back
the whole blocks of a few structures (``PoolTask.kept``: the stopping signal's pool sample), so
that nothing is featurised twice.
"""

from __future__ import annotations

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
from fntk.select import ChunkScorer, ChunkScores
from fntk.select.shortlist import Bar


@dataclass(frozen=True)
class FeatureTask:
    """One chunk to featurise: its supported structures (running source indices) and its
    place in the feature store."""

    chunk: StructureChunk
    where: StoreChunk


@dataclass(frozen=True)
class Featured:
    """Features of a :class:`FeatureTask`, whether the model ran, and the seconds it took."""

    features: FeatureChunk
    computed: bool
    feature_s: float


def feature_stage(
    backend: ModelBackend,
    task: FeatureTask,
    *,
    options: FeatureMapOptions,
    store: FeatureStore | None,
) -> Featured:
    """Features of ``task.chunk`` (source indices as in the chunk), through ``store`` when one
    is given."""
    tick = time.perf_counter()
    chunk, where = task.chunk, task.where
    if store is None:
        features = compute_features(backend, chunk.structures, options, chunk.global_indices)
        return Featured(features, True, time.perf_counter() - tick)
    local = StructureChunk(
        chunk.structures,
        chunk.source_files,
        chunk.frame_indices,
        chunk.global_indices - where.offset,
    )
    features, computed = stored_features(backend, options, store, where, local)
    shifted = FeatureChunk(
        values=features.values,
        offsets=features.offsets,
        source_index=features.source_index + where.offset,
        n_atoms=features.n_atoms,
        row_kind=features.row_kind,
    )
    return Featured(shifted, computed, time.perf_counter() - tick)


@dataclass(frozen=True)
class PoolTask:
    """One pool chunk to featurise and score.

    Attributes
    ----------
    chunk : StructureChunk
        The chunk's supported structures (running source indices).
    where : StoreChunk
    keep : list of int
        Positions in ``chunk`` that are scored (not copies of training structures or repeats
        of earlier pool structures).
    sampled : list of int
        Positions in ``keep`` whose plot summaries are sent back.
    bars : tuple of ((float, int) or None)
        Per ranking, the merge's ``M``-th best ``(tie key, source index)`` when the chunk was
        handed out; only blocks that beat it are sent back (None: all).
    n_read : int
        Structures read for this chunk (supported or not), for progress.
    kept : list of int
        Positions in ``keep`` whose blocks are sent back whole.
    """

    chunk: StructureChunk
    where: StoreChunk
    keep: list[int]
    sampled: list[int]
    bars: tuple[Bar | None, ...]
    n_read: int
    kept: list[int]


@dataclass(frozen=True)
class ScoredPoolChunk:
    """What :func:`pool_stage` sends back: the chunk's scores per ranking cut at the task's
    bars, the plot summaries of the sampled structures, the kept blocks and the task's
    bookkeeping."""

    scores: tuple[ChunkScores, ...]
    summaries: np.ndarray
    kept: FeatureChunk
    computed: bool
    feature_s: float
    scoring_s: float
    n_read: int


def pool_stage(
    backend: ModelBackend,
    task: PoolTask,
    *,
    options: FeatureMapOptions,
    store: FeatureStore | None,
    scorers: tuple[ChunkScorer, ...],
) -> ScoredPoolChunk:
    """Features of one pool chunk (computed or read back), then its scores under each
    ranking."""
    featured = feature_stage(
        backend, FeatureTask(task.chunk, task.where), options=options, store=store
    )
    tick = time.perf_counter()
    features = featured.features.subset(task.keep)
    scores = tuple(scorer(features).beating(bar) for scorer, bar in zip(scorers, task.bars))
    summaries = (
        structure_summaries(features.subset(task.sampled)) if task.keep else np.zeros((0, 0))
    )
    return ScoredPoolChunk(
        scores=scores,
        summaries=summaries,
        kept=features.subset(task.kept),
        computed=featured.computed,
        feature_s=featured.feature_s,
        scoring_s=time.perf_counter() - tick,
        n_read=task.n_read,
    )
