"""The shared greedy loop of the batch selectors.

A selector works on a :class:`SelectionProblem` (the posterior blocks of the shortlisted
candidates, and of the training structures in TP mode) and fills in three hooks, after
bmdal_reg's ``IterativeSelectionMethod``: :meth:`GreedySelector.prepare` (state before the first
pick; TP-mode selectors add the training centres here), :meth:`GreedySelector.next_index`
(the next candidate) and :meth:`GreedySelector.add` (update after a pick). :func:`run_greedy` is
the one loop that calls them. Selectors are registered by name in :mod:`fntk.select.registry`
(:func:`~fntk.select.registry.register_selector`); ties follow the one rule of
:mod:`fntk.select.ties`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fntk.select.options import KernelName, Normalization, SelectOptions
from fntk.select.precision import PosteriorBlocks
from fntk.select.registry import selectors
from fntk.select.ties import tie_keys


@dataclass(frozen=True)
class SelectionProblem:
    """What a selector sees: shortlisted candidates, in increasing source-index order.

    Attributes
    ----------
    candidates : PosteriorBlocks
        Posterior blocks ``B(x) = sigma W^{1/2} Phi(x) L^{-T}`` of the candidates.
    source_index : ndarray, shape (n_candidates,), int64
        Increasing.
    cost : ndarray, shape (n_candidates,), float64
        Labelling cost ``c(N)`` (ones when cost-aware acquisition is off).
    shortlist_score : ndarray, shape (n_candidates,), float64
        Shortlist score: normalised posterior variance divided by the cost.
    sigma : float
        Noise standard deviation of the precision matrix.
    kernel : {"linear", "gram"}
        Structure kernel of the distance-based selectors.
    train : PosteriorBlocks or None
        Posterior blocks of the training structures in TP mode, else ``None``.
    normalization : {"per-row", "per-atom", "total"}
        Normalisation of the shortlist score, shared by the Gram kernel
        (:mod:`fntk.select.kernels`).
    cover : PosteriorBlocks or None
        Posterior blocks of the structures a covering selector must cover when they are not
        the candidates themselves (the uniform pool sample under wider candidates, or a sample
        of target structures; :mod:`fntk.select.candidates`), in increasing index order.
    cover_weight : ndarray, shape (n_cover,), float64, or None
        How much each structure to cover counts (``None``: 1 each).
    """

    candidates: PosteriorBlocks
    source_index: np.ndarray
    cost: np.ndarray
    shortlist_score: np.ndarray
    sigma: float
    kernel: KernelName
    train: PosteriorBlocks | None = None
    normalization: Normalization = "per-row"
    cover: PosteriorBlocks | None = None
    cover_weight: np.ndarray | None = None

    @property
    def n_candidates(self) -> int:
        return self.candidates.n_structures


@dataclass
class GreedyOutcome:
    """Positions picked by :func:`run_greedy` (into the problem's candidates) and their scores.

    Attributes
    ----------
    positions : ndarray, shape (n_picked,), int64
    scores : ndarray, shape (n_picked,), float64
        Score of each pick at the time it was picked.
    status : list of str
    """

    positions: np.ndarray
    scores: np.ndarray
    status: list[str] = field(default_factory=list)


def argmax_with_ties(
    scores: np.ndarray, eligible: np.ndarray, scale: float, source_index: np.ndarray
) -> int:
    """Position of the largest eligible score under the module's tie rule.

    Parameters
    ----------
    scores : ndarray, shape (n,), float64
    eligible : ndarray, shape (n,), bool
        At least one entry must be True.
    scale : float
        Scores are rounded to multiples of ``scale * 2**-40`` (:func:`fntk.select.ties.tie_keys`).
    source_index : ndarray, shape (n,), int64
        Tie-breaker (smaller wins).

    Returns
    -------
    int
    """
    candidates = np.flatnonzero(eligible)
    keys = tie_keys(scores[candidates], scale)
    best = candidates[keys == keys.max()]
    return int(best[np.argmin(source_index[best])])


class GreedySelector(abc.ABC):
    """Base class of the batch selectors: three hooks around one greedy loop.

    Subclasses are created without arguments; the loop passes the problem, the batch size and a
    seeded generator to :meth:`prepare`. ``status`` collects messages about fallbacks.
    """

    name: ClassVar[str]
    uses_train_centres: ClassVar[bool] = False
    """Whether the training structures act as centres in TP mode (distance-based selectors)."""
    uniform_shortlist: ClassVar[bool] = False
    """Whether the selector runs on a seeded uniform sample of the pool (the pool's stand-in)
    instead of the top ``M`` by posterior variance."""
    variance_candidates: ClassVar[bool] = False
    """With ``uniform_shortlist``: the candidates are the uniform sample together with the top
    ``M`` by posterior variance, and the uniform sample stays what must be covered."""
    covers: ClassVar[bool] = False
    """Whether the selector covers a set (``SelectionProblem.cover``), so that target structures
    can stand in for the pool (``target_chunks`` of :meth:`fntk.select.Selector.select`)."""
    weighted_cover: ClassVar[bool] = False
    """Whether each structure to cover counts with its posterior variance
    (``SelectionProblem.cover_weight``)."""

    def __init__(self) -> None:
        self.status: list[str] = []

    @abc.abstractmethod
    def prepare(self, problem: SelectionProblem, n: int, rng: np.random.Generator) -> None:
        """Set up the state for selecting ``n`` candidates of ``problem``."""

    @abc.abstractmethod
    def next_index(self, selected: np.ndarray) -> tuple[int, float]:
        """Next candidate position and its score; ``selected`` is a bool mask (n_candidates,)."""

    def add(self, position: int) -> None:  # noqa: B027 - selectors without batch updates
        """Update the state after ``position`` was picked (no-op by default)."""


def run_greedy(
    selector: GreedySelector, problem: SelectionProblem, n: int, rng: np.random.Generator
) -> GreedyOutcome:
    """Pick ``min(n, n_candidates)`` candidates greedily with ``selector``'s hooks.

    Parameters
    ----------
    selector : GreedySelector
    problem : SelectionProblem
    n : int
    rng : numpy.random.Generator
        Only randomised selectors draw from it.

    Returns
    -------
    GreedyOutcome
    """
    n = min(n, problem.n_candidates)
    selected = np.zeros(problem.n_candidates, dtype=bool)
    positions = np.zeros(n, dtype=np.int64)
    scores = np.zeros(n)
    if n:
        selector.prepare(problem, n, rng)
    for step in range(n):
        position, score = selector.next_index(selected)
        if selected[position]:
            raise RuntimeError(f"{selector.name} picked candidate {position} twice")
        selected[position] = True
        positions[step], scores[step] = position, score
        if step + 1 < n:
            selector.add(position)
    return GreedyOutcome(positions=positions, scores=scores, status=list(selector.status))


def build_selector(options: SelectOptions) -> GreedySelector:
    """A fresh selector for ``options.method`` (names: :func:`fntk.select.registry.selectors`)."""
    selector: GreedySelector = selectors().get(options.method)()
    return selector
