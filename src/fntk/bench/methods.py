"""Acquisition methods of the benchmark: random, a fine-tuned committee and the feature maps.

Every method follows :class:`AcquisitionMethod`: :meth:`prepare` once per run (feature methods
compute the frozen pretrained model's features of the initial set and the pool here, cached in
memory and on disk), then :meth:`acquire` after each round, which returns the next batch and
what it cost. Methods see pool structures without labels (:class:`BenchPool`); labels appear
only once the loop adds a picked structure to the labelled set. :func:`build_method` maps the
names of :data:`fntk.bench.options.MethodName` to methods.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from ase import Atoms

from fntk.bench.learner import FittedModel, Learner
from fntk.bench.options import METHOD_NAMES, Aggregation, BenchOptions
from fntk.features import (
    FEATURE_MAP_NAMES,
    FeatureChunk,
    compute_features,
    default_options,
    force_row_weight,
    has_force_rows,
    option_names,
    options_to_json,
    weighs_force_rows,
)
from fntk.features.options import FeatureMapOptions
from fntk.io import atomic_write_npz, structure_fingerprint
from fntk.learn import LabelledSet
from fntk.registry import Registry
from fntk.select import Selector

_FEATURE_CHUNK = 64
"""Structures per feature computation call (bounds memory of force blocks)."""


@dataclass(frozen=True)
class BenchPool:
    """What methods may see of the data: geometries only, no pool labels.

    Attributes
    ----------
    init : list of Atoms
        Initial labelled structures (without calculators).
    pool : list of Atoms
        Every pool structure, without labels, indexed by pool index.
    candidates : ndarray of int64
        Pool indices taking part in the run (after the pool shift and subsampling), ascending.
    target : list of Atoms
        Unlabelled structures the covering feature methods cover instead of the pool.
    """

    init: list[Atoms]
    pool: list[Atoms]
    candidates: np.ndarray
    target: list[Atoms] = field(default_factory=list)

    def fingerprint(self) -> str:
        """SHA-256 over the :func:`~fntk.io.structure_fingerprint` of the initial and candidate
        structures, in order, then of the target structures (when there are any)."""
        digest = hashlib.sha256()
        for atoms in [*self.init, *(self.pool[i] for i in self.candidates)]:
            digest.update(structure_fingerprint(atoms).encode())
        if self.target:
            digest.update(b"target")
            for atoms in self.target:
                digest.update(structure_fingerprint(atoms).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class SelectionContext:
    """State of one (method, seed) run after a round's model was fitted.

    Attributes
    ----------
    learner : Learner
    model : FittedModel
        Model fitted on ``labelled`` (the model the round evaluated).
    labelled : LabelledSet
        Initial structures followed by the labelled pool structures.
    labelled_pool : ndarray of int64
        Pool indices labelled so far, in pick order.
    candidates : ndarray of int64
        Pool indices still unlabelled, ascending.
    seed : int
    round : int
    """

    learner: Learner
    model: FittedModel
    labelled: LabelledSet
    labelled_pool: np.ndarray
    candidates: np.ndarray
    seed: int
    round: int


@dataclass(frozen=True)
class Acquisition:
    """A batch picked by a method, with what picking it cost.

    Attributes
    ----------
    indices : ndarray of int64
        Pool indices, in pick order.
    seconds_features : float
        Features of the pool (first acquisition of a feature method) or committee force
        predictions on the pool, s.
    seconds_training : float
        Fine-tuning of extra models (committee members 1..K-1), s.
    seconds_select : float
        Scoring and batch selection, s.
    status : tuple of str
        Notes (cache hits, selector fallbacks).
    """

    indices: np.ndarray
    seconds_features: float = 0.0
    seconds_training: float = 0.0
    seconds_select: float = 0.0
    status: tuple[str, ...] = ()


class AcquisitionMethod(Protocol):
    """A way of picking the next structures to label."""

    name: str

    def prepare(self, data: BenchPool, learner: Learner, cache_dir: Path | None) -> float:
        """Work done once per run before any acquisition; returns its cost in s."""
        ...

    def acquire(self, context: SelectionContext, n: int) -> Acquisition:
        """Pick ``n`` of ``context.candidates``."""
        ...


class RandomMethod:
    """Uniform picks without replacement from the unlabelled candidates.

    The generator is seeded by ``(seed, round)``, so a run is reproducible.
    """

    name = "random"

    def prepare(self, data: BenchPool, learner: Learner, cache_dir: Path | None) -> float:
        return 0.0

    def acquire(self, context: SelectionContext, n: int) -> Acquisition:
        start = time.perf_counter()
        rng = np.random.default_rng(np.random.SeedSequence([context.seed, context.round]))
        picks = rng.choice(context.candidates, size=n, replace=False).astype(np.int64)
        return Acquisition(indices=picks, seconds_select=time.perf_counter() - start)


def force_disagreement(
    member_forces: Sequence[Sequence[np.ndarray]], aggregation: Aggregation = "mean"
) -> np.ndarray:
    """Committee force disagreement of each structure.

    For structure ``s`` with forces ``F[k, a, c]`` of member ``k``, atom ``a``, component ``c``
    (eV/Angstrom): the per-atom disagreement is ``d_a = || std_k F[k, a, :] ||`` (population
    standard deviation over members of each component, then the Euclidean norm over the three
    components, eV/Angstrom); the score is the mean (``aggregation="mean"``) or the maximum
    (``"max"``) of ``d_a`` over atoms.

    Parameters
    ----------
    member_forces : sequence of sequence of ndarray
        ``member_forces[k][s]``: forces of member ``k`` on structure ``s``, shape (n_atoms_s, 3).
    aggregation : {"mean", "max"}

    Returns
    -------
    ndarray, shape (n_structures,), float64, eV/Angstrom
    """
    if len(member_forces) < 2:
        raise ValueError("a committee needs at least two members")
    n_structures = len(member_forces[0])
    if any(len(forces) != n_structures for forces in member_forces):
        raise ValueError("every member must predict every structure")
    reduce = np.mean if aggregation == "mean" else np.max
    scores = np.empty(n_structures)
    for s in range(n_structures):
        stacked = np.stack([np.asarray(forces[s], dtype=np.float64) for forces in member_forces])
        per_atom = np.linalg.norm(stacked.std(axis=0), axis=-1)
        scores[s] = reduce(per_atom)
    return scores


def top_k(scores: np.ndarray, indices: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` entries of ``indices`` with the largest ``scores``; ties go to the lower index."""
    order = np.lexsort((indices, -scores))
    return indices[order[:k]].astype(np.int64)


class CommitteeMethod:
    """Query by committee: the top-``n`` candidates by force disagreement.

    Member 0 is the round's evaluated model; members ``1 .. size-1`` come from the learner's
    ``fit_member`` with seeds derived from ``(seed, member)`` (:func:`member_seed`): Adam
    fine-tuning on the same labelled set with another held-out slice and mini-batch order, or
    a ridge fit on a seeded random 80% of it (a convex solve does not depend on data order).

    Parameters
    ----------
    size : int
        Number of members ``K`` (>= 2).
    aggregation : {"mean", "max"}
        See :func:`force_disagreement`.
    """

    name = "committee"

    def __init__(self, size: int = 4, aggregation: Aggregation = "mean") -> None:
        self.size = size
        self.aggregation = aggregation

    def prepare(self, data: BenchPool, learner: Learner, cache_dir: Path | None) -> float:
        """What the learner needs to predict on the candidates (the ridge learner: their design
        rows, shared with the ``joint`` features, whose cost the committee pays too)."""
        self.data_ = data
        return learner.prepare_candidates([data.pool[i] for i in data.candidates])

    def acquire(self, context: SelectionContext, n: int) -> Acquisition:
        structures = [self.data_.pool[i] for i in context.candidates]
        seconds_predict = seconds_training = 0.0
        members = [context.model]
        forces = []
        for k in range(self.size):
            if k > 0:
                members.append(
                    context.learner.fit_member(context.labelled, member_seed(context.seed, k))
                )
                seconds_training += members[k].seconds
            start = time.perf_counter()
            forces.append(context.learner.predict_forces(members[k], structures))
            seconds_predict += time.perf_counter() - start
        start = time.perf_counter()
        scores = force_disagreement(forces, self.aggregation)
        picks = top_k(scores, context.candidates, n)
        return Acquisition(
            indices=picks,
            seconds_features=seconds_predict,
            seconds_training=seconds_training,
            seconds_select=time.perf_counter() - start,
        )


def member_seed(seed: int, member: int) -> int:
    """Fine-tuning seed of committee member ``member`` (>= 1) of run ``seed``."""
    return int(np.random.SeedSequence([seed, member]).generate_state(1)[0])


class FeatureMethod:
    """Batch selection on features of the frozen pretrained model (:class:`fntk.select.Selector`).

    :meth:`prepare` computes the blocks of the initial set and of the candidate pool once (or
    loads them from ``cache_dir/<name>.npz`` when the options and structures match); each
    acquisition fits the selector on the blocks of the labelled structures (initial set and
    labelled pool) and selects from the unlabelled candidates, seeded by ``(seed, round)``.

    Parameters
    ----------
    name : str
        Feature map name (``embedding``, ``energy-ntk``, ``force-ntk``, ``joint``).
    options : BenchOptions
        Source of the selector, sketch width, device, ``joint_force_weight`` and loss weights.
    """

    def __init__(self, name: str, options: BenchOptions) -> None:
        self.name = name
        self.feature_map = name
        self.options = options

    def prepare(self, data: BenchPool, learner: Learner, cache_dir: Path | None) -> float:
        seconds = self._prepare_pool(data, learner, cache_dir)
        self.target_chunk_: FeatureChunk | None = None
        if data.target and not self.uses_target():
            self.status_ += (f"target structures not used: {self.name} does not cover a set",)
        elif data.target:
            start = time.perf_counter()
            index = np.arange(len(data.target), dtype=np.int64)
            derived = learner.feature_chunk(self.feature_options_, data.target, index)
            self.target_chunk_ = (
                derived[0]
                if derived is not None
                else self._compute(learner.pretrained_backend(), data.target, index)
            )
            seconds += time.perf_counter() - start
        return seconds

    def uses_target(self) -> bool:
        """Whether the selector covers a set, so target structures replace the pool sample."""
        from fntk.select import selectors

        return bool(getattr(selectors().get(self.options.select.method), "covers", False))

    def _prepare_pool(self, data: BenchPool, learner: Learner, cache_dir: Path | None) -> float:
        self.feature_options_ = self._feature_options(data.init)
        self.status_: tuple[str, ...] = ()
        key = _cache_key(self.feature_options_, self.options.model, data.fingerprint())
        path = None if cache_dir is None else cache_dir / f"{self.feature_map}.npz"
        cached = load_feature_cache(path, key)
        if cached is not None:
            self.init_chunk_, self.pool_chunk_, seconds = cached
            self.status_ = (f"{self.feature_map} features loaded from {path}",)
            return seconds
        init_index = -1 - np.arange(len(data.init), dtype=np.int64)
        pool = [data.pool[i] for i in data.candidates]
        derived = learner.feature_chunk(self.feature_options_, data.init, init_index)
        if derived is not None:
            # The ridge learner's design rows are these features: computed once, cost shared.
            self.init_chunk_, seconds_init = derived
            pool_chunk = learner.feature_chunk(self.feature_options_, pool, data.candidates)
            self.pool_chunk_, seconds = pool_chunk  # type: ignore[misc]
            seconds += seconds_init
            self.status_ = (f"{self.feature_map} features are the ridge learner's design rows",)
        else:
            start = time.perf_counter()
            backend = learner.pretrained_backend()
            self.init_chunk_ = self._compute(backend, data.init, init_index)
            self.pool_chunk_ = self._compute(backend, pool, data.candidates)
            seconds = time.perf_counter() - start
        if path is not None:
            save_feature_cache(path, key, self.init_chunk_, self.pool_chunk_, seconds)
        return seconds

    def acquire(self, context: SelectionContext, n: int) -> Acquisition:
        start = time.perf_counter()
        position = {int(i): p for p, i in enumerate(self.pool_chunk_.source_index)}
        labelled = self.pool_chunk_.subset([position[int(i)] for i in context.labelled_pool])
        unlabelled = self.pool_chunk_.subset([position[int(i)] for i in context.candidates])
        selector = self._selector(len(context.candidates))
        result = selector.fit([self.init_chunk_, labelled]).select(
            [unlabelled],
            n,
            random_state=np.random.SeedSequence([context.seed, context.round]),
            target_chunks=None if self.target_chunk_ is None else [self.target_chunk_],
        )
        return Acquisition(
            indices=np.asarray(result.indices, dtype=np.int64),
            seconds_select=time.perf_counter() - start,
            status=self.status_ + tuple(result.status),
        )

    def _selector(self, n_candidates: int) -> Selector:
        """The batch selector of an acquisition from ``n_candidates`` unlabelled structures."""
        return Selector(self.options.select)

    def _feature_options(self, init: Sequence[Atoms]) -> FeatureMapOptions:
        return feature_options(self.feature_map, self.options, init)

    def _compute(self, backend, structures: Sequence[Atoms], index: np.ndarray) -> FeatureChunk:
        chunks = [
            compute_features(
                backend,
                structures[start : start + _FEATURE_CHUNK],
                self.feature_options_,
                index[start : start + _FEATURE_CHUNK],
            )
            for start in range(0, len(structures), _FEATURE_CHUNK)
        ]
        return FeatureChunk.concatenate(chunks)


FPS_RELATIVE_NOISE = 1e12
"""Noise variance of :class:`FarthestPointMethod` relative to the feature scale: the posterior
transform ``B = sigma Phi L^{-T}`` then differs from ``Phi`` by about ``n_train / 1e12``
relative, so distances are the descriptors' Euclidean ones."""


class FarthestPointMethod(FeatureMethod):
    """Farthest-point sampling on the pretrained model's pooled descriptors: the field's common
    baseline (MACE's ``fine_tuning_select``).

    The descriptors are the ``embedding`` map (mean over atoms of the last-layer invariant node
    features); each pick is the candidate with the largest Euclidean distance to its nearest
    labelled or already picked structure (greedy k-centre, :class:`fntk.select` ``maxdist``,
    in TP mode, on the whole unlabelled pool). ``maxdist`` measures distances in the posterior
    metric; with the noise at :data:`FPS_RELATIVE_NOISE` times the feature scale that metric is
    the descriptors' own.
    """

    def __init__(self, options: BenchOptions) -> None:
        super().__init__("embedding", options)
        self.name = "fps"

    def uses_target(self) -> bool:
        return False

    def _selector(self, n_candidates: int) -> Selector:
        return Selector(
            "maxdist",
            shortlist_size=n_candidates,
            relative_noise=FPS_RELATIVE_NOISE,
            mode="tp",
        )


_RUN_FIELDS = ("batch_size", "max_batch_atoms")
"""Fields of ``BenchOptions.features`` that maps without force rows take: how the model runs."""


def feature_options(name: str, options: BenchOptions, init: Sequence[Atoms]) -> FeatureMapOptions:
    """Options of the map ``name`` in a benchmark run (``BenchOptions.features`` explains).

    Maps with force rows take every field of ``options.features`` they have; the others only
    :data:`_RUN_FIELDS`. The device is the run's; a joint map's lambda is
    ``options.joint_force_weight`` or :func:`joint_force_weight` of the initial set ``init``.
    """
    shared = options.features.model_dump(exclude={"name", "device", "force_weight"})
    fields = option_names(name) if has_force_rows(name) else frozenset(_RUN_FIELDS)
    overrides: dict[str, object] = {k: v for k, v in shared.items() if k in fields}
    overrides["device"] = options.device
    if weighs_force_rows(name):
        overrides["force_weight"] = options.joint_force_weight or joint_force_weight(options, init)
    return default_options(name, **overrides)


def joint_force_weight(options: BenchOptions, init: Sequence[Atoms]) -> float:
    """lambda (Angstrom) of the fine-tuning loss weights, for the initial set's mean atom count.

    :func:`fntk.features.force_row_weight` of ``options.finetune``'s ``w_E`` and ``w_F``: the
    joint map's row weights are then those of the fine-tuning loss.
    """
    w_e, w_f = options.finetune.energy_weight, options.finetune.force_weight
    return force_row_weight(w_e, w_f, [len(a) for a in init])


def _cache_key(options: FeatureMapOptions, model: str, fingerprint: str) -> str:
    text = json.dumps({"options": options_to_json(options), "model": model, "data": fingerprint})
    return hashlib.sha256(text.encode()).hexdigest()


def save_feature_cache(
    path: Path, key: str, init: FeatureChunk, pool: FeatureChunk, seconds: float
) -> None:
    """Write the feature cache through a temporary file and an atomic rename."""
    atomic_write_npz(
        path,
        key=np.array(key),
        seconds=np.array(seconds),
        **init.to_arrays("init_"),
        **pool.to_arrays("pool_"),
    )


def load_feature_cache(
    path: Path | None, key: str
) -> tuple[FeatureChunk, FeatureChunk, float] | None:
    """Cached chunks and their original cost (s) when ``path`` holds features for ``key``."""
    if path is None or not path.is_file():
        return None
    with np.load(path) as arrays:
        if str(arrays["key"]) != key:
            return None
        init = FeatureChunk.from_arrays(arrays, "init_")
        return init, FeatureChunk.from_arrays(arrays, "pool_"), float(arrays["seconds"])


FEATURE_METHOD_NAMES = FEATURE_MAP_NAMES

METHODS: Registry[Callable[[BenchOptions], AcquisitionMethod]] = Registry("benchmark method")
"""The registry: method name -> factory of the method from :class:`BenchOptions`."""
METHODS.register("random", help="uniform picks from the candidates")(lambda options: RandomMethod())
METHODS.register("committee", help="force disagreement of fine-tuned committee members")(
    lambda options: CommitteeMethod(options.committee_size, options.committee_aggregation)
)
for _name in FEATURE_METHOD_NAMES:
    METHODS.register(_name, help=f"batch selection on {_name} features")(
        functools.partial(FeatureMethod, _name)
    )
METHODS.register("fps", help="farthest-point sampling on the pretrained embedding")(
    FarthestPointMethod
)
if METHODS.names() != METHOD_NAMES:
    raise RuntimeError("method registry and MethodName disagree")


def build_method(name: str, options: BenchOptions) -> AcquisitionMethod:
    """The method ``name`` configured by ``options``.

    Raises
    ------
    InputError
        Unknown name (the one-line message lists the valid ones).
    """
    return METHODS.get(name)(options)
