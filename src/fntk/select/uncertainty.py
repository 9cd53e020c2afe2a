"""Uncertainty-based selectors: maxdiag, maxdet and bait, plus the random baseline.

They work in the whitened coordinates of the current posterior: ``U(x) = B(x) / sigma =
W^{1/2} Phi(x) L_S^{-T}`` with ``L_S L_S^T = A_S``, the precision after the training set and the
picks ``S`` so far, so that ``U(x) U(x)^T = Phi(x) A_S^{-1} Phi(x)^T``. Picking a block ``s``
updates ``A_S += Phi(s)^T W Phi(s)``; in whitened coordinates this is ``U <- U T`` with the
symmetric ``T = (I + U_s^T U_s)^{-1/2} = I - U_s^T K U_s``, a rank-``m(s)`` update costing
``O(n_rows * d * m(s))`` (the block version of bmdal_reg's feature-space maxdet update).

- maxdiag: top ``n`` by shortlist score (normalised posterior variance over cost), no update.
- maxdet: greedy information gain ``logdet(I + U(x) U(x)^T)`` (DESIGN.md section 4), over cost.
- bait: greedy reduction of ``tr(F A_S^{-1})`` with ``F = sum_x Phi(x)^T W Phi(x)`` over the
  shortlist (Ash et al., NeurIPS 2021, in the GP form of bmdal_reg): the gain of ``x`` is
  ``tr((I + U(x) U(x)^T)^{-1} U(x) F_S U(x)^T)``, over cost.
- random: a uniformly random order of the shortlist (``rng.permutation``).
"""

from __future__ import annotations

import numpy as np

from fntk.select.base import GreedySelector, SelectionProblem, argmax_with_ties
from fntk.select.kernels import size_groups
from fntk.select.registry import register_selector


def _whitening_update(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matrices of the rank-m update for a picked whitened block ``U_s`` (m x d).

    Returns
    -------
    inverse : ndarray, shape (m, m)
        ``H = (I + U_s U_s^T)^{-1}``, so that ``(I + U_s^T U_s)^{-1} = I - U_s^T H U_s``.
    root : ndarray, shape (m, m)
        ``K`` with ``(I + U_s^T U_s)^{-1/2} = I - U_s^T K U_s``: on the eigenvalues ``lam`` of
        ``U_s U_s^T``, ``K = 1 / (sqrt(1 + lam) (sqrt(1 + lam) + 1))``.
    """
    eigenvalues, vectors = np.linalg.eigh(block @ block.T)
    root_one_plus = np.sqrt(1.0 + np.maximum(eigenvalues, 0.0))
    inverse = (vectors / root_one_plus**2) @ vectors.T
    root = (vectors / (root_one_plus * (root_one_plus + 1.0))) @ vectors.T
    return inverse, root


class _WhitenedSelector(GreedySelector):
    """Shared whitened state and argmax of the greedy gain-based selectors."""

    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        self.problem = problem
        self.whitened = problem.candidates.values / problem.sigma
        self.gains = self._gains() / problem.cost
        self.scale = float(self.gains.max(initial=0.0))

    def _gains(self) -> np.ndarray:
        """Gain of every candidate under the current posterior, shape (n_candidates,)."""
        raise NotImplementedError

    def _block(self, position: int) -> np.ndarray:
        offsets = self.problem.candidates.offsets
        return self.whitened[offsets[position] : offsets[position + 1]].copy()

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        position = argmax_with_ties(self.gains, ~selected, self.scale, self.problem.source_index)
        return position, float(self.gains[position])


@register_selector("maxdet", help="greedy information gain (block log-determinant)")
class MaxDet(_WhitenedSelector):
    """Greedy block information gain ``logdet(I + Phi(x) A_S^{-1} Phi(x)^T) / c(N)``."""

    def _gains(self) -> np.ndarray:
        out = np.zeros(self.problem.n_candidates)
        for m, positions, rows in size_groups(self.problem.candidates.offsets):
            stacked = self.whitened[rows]
            gram = stacked @ stacked.transpose(0, 2, 1) + np.eye(m)
            out[positions] = np.linalg.slogdet(gram)[1]
        return out

    def add(self, position: int) -> None:
        block = self._block(position)
        if not len(block):
            return
        _, root = _whitening_update(block)
        self.whitened -= (self.whitened @ block.T) @ (root @ block)
        self.gains = self._gains() / self.problem.cost


@register_selector(
    "bait", help="BAIT: greedy reduction of the shortlist's total posterior variance"
)
class Bait(_WhitenedSelector):
    """Greedy reduction of ``tr(F A_S^{-1})`` over cost (``F``: shortlist Fisher matrix)."""

    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        whitened = problem.candidates.values / problem.sigma
        # ``fisher_image`` = U F_S, maintained so that no step needs an O(n_rows d^2) product.
        self.fisher_image = whitened @ (whitened.T @ whitened)
        super().prepare(problem, n, rng)

    def _gains(self) -> np.ndarray:
        out = np.zeros(self.problem.n_candidates)
        for m, positions, rows in size_groups(self.problem.candidates.offsets):
            stacked = self.whitened[rows]
            gram = stacked @ stacked.transpose(0, 2, 1) + np.eye(m)
            quadratic = self.fisher_image[rows] @ stacked.transpose(0, 2, 1)
            out[positions] = np.trace(np.linalg.solve(gram, quadratic), axis1=1, axis2=2)
        return out

    def add(self, position: int) -> None:
        block = self._block(position)
        if not len(block):
            return
        offsets = self.problem.candidates.offsets
        fisher_block = self.fisher_image[offsets[position] : offsets[position + 1]].copy()
        inverse, root = _whitening_update(block)
        products = self.whitened @ block.T
        # U F_S' = U (I + U_s^T U_s)^{-1} F_S T, with F_S' = T F_S T and T the whitening update.
        image = self.fisher_image - products @ (inverse @ fisher_block)
        self.fisher_image = image - (image @ block.T) @ (root @ block)
        self.whitened -= products @ (root @ block)
        self.gains = self._gains() / self.problem.cost


@register_selector("maxdiag", help="top-n by posterior variance (no batch diversity)")
class MaxDiag(GreedySelector):
    """Top ``n`` candidates by shortlist score (normalised posterior variance over cost)."""

    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        self.problem = problem
        self.scale = float(problem.shortlist_score.max(initial=0.0))

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        scores = self.problem.shortlist_score
        position = argmax_with_ties(scores, ~selected, self.scale, self.problem.source_index)
        return position, float(scores[position])


@register_selector("random", help="uniform over the whole pool (baseline)")
class RandomOrder(GreedySelector):
    """Uniformly random candidates: ``rng.permutation(n_candidates)``, reported with their
    posterior variance. For this selector the shortlist is itself a uniform random sample of
    the pool (``build_shortlist(random_key=...)``), so the picks are uniform over the whole
    pool."""

    uniform_shortlist = True

    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        self.problem = problem
        self.order = rng.permutation(problem.n_candidates)
        self.step = 0

    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        position = int(self.order[self.step])
        self.step += 1
        return position, float(self.problem.shortlist_score[position])
