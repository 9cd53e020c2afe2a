"""Coverage selector: greedy k-median (facility location) over the candidates.

The candidates stand in for the pool distribution. A pick ``x`` is worth the total decrease of
the candidates' distance to their nearest centre, ``gain(x) = sum_j max(0, D_j - d(j, x))``
with ``D_j`` the distance of candidate ``j`` to the nearest centre so far (training structures
in TP mode, then the picks; ``D_j`` starts at ``sqrt(k(j, j))``, the distance to the zero
function, when there is no centre). Distances are the structure kernel's
(:mod:`fntk.select.kernels`) on posterior blocks, not squared: a point far from everything
gains little for covering only itself, so a batch goes where many candidates are poorly
covered instead of to the outliers that distance- and variance-maximising selectors favour.
The objective is monotone submodular, so the greedy is evaluated lazily (Minoux): a stale
upper bound is refreshed only when it tops the queue, and ties follow
:mod:`fntk.select.ties`. Gains are divided by the labelling cost when cost-aware acquisition is
on.

The candidates and the structures to cover are one seeded uniform sample of ``M`` pool
structures. With target structures (``--target``) what must be covered is a uniform sample of
them instead (``SelectionProblem.cover``), and the pool structures nearest to it join the
candidates (:mod:`fntk.select.candidates`); ``coverage-density``
(:mod:`fntk.select.coverage_density`) weighs each structure to cover by its posterior variance.
"""

from __future__ import annotations

import numpy as np

from fntk.select.base import GreedySelector, SelectionProblem, argmax_with_ties
from fntk.select.kernels import StructureKernel
from fntk.select.registry import register_selector


@register_selector(
    "coverage", help="greedy k-median: the pick that most reduces the candidates' distance"
)
class Coverage(GreedySelector):
    """Greedy k-median over the candidates (see the module docstring).

    With a cover set (``SelectionProblem.cover``) the gains are sums over it instead of over
    the candidates, each term times ``SelectionProblem.cover_weight`` when given.
    """

    uses_train_centres = True
    uniform_shortlist = True
    covers = True

    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        self.problem = problem
        kernel = StructureKernel(
            problem.candidates, problem.kernel, problem.normalization, unit=True
        )
        self.vectors = kernel.vectors
        self.cover = (
            self.vectors
            if problem.cover is None
            else StructureKernel(
                problem.cover, problem.kernel, problem.normalization, basis=kernel.basis, unit=True
            ).vectors
        )
        self.weight = problem.cover_weight
        self.nearest = np.linalg.norm(self.cover, axis=1)
        if problem.train is not None and problem.train.n_structures:
            train = StructureKernel(
                problem.train, problem.kernel, problem.normalization, basis=kernel.basis, unit=True
            ).vectors
            for centre in train:
                self.nearest = np.minimum(self.nearest, self._distances(centre))
        self.gains = np.array([self._gain(self.vectors[j]) for j in range(problem.n_candidates)])
        self.gains /= problem.cost
        self.fresh = np.ones(problem.n_candidates, dtype=bool)
        self.scale = float(self.gains.max(initial=0.0)) or 1.0

    def _distances(self, centre: np.ndarray) -> np.ndarray:
        """Kernel distance of every structure to cover to the point with kernel map ``centre``.

        Computed as the norm of the difference of the explicit maps, not from
        ``k(x, x) + k(y, y) - 2 k(x, y)``, whose cancellation near zero would be amplified by
        the square root and make the picks depend on the chunking.
        """
        return np.linalg.norm(self.cover - centre, axis=1)

    def _gain(self, centre: np.ndarray) -> float:
        """Unnormalised gain of a centre at ``centre`` under the current centres."""
        decrease = np.maximum(self.nearest - self._distances(centre), 0.0)
        if self.weight is not None:
            decrease *= self.weight
        return float(decrease.sum())

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        eligible = ~selected
        while True:
            position = argmax_with_ties(self.gains, eligible, self.scale, self.problem.source_index)
            if self.fresh[position]:
                return position, float(self.gains[position])
            gain = self._gain(self.vectors[position])
            self.gains[position] = gain / self.problem.cost[position]
            self.fresh[position] = True

    def add(self, position: int) -> None:
        self.nearest = np.minimum(self.nearest, self._distances(self.vectors[position]))
        self.fresh[:] = False
