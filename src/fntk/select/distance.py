"""Distance-based selectors: lcmd, maxdist and kmeans++ (after bmdal_reg); the default selector
is ``coverage`` (:data:`fntk.select.options.SelectOptions`).

All three keep, for every candidate, the squared distance to its nearest centre under the
structure kernel of :mod:`fntk.select.kernels`. Centres are the training structures (TP mode,
added before the first pick, in training order) and the picks so far. In P mode, or with an
empty training set, the first pick is the candidate with the largest ``k(x, x) / c(N)`` (the
squared distance to the zero function), as in bmdal_reg; kmeans++ draws it uniformly instead.

Cost-aware acquisition divides the per-candidate squared distance by ``c(N)`` when choosing a
point; lcmd still chooses the cluster by its plain sum of squared distances.
"""

from __future__ import annotations

import numpy as np

from fntk.select.base import (
    GreedySelector,
    SelectionProblem,
    argmax_with_ties,
)
from fntk.select.kernels import StructureKernel, squared_distances
from fntk.select.registry import register_selector
from fntk.select.ties import tie_keys

_MAX_KERNEL_ELEMENTS = 2**24
"""Bound on candidates x centres per kernel batch (128 MiB of float64)."""


class _NearestCentre:
    """Squared distance of each candidate to its nearest centre, and that centre's number.

    Centres are numbered in the order they are added (training structures first). A candidate
    moves to a new centre only if it is strictly closer, so equal distances keep the earlier
    centre, as in bmdal_reg.
    """

    def __init__(self, problem: SelectionProblem) -> None:
        self.kernel = StructureKernel(problem.candidates, problem.kernel, problem.normalization)
        self.diag = self.kernel.diag()
        self.min_sq = np.full(problem.n_candidates, np.inf)
        self.closest = np.full(problem.n_candidates, -1, dtype=np.int64)
        self.n_centres = 0
        self.scale = float(self.diag.max(initial=0.0))
        if problem.train is not None and problem.train.n_structures:
            train = StructureKernel(
                problem.train, problem.kernel, problem.normalization, basis=self.kernel.basis
            )
            train_diag = train.diag()
            self.scale = max(self.scale, float(train_diag.max()))
            step = max(1, _MAX_KERNEL_ELEMENTS // max(1, problem.n_candidates))
            for start in range(0, train.n_structures, step):
                batch = np.arange(start, min(start + step, train.n_structures))
                kernel = self.kernel.cross(train, batch)
                self._update(squared_distances(kernel, self.diag, train_diag[batch]))

    def _update(self, sq_dists: np.ndarray) -> None:
        """Add centres ``n_centres, n_centres + 1, ...`` given distances (n_candidates, k)."""
        nearest = np.argmin(sq_dists, axis=1)
        best = sq_dists[np.arange(len(nearest)), nearest]
        closer = best < self.min_sq
        self.closest[closer] = self.n_centres + nearest[closer]
        self.min_sq[closer] = best[closer]
        self.n_centres += sq_dists.shape[1]

    def add_candidate(self, position: int) -> None:
        """Make candidate ``position`` a centre."""
        batch = np.array([position])
        kernel = self.kernel.cross(self.kernel, batch)
        self._update(squared_distances(kernel, self.diag, self.diag[batch]))


class _DistanceSelector(GreedySelector):
    """Shared state of the distance-based selectors."""

    uses_train_centres = True

    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        self.problem = problem
        self.rng = rng
        self.centres = _NearestCentre(problem)
        self.point_scale = float((self.centres.diag / problem.cost).max(initial=0.0))

    def _first_pick(self, selected: np.ndarray) -> tuple[int, float]:
        """Largest ``k(x, x) / c(N)``: the first pick when there is no centre yet."""
        scores = self.centres.diag / self.problem.cost
        position = argmax_with_ties(scores, ~selected, self.point_scale, self.problem.source_index)
        return position, float(scores[position])

    def _farthest(self, eligible: np.ndarray) -> tuple[int, float]:
        """Eligible candidate with the largest squared distance to its centre over cost."""
        scores = self.centres.min_sq / self.problem.cost
        position = argmax_with_ties(scores, eligible, self.point_scale, self.problem.source_index)
        return position, float(scores[position])

    def add(self, position: int) -> None:
        self.centres.add_candidate(position)


@register_selector("maxdist", help="greedy k-centre: the candidate farthest from all centres")
class MaxDist(_DistanceSelector):
    """Greedy k-centre: pick the candidate farthest from all centres (bmdal_reg ``maxdist``)."""

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        if self.centres.n_centres == 0:
            return self._first_pick(selected)
        return self._farthest(~selected)


@register_selector("lcmd", help="largest cluster, max distance (Holzmüller et al. 2023)")
class LargestClusterMaxDist(_DistanceSelector):
    """LCMD (Holzmüller et al., JMLR 2023; bmdal_reg ``LargestClusterMaxDistSelectionMethod``).

    Each candidate belongs to the cluster of its nearest centre. Take the cluster with the
    largest sum of its members' squared distances (selected members included, as in
    bmdal_reg; tied clusters are merged) and pick its unselected member farthest from its
    centre. If that cluster has no unselected member left (all remaining distances are zero),
    pick the farthest unselected candidate overall.
    """

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        centres = self.centres
        if centres.n_centres == 0:
            return self._first_pick(selected)
        sums = np.bincount(centres.closest, weights=centres.min_sq, minlength=centres.n_centres)
        keys = tie_keys(sums, centres.scale)
        eligible = (keys == keys.max())[centres.closest] & ~selected
        if not eligible.any():
            eligible = ~selected
        return self._farthest(eligible)


@register_selector(
    "kmeans++", help="k-means++ seeding: sampled by squared distance to the nearest centre"
)
class KMeansPlusPlus(_DistanceSelector):
    """k-means++ seeding: sample with probability proportional to the squared distance.

    Sampling is by inverse CDF over the candidates in increasing source-index order, with one
    ``rng.random()`` draw per pick; the first pick in P mode is ``rng.integers(n_candidates)``.
    If every unselected candidate has zero distance, the pick is uniform over them (recorded).
    """

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        if self.centres.n_centres == 0:
            position = int(self.rng.integers(self.problem.n_candidates))
            return position, float(self.centres.diag[position] / self.problem.cost[position])
        weights = np.where(selected, 0.0, self.centres.min_sq / self.problem.cost)
        cumulative = np.cumsum(weights)
        if cumulative[-1] <= 0.0:
            if not self.status:
                self.status.append(
                    "kmeans++: all remaining candidates coincide with a centre; "
                    "picking uniformly among them"
                )
            position = int(self.rng.choice(np.flatnonzero(~selected)))
        else:
            position = int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], "right"))
        return position, float(weights[position])
