"""Estimator-style entry point of the selection engine and its one-call form.

``Selector(method="coverage", ...).fit(train_chunks).select(pool_chunks, n=B, random_state=seed)``
accumulates and factorises the precision matrix from the training chunks, streams the pool
once into a posterior-variance shortlist, and runs the batch selector on the shortlist
(DESIGN.md sections 3-4). The same three steps are public for engines that score chunks
elsewhere (:mod:`fntk.pipeline`): :meth:`Selector.scorer` scores one chunk,
:class:`~fntk.select.shortlist.ShortlistMerge` merges scored chunks in any order, and
:meth:`Selector.select_shortlist` picks from the merged shortlist. ``__init__`` validates its
arguments at once (through :class:`SelectOptions`; unlike scikit-learn, a bad option fails
where it is written) and fitted state ends in ``_``. A selection is a pure function of
(features, options, seed): the same arguments give the same batch whatever the chunking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fntk.chunk import FeatureChunk
from fntk.errors import InputError
from fntk.select.base import SelectionProblem, build_selector, run_greedy
from fntk.select.candidates import Nearness, union_shortlist
from fntk.select.options import SelectOptions
from fntk.select.precision import (
    Precision,
    accumulate_gram,
    check_chunk,
    factorize_precision,
    posterior_blocks,
)
from fntk.select.registry import selectors
from fntk.select.shortlist import (
    ChunkScores,
    Shortlist,
    ShortlistMerge,
    labelling_cost,
    score_chunk,
)
from fntk.select.ties import tie_keys

logger = logging.getLogger(__name__)

RandomState = int | np.random.SeedSequence | None


@dataclass(frozen=True)
class ShortlistSummary:
    """The shortlist a selection ran on, by decreasing shortlist score.

    Attributes
    ----------
    source_index : ndarray, shape (M,), int64
        Pool source indices.
    posterior_variance : ndarray, shape (M,), float64
        Normalised posterior variance (``SelectOptions.normalization``).
    """

    source_index: np.ndarray
    posterior_variance: np.ndarray


@dataclass(frozen=True)
class SelectionResult:
    """Outcome of one batch selection.

    Attributes
    ----------
    indices : ndarray, shape (n_picked,), int64
        Pool source indices, in pick order.
    scores : ndarray, shape (n_picked,), float64
        Each pick's score when it was picked (selector-specific gain, divided by the labelling
        cost when cost-aware acquisition is on; see ``SelectOptions.cost_exponent``).
    shortlist : ShortlistSummary
        Source indices and posterior variances of the shortlist.
    status : tuple of str
        Messages about fallbacks and automatic choices (empty when there were none).
    kernel : str
        Structure kernel used by distance-based selectors (``"linear"`` or ``"gram"``).
    mode : str
        ``"tp"`` or ``"p"``, after the empty-training-set rule.
    sigma : float
        Noise standard deviation of the precision matrix (feature units).
    """

    indices: np.ndarray
    scores: np.ndarray
    shortlist: ShortlistSummary
    status: tuple[str, ...]
    kernel: str
    mode: str
    sigma: float


class Selector:
    """Pick the next structures to label from streamed feature chunks.

    Parameters
    ----------
    options : SelectOptions or str, optional
        All options (defaults, units and the maths are documented on
        :class:`~fntk.select.options.SelectOptions`), or just the selector name.
    **params
        Fields of :class:`~fntk.select.options.SelectOptions` that replace those of ``options``.

    Attributes
    ----------
    options : SelectOptions
        The validated options (what :meth:`get_params` returns).
    precision_ : Precision or None
        Factorised precision of the training set; ``None`` when no training chunk was given
        (built as ``sigma^2 I`` once the pool reveals the feature width).
    train_ : FeatureChunk or None
        Training blocks, kept only when the selector uses them as centres (TP mode).
    """

    def __init__(self, options: SelectOptions | str | None = None, **params: Any) -> None:
        if isinstance(options, str):
            options, params = None, {"method": options, **params}
        base = options if options is not None else SelectOptions()
        self.options = _updated(base, params)

    @classmethod
    def from_options(cls, options: SelectOptions) -> Selector:
        """Selector with ``options``."""
        return cls(options)

    def get_params(self) -> dict[str, Any]:
        """The options, by field name (scikit-learn convention)."""
        return self.options.model_dump()

    def set_params(self, **params: Any) -> Selector:
        """Replace option fields (validated now; an unknown name raises)."""
        self.options = _updated(self.options, params)
        return self

    def fit(self, train_chunks: Iterable[FeatureChunk]) -> Selector:
        """Accumulate and factorise the precision matrix of the training set.

        Parameters
        ----------
        train_chunks : iterable of FeatureChunk
            Labelled structures, any chunking; consumed once. May be empty (P mode).

        Returns
        -------
        Selector
            ``self``.

        Raises
        ------
        ValueError
            For invalid options (pydantic ``ValidationError``) or an unknown method.
        InputError
            For non-finite or mismatched training features.
        NumericalError
            If the precision matrix cannot be factorised even with jitter.
        """
        options = self.options
        selector_cls = selectors().get(options.method)
        gram, n_structures, n_rows, chunks = accumulate_gram(
            _chunk_stream(train_chunks, "training"), options.energy_weight, options.force_weight
        )
        self.precision_ = None if gram is None else self._factorize(gram, n_structures, n_rows)
        keep_train = (
            getattr(selector_cls, "uses_train_centres", False)
            and options.mode == "tp"
            and n_structures
        )
        self.train_ = FeatureChunk.concatenate(chunks) if keep_train else None
        return self

    def select(
        self,
        pool_chunks: Iterable[FeatureChunk],
        n: int,
        random_state: RandomState = None,
        target_chunks: Iterable[FeatureChunk] | None = None,
    ) -> SelectionResult:
        """Stream the pool and pick ``n`` structures.

        Parameters
        ----------
        pool_chunks : iterable of FeatureChunk
            Candidate structures, any chunking; consumed once. Source indices must be unique.
        n : int
            Batch size. ``0`` returns an empty result without reading the pool; more than the
            pool holds returns every pool structure (recorded in ``status``).
        random_state : int, numpy.random.SeedSequence or None
            Seed of the generator ``np.random.default_rng(np.random.SeedSequence(seed))`` that
            randomised selectors (kmeans++, random) draw from; ``None`` draws fresh entropy.
        target_chunks : iterable of FeatureChunk, optional
            Unlabelled structures like those the user will simulate (covering selectors only,
            :mod:`fntk.select.candidates`): what must be covered is a seeded uniform sample of
            ``M`` of them instead of the pool sample, and the pool structures nearest to it
            join the candidates. Consumed once, before the pool.

        Returns
        -------
        SelectionResult

        Raises
        ------
        ValueError
            ``target_chunks`` with a selector that does not cover a set, or no target structure.
        """
        if not hasattr(self, "precision_"):
            raise RuntimeError("call fit(train_chunks) before select()")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise InputError(f"n must be a non-negative integer, got {n!r}")
        options = self.options
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return SelectionResult(
                indices=empty,
                scores=np.zeros(0),
                shortlist=ShortlistSummary(empty, np.zeros(0)),
                status=("n=0: nothing to select; the pool was not read",),
                kernel=options.kernel,
                mode=options.mode,
                sigma=float("nan") if self.precision_ is None else self.precision_.sigma,
            )
        chunks: Iterator[FeatureChunk] = _chunk_stream(pool_chunks, "pool")
        n_features = None if self.precision_ is None else self.precision_.n_features
        if n_features is None:
            first = next(chunks, None)
            if first is None:
                raise InputError("the pool is empty and no training chunk gave the feature width")
            check_chunk(first, None, "pool")
            n_features, chunks = first.n_features, _prepend(first, chunks)
        seed = _seed(random_state)  # one entropy draw for None: every step replays it
        target = None
        if target_chunks is not None:
            target = self.target_sample(target_chunks, n_features, int(n), seed)
        scorers = self.pool_scorers(n_features, seed, target)
        size = options.resolved_shortlist_size(int(n))
        merges = [ShortlistMerge(size) for _ in scorers]
        for chunk in chunks:
            for scorer, merge in zip(scorers, merges):
                merge.offer(scorer(chunk))
        shortlists = [merge.shortlist(n_features) for merge in merges]
        return self.select_shortlists(shortlists, scorers[0].precision, int(n), seed, target)

    def scorer(self, n_features: int, random_key: int | None) -> ChunkScorer:
        """What scores each pool chunk: the fitted precision (``sigma^2 I`` of width
        ``n_features`` when no training chunk was given), the options and the shortlist key
        (:meth:`shortlist_key`). Picklable, so an engine may ship it to workers."""
        if not hasattr(self, "precision_"):
            raise RuntimeError("call fit(train_chunks) before scorer()")
        precision = self.precision_
        if precision is None:
            precision = self._factorize(np.zeros((n_features, n_features)), 0, 0)
        return ChunkScorer(precision, self.options, random_key)

    def sample_only(self, target: bool = False) -> bool:
        """Whether the selector uses nothing of the pool but its uniform sample of ``M`` (no
        variance or target candidates), so that the features of the sample are all a pool pass
        needs (:func:`~fntk.select.shortlist.uniform_sample` names it in advance)."""
        method = self.options.method
        return (
            _trait(method, "uniform_shortlist")
            and not _trait(method, "variance_candidates")
            and not target
        )

    def shortlist_key(self, random_state: RandomState) -> int | None:
        """The uniform-sample shortlist key :meth:`select` draws from ``random_state`` (None for
        selectors that shortlist by posterior variance)."""
        return uniform_shortlist_key(self.options, np.random.default_rng(_seed(random_state)))

    def pool_scorers(
        self, n_features: int, random_state: RandomState, target: Shortlist | None = None
    ) -> tuple[ChunkScorer, ...]:
        """The rankings the pool pass keeps a top ``M`` of, in the order
        :meth:`select_shortlists` expects: the selector's shortlist (:meth:`scorer` with
        :meth:`shortlist_key`), then the top ``M`` by score (``variance_candidates`` selectors),
        then the nearest to ``target`` (:meth:`target_sample`). ``random_state`` as for
        :meth:`select`."""
        first = self.scorer(n_features, self.shortlist_key(random_state))
        scorers = [first]
        if _trait(self.options.method, "variance_candidates"):
            scorers.append(replace(first, random_key=None))
        if target is not None:
            options = self.options
            near = Nearness.of(
                target,
                first.precision,
                (options.energy_weight, options.force_weight),
                self._resolve_kernel(target),  # type: ignore[arg-type]  # linear or gram
                options.normalization,
            )
            scorers.append(replace(first, random_key=None, near=near))
        return tuple(scorers)

    def target_sample(
        self,
        target_chunks: Iterable[FeatureChunk],
        n_features: int,
        n: int,
        random_state: RandomState,
    ) -> Shortlist:
        """A seeded uniform sample of ``M`` target structures with their posterior variances
        (streamed once; ``n_pool`` counts the target structures): what a covering selector
        covers instead of the pool sample.

        Raises
        ------
        ValueError
            The selector does not cover a set, or no target structure was given.
        """
        method = self.options.method
        if not _trait(method, "covers"):
            names = ", ".join(name for name in selectors().names() if _trait(name, "covers"))
            raise ValueError(
                f"target structures need a covering selector ({names}), not {method!r}"
            )
        _, key = _draw_keys(self.options, np.random.default_rng(_seed(random_state)), True)
        scorer = self.scorer(n_features, key)
        merge = ShortlistMerge(self.options.resolved_shortlist_size(n))
        for chunk in _chunk_stream(target_chunks, "target"):
            merge.offer(scorer(chunk))
        sample = merge.shortlist(n_features)
        if not sample.n_pool:
            raise ValueError("the target set is empty")
        return sample

    def select_shortlist(
        self, shortlist: Shortlist, precision: Precision, n: int, random_state: RandomState
    ) -> SelectionResult:
        """Run the batch selector on a merged shortlist (:class:`ShortlistMerge` of the
        :meth:`scorer`'s chunk scores): what :meth:`select` does once the pool has streamed.
        ``random_state`` must be an int or SeedSequence for the picks to equal :meth:`select`'s."""
        return self.select_shortlists([shortlist], precision, n, random_state)

    def select_shortlists(
        self,
        shortlists: Sequence[Shortlist],
        precision: Precision,
        n: int,
        random_state: RandomState,
        target: Shortlist | None = None,
    ) -> SelectionResult:
        """Run the batch selector on the merged top-``M`` sets of :meth:`pool_scorers` (same
        order) and the ``target`` sample: what :meth:`select` does once the pool has streamed.

        The candidates are the union of the sets. A covering selector covers ``target`` when
        given, else the first set (the uniform sample) when the candidates are wider or the
        cover is weighted. ``random_state`` must be an int or SeedSequence for the picks to
        equal :meth:`select`'s.
        """
        rng = np.random.default_rng(_seed(random_state))
        _draw_keys(self.options, rng, target is not None)  # the draws select() made
        cover = target
        method = self.options.method
        if cover is None and (len(shortlists) > 1 or _trait(method, "weighted_cover")):
            cover = shortlists[0]
        return self._select_from(union_shortlist(shortlists), precision, int(n), rng, cover)

    def _select_from(
        self,
        shortlist: Shortlist,
        precision: Precision,
        n: int,
        rng: np.random.Generator,
        cover: Shortlist | None = None,
    ) -> SelectionResult:
        options = self.options
        status = list(precision.status)
        if n > shortlist.n_pool:
            status.append(
                f"n={n} exceeds the pool size {shortlist.n_pool}; returning every pool structure"
            )
        kernel = self._resolve_kernel(
            shortlist
            if cover is None
            else replace(shortlist, max_rows=max(shortlist.max_rows, cover.max_rows))
        )
        mode = options.mode if precision.n_train_structures else "p"
        problem = self._problem(shortlist, precision, kernel)
        if cover is not None:
            problem = self._with_cover(problem, cover, precision)
        outcome = run_greedy(build_selector(options), problem, n, rng)
        status.extend(outcome.status)
        for message in status:
            logger.warning("%s", message)
        by_score = np.lexsort((shortlist.source_index, -tie_keys(shortlist.score)))
        return SelectionResult(
            indices=problem.source_index[outcome.positions],
            scores=outcome.scores,
            shortlist=ShortlistSummary(
                shortlist.source_index[by_score], shortlist.posterior_variance[by_score]
            ),
            status=tuple(status),
            kernel=kernel,
            mode=mode,
            sigma=precision.sigma,
        )

    def _with_cover(
        self, problem: SelectionProblem, cover: Shortlist, precision: Precision
    ) -> SelectionProblem:
        """``problem`` with the structures to cover (by source index) and, for a weighted
        cover, their posterior variances as weights."""
        options = self.options
        order = np.argsort(cover.source_index, kind="stable")
        weighted = _trait(options.method, "weighted_cover")
        return replace(
            problem,
            cover=posterior_blocks(
                cover.chunk.subset(order), precision, options.energy_weight, options.force_weight
            ),
            cover_weight=cover.posterior_variance[order] if weighted else None,
        )

    def _factorize(self, gram: np.ndarray, n_structures: int, n_rows: int) -> Precision:
        options = self.options
        return factorize_precision(
            gram,
            n_structures,
            n_rows,
            sigma=options.sigma,
            relative_noise=options.relative_noise,
            jitter_tries=options.jitter_tries,
        )

    def _resolve_kernel(self, shortlist: Shortlist) -> str:
        """``options.kernel``, with ``"auto"`` resolved from the largest block seen."""
        if self.options.kernel != "auto":
            return self.options.kernel
        train_rows = 0 if self.train_ is None else int(self.train_.rows_per_structure.max())
        return "linear" if max(shortlist.max_rows, train_rows) <= 1 else "gram"

    def _problem(self, shortlist: Shortlist, precision: Precision, kernel: str) -> SelectionProblem:
        """Posterior blocks of the shortlist (by source index) and, in TP mode, of the train."""
        options = self.options
        order = np.argsort(shortlist.source_index, kind="stable")
        chunk = shortlist.chunk.subset(order)
        weights = (options.energy_weight, options.force_weight)
        train = None
        if self.train_ is not None and precision.n_train_structures:
            train = posterior_blocks(self.train_, precision, *weights)
        return SelectionProblem(
            candidates=posterior_blocks(chunk, precision, *weights),
            source_index=chunk.source_index,
            cost=labelling_cost(chunk.n_atoms, options.cost_exponent),
            shortlist_score=shortlist.score[order],
            sigma=precision.sigma,
            kernel=kernel,  # type: ignore[arg-type]  # resolved to linear or gram
            train=train,
            normalization=options.normalization,
        )


@dataclass(frozen=True)
class ChunkScorer:
    """Scores pool chunks for the shortlist (:func:`~fntk.select.shortlist.score_chunk`) with
    the options of one selector: the one place its options become scoring arguments.

    Attributes
    ----------
    precision : Precision
    options : SelectOptions
    random_key : int or None
        Uniform-sample shortlist key (:func:`uniform_shortlist_key`).
    near : Nearness or None
        Rank by closeness to a target sample instead (:mod:`fntk.select.candidates`).
    """

    precision: Precision
    options: SelectOptions
    random_key: int | None
    near: Nearness | None = None

    def __call__(self, chunk: FeatureChunk) -> ChunkScores:
        """Scores of every structure of ``chunk``."""
        options = self.options
        scores = score_chunk(
            chunk,
            self.precision,
            normalization=options.normalization,
            energy_weight=options.energy_weight,
            force_weight=options.force_weight,
            cost_exponent=options.cost_exponent,
            random_key=self.random_key,
        )
        if self.near is None or not scores.n_scored:
            return scores
        weights = (options.energy_weight, options.force_weight)
        return replace(scores, rank=self.near(chunk, self.precision, weights))


def uniform_shortlist_key(options: SelectOptions, rng: np.random.Generator) -> int | None:
    """Key of the uniform-sample shortlist of ``options.method`` (``coverage``, ``random``),
    the first draw from ``rng``; ``None`` for selectors that shortlist by posterior variance
    (``rng`` is then untouched). :meth:`Selector.select` and the Dask path both call this."""
    if not getattr(selectors().get(options.method), "uniform_shortlist", False):
        return None
    return int(rng.integers(2**62))


def _draw_keys(
    options: SelectOptions, rng: np.random.Generator, target: bool
) -> tuple[int | None, int | None]:
    """The draws a selection makes from ``rng`` before the batch selector: the uniform-sample
    key (:func:`uniform_shortlist_key`), then, with target structures, the key of their
    sample (drawn after, so the pool sample is the same with or without a target)."""
    key = uniform_shortlist_key(options, rng)
    return key, int(rng.integers(2**62)) if target else None


def _trait(method: str, name: str) -> bool:
    """A class-level flag of the selector registered as ``method``
    (:class:`~fntk.select.base.GreedySelector`)."""
    return bool(getattr(selectors().get(method), name, False))


def _chunk_stream(chunks: Iterable[FeatureChunk] | None, what: str) -> Iterator[FeatureChunk]:
    """``chunks`` as an iterator; one chunk alone is one chunk, ``None`` none at all."""
    if chunks is None:
        return iter(())
    if isinstance(chunks, FeatureChunk):
        return iter([chunks])
    try:
        return iter(chunks)
    except TypeError:
        raise InputError(
            f"{what} chunks must be an iterable of FeatureChunk, got {type(chunks).__name__}"
        ) from None


def _prepend(first: FeatureChunk, rest: Iterable[FeatureChunk]) -> Iterator[FeatureChunk]:
    yield first
    yield from rest


def _seed(random_state: RandomState) -> np.random.SeedSequence:
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    return np.random.SeedSequence(random_state)


def select_structures(
    train_chunks: Iterable[FeatureChunk],
    pool_chunks: Iterable[FeatureChunk],
    n: int,
    options: SelectOptions | None = None,
    random_state: RandomState = None,
) -> SelectionResult:
    """One call: ``Selector.from_options(options).fit(train_chunks).select(pool_chunks, n)``.

    Parameters
    ----------
    train_chunks, pool_chunks : iterable of FeatureChunk
    n : int
    options : SelectOptions, optional
        Defaults to ``SelectOptions()`` (coverage).
    random_state : int, numpy.random.SeedSequence or None

    Returns
    -------
    SelectionResult
    """
    selector = Selector.from_options(options or SelectOptions())
    return selector.fit(train_chunks).select(pool_chunks, n, random_state=random_state)


def _updated(options: SelectOptions, params: dict[str, Any]) -> SelectOptions:
    """``options`` with ``params`` replacing fields, validated (unknown names raise)."""
    if not params:
        return options
    return SelectOptions.model_validate({**options.model_dump(), **params})
