"""Wider candidate sets of the covering selectors, built in the one pass over the pool.

``coverage`` takes its candidates and the structures it must cover from one seeded uniform
sample of ``M`` pool structures. The pool pass can keep more than one top-``M`` set, each under
its own ranking (one :class:`~fntk.select.api.ChunkScorer` and one
:class:`~fntk.select.shortlist.ShortlistMerge` per ranking), in time linear in the pool and
memory ``O(M)`` blocks:

- ``variance_candidates`` selectors (``coverage-density``) add the top ``M`` by shortlist score
  (posterior variance over cost), so a structure the uniform sample missed can be picked where
  it covers the sample best;
- with target structures (``--target``: unlabelled structures like those the user will
  simulate) the cover set is a seeded uniform sample of ``M`` of them instead of the pool
  sample, and the ``M`` pool structures nearest to that sample (:class:`Nearness`: smallest
  unit-kernel distance to their nearest target, the coverage metric) join the candidates.

Every ranking depends on the structure alone, so the sets, and the picks, do not depend on the
chunking. :func:`union_shortlist` joins the sets into the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fntk.chunk import FeatureChunk
from fntk.select.kernels import StructureKernel, gram_basis
from fntk.select.options import KernelName, Normalization
from fntk.select.precision import Precision, posterior_blocks
from fntk.select.shortlist import Shortlist

MAX_DISTANCE_ELEMENTS = 2**22
"""Bound on pool structures x target structures per distance batch (32 MiB of float64)."""


@dataclass(frozen=True)
class Nearness:
    """Ranking of pool structures by closeness to a target sample: minus the squared unit-kernel
    distance (:class:`~fntk.select.kernels.StructureKernel`, ``unit=True``) to the nearest
    target structure. Plain arrays, so an engine may ship it to workers.

    Attributes
    ----------
    targets : ndarray, shape (n_targets, k), float64
        Unit kernel maps of the target sample.
    basis : ndarray or None
        Gram compression basis (the target sample's; ``None``: exact).
    kernel : {"linear", "gram"}
    normalization : {"total", "per-row", "per-atom"}
    """

    targets: np.ndarray
    basis: np.ndarray | None
    kernel: KernelName
    normalization: Normalization

    @classmethod
    def of(
        cls,
        target: Shortlist,
        precision: Precision,
        weights: tuple[float, float],
        kernel: KernelName,
        normalization: Normalization,
    ) -> Nearness:
        """The nearness to ``target`` (a sample of target structures) under ``precision``."""
        blocks = posterior_blocks(target.chunk, precision, *weights)
        basis = gram_basis(blocks) if kernel == "gram" else None
        targets = StructureKernel(blocks, kernel, normalization, basis=basis, unit=True).vectors
        return cls(targets, basis, kernel, normalization)

    def __call__(
        self, chunk: FeatureChunk, precision: Precision, weights: tuple[float, float]
    ) -> np.ndarray:
        """Minus the squared distance of each structure of ``chunk`` to its nearest target,
        shape (n_structures,), float64."""
        vectors = StructureKernel(
            posterior_blocks(chunk, precision, *weights),
            self.kernel,
            self.normalization,
            basis=self.basis,
            unit=True,
        ).vectors
        target_sq = np.einsum("ij,ij->i", self.targets, self.targets)
        nearest = np.empty(len(vectors))
        step = max(1, MAX_DISTANCE_ELEMENTS // max(1, len(self.targets)))
        for start in range(0, len(vectors), step):
            part = vectors[start : start + step]
            cross = part @ self.targets.T
            sq = np.einsum("ij,ij->i", part, part)[:, None] + target_sq - 2.0 * cross
            nearest[start : start + step] = np.maximum(sq, 0.0).min(axis=1)
        return -nearest


def union_shortlist(shortlists: Sequence[Shortlist]) -> Shortlist:
    """The structures of every shortlist, each once (first occurrence kept), by source index;
    ``n_pool`` of the first, ``max_rows`` the largest."""
    if len(shortlists) == 1:
        return shortlists[0]
    chunk = FeatureChunk.concatenate([s.chunk for s in shortlists])
    pv = np.concatenate([s.posterior_variance for s in shortlists])
    score = np.concatenate([s.score for s in shortlists])
    _, first = np.unique(chunk.source_index, return_index=True)
    return Shortlist(
        chunk=chunk.subset(first),
        posterior_variance=pv[first],
        score=score[first],
        n_pool=shortlists[0].n_pool,
        max_rows=max(s.max_rows for s in shortlists),
    )
