"""Dask-distributed pool pass of ``fntk select``: the only module of fntk that imports Dask.

:class:`DaskEngine` starts a :class:`~dask.distributed.LocalCluster` (``--workers N``: worker
processes with one thread and one torch thread each) or connects to a running scheduler
(``--scheduler ADDR``, e.g. a dask-jobqueue SLURM cluster), and maps the plain stage functions
of :mod:`fntk.pipeline.stages` over chunks:

1. feature chunks (map): workers featurise chunks, through the feature store when there is one
   (chunk files are written atomically, so concurrent writers are safe);
2. precision: the client sums the training chunks in chunk order (:meth:`Selector.fit`), as
   the single-process path does, so the factor is bit-identical; it is then scattered to
   every worker once;
3. scoring (map, fused with 1 for the pool): each pool chunk is scored on a worker;
4. shortlist: the client merges the per-chunk results into the top ``M``
   (:class:`~fntk.pipeline.stages.ShortlistMerge`, independent of the completion order);
5. selection: on the client, on the merged shortlist only.

The client reads and validates the structure files once and ships each chunk's structures to
a worker; results are consumed in submission order and at most a few chunks per worker are in
flight, so neither the client nor a worker holds more than a few chunks. Each worker loads the
model once, kept on a worker plugin (:class:`ModelPlugin`), not in a module global. Tasks are
retried (``RETRIES``) and the scheduler reschedules the tasks of a worker that dies, so a run
survives a killed worker; a killed client resumes from the feature store (``--resume``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
from distributed import Client, Future, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from fntk.chunk import FeatureChunk
from fntk.errors import InputError
from fntk.features.options import FeatureMapOptions
from fntk.features.registry import build_feature_map
from fntk.features.store import FeatureStore
from fntk.io.read import StructureChunk
from fntk.models import ModelBackend
from fntk.pipeline.featurize import (
    ChunkFeaturizer,
    StoreChunk,
    subset_structures,
    weights_hash,
)
from fntk.pipeline.options import RunOptions
from fntk.pipeline.stages import (
    ScoredChunk,
    ShortlistMerge,
    chunk_features,
    score_pool_chunk,
    scoring_precision,
    shortlist_random_key,
)
from fntk.select import SelectionResult, Selector

WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask config of local workers: Dask's pre-spawn environment (OMP/MKL/OpenBLAS one thread)
without ``MALLOC_TRIM_THRESHOLD_=65536``, which made SevenNet features 2-3x slower here."""
logger = logging.getLogger(__name__)

RETRIES = 2
"""Retries of a task that raised (a worker that dies is handled by the scheduler itself)."""
IN_FLIGHT_PER_WORKER = 2
"""Chunks submitted ahead per worker thread: keeps workers busy, bounds memory."""


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker process, on first use, and sets one torch thread.

    The backend lives on the plugin instance that the worker holds, so there is no module-level
    cache. The plugin is idempotent and named by the weights, device and dtype (all that loading
    depends on), so on a long-lived cluster later runs of the same model reuse it. ``weights``
    (the client's :func:`~fntk.pipeline.featurize.weights_hash`) is checked once, so a worker
    with other model weights (another sevenn version) is refused.
    """

    idempotent = True

    def __init__(self, spec: str, options: FeatureMapOptions, weights: str) -> None:
        self.spec = spec
        self.options = options
        self.weights = weights
        self.name = f"fntk-model-{weights[:12]}-{options.device}-{options.dtype}"
        self._backend: ModelBackend | None = None

    def setup(self, worker: Any) -> None:
        import torch

        torch.set_num_threads(1)  # two threads next to another process: 10-15x slower here
        if os.environ.get("MALLOC_TRIM_THRESHOLD_"):
            logger.warning(
                "worker %s runs with MALLOC_TRIM_THRESHOLD_=%s (Dask's nanny default), which made "
                "model features 2-3x slower; set distributed.nanny.pre-spawn-environ."
                "MALLOC_TRIM_THRESHOLD_ to null in the workers' Dask config (see the README)",
                worker.address,
                os.environ["MALLOC_TRIM_THRESHOLD_"],
            )

    def backend(self) -> ModelBackend:
        """The worker's model, loaded on the first call."""
        if self._backend is None:
            from fntk.features.registry import load_backend_for

            backend = load_backend_for(self.spec, self.options)
            found = weights_hash(backend)
            if found != self.weights:
                raise InputError(
                    f"worker loaded model {self.spec} with weights {found}, the client has "
                    f"{self.weights}",
                    hint="install the same fntk and model versions on every worker",
                )
            self._backend = backend
        return self._backend


def _worker_backend(plugin_name: str) -> ModelBackend:
    plugin = get_worker().plugins[plugin_name]
    assert isinstance(plugin, ModelPlugin)
    return plugin.backend()


def _feature_task(
    plugin_name: str,
    options: FeatureMapOptions,
    store: FeatureStore | None,
    where: StoreChunk,
    chunk: StructureChunk,
) -> tuple[FeatureChunk, bool]:
    return chunk_features(_worker_backend(plugin_name), options, store, where, chunk)


def _pool_task(plugin_name: str, *args: Any) -> ScoredChunk:
    return score_pool_chunk(_worker_backend(plugin_name), *args)


@contextlib.contextmanager
def _children_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (inherited across exec): Ctrl-C in a terminal
    reaches every process of its group, and workers would each print a traceback while the
    client shuts them down in order anyway."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class DaskEngine:
    """A Dask client for one selection run: a new local cluster or an existing scheduler.

    Parameters
    ----------
    model_spec : str
        Model every worker loads (``RunOptions.model``).
    feature_options : FeatureMapOptions
    weights : str
        Weights hash of the client's model; workers must load the same.
    workers : int
        Worker processes of a new :class:`~dask.distributed.LocalCluster` (when no
        ``scheduler``).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) or a scheduler file (``*.json``).
    timeout_s : float
        How long to try to reach ``scheduler``.
    """

    def __init__(
        self,
        model_spec: str,
        feature_options: FeatureMapOptions,
        weights: str,
        *,
        workers: int = 0,
        scheduler: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.cluster: LocalCluster | None = None
        if scheduler is not None:
            try:
                if scheduler.endswith(".json"):
                    self.client = Client(scheduler_file=scheduler, timeout=timeout_s)
                else:
                    self.client = Client(scheduler, timeout=timeout_s)
            except OSError as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler {scheduler} ({exc})",
                    hint="start it first (`dask scheduler`), or use --workers N",
                ) from None
        else:
            if workers < 1:
                raise ValueError(f"workers must be >= 1, got {workers}")
            # Worker processes, one thread each: the nanny's pre-spawn environment pins
            # OMP/MKL/OpenBLAS to one thread, the plugin torch. Dask also sets
            # MALLOC_TRIM_THRESHOLD_=65536 there, 2-3x slower features (any explicit value also
            # freezes glibc's mmap threshold; a large one was still 2x slower): unset it.
            with dask.config.set(WORKER_CONFIG), _children_ignore_ctrl_c():
                self.cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    worker_dashboard_address=None,
                )
            self.client = Client(self.cluster)
        plugin = ModelPlugin(model_spec, feature_options, weights)
        self.client.register_plugin(plugin)
        self.plugin_name = plugin.name
        self.feature_options = feature_options

    def close(self) -> None:
        """Close the client (and the local cluster this engine started)."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def n_threads(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def _ordered(
        self, tasks: Iterator[tuple[Callable[[], Future], Any]]
    ) -> Iterator[tuple[Any, Any]]:
        """Submit ``(submit, context)`` items a window ahead; yield ``(context, result)`` in
        submission order. The window (``IN_FLIGHT_PER_WORKER`` per worker thread) is what bounds
        memory; a submit call may depend on results already yielded."""
        pending: deque[tuple[Future, Any]] = deque()
        for submit, context in tasks:
            while len(pending) >= IN_FLIGHT_PER_WORKER * self.n_threads():
                future, done = pending.popleft()
                yield done, future.result()
                future.release()
            pending.append((submit(), context))
        while pending:
            future, done = pending.popleft()
            yield done, future.result()
            future.release()

    def read_chunks(
        self, featurizer: ChunkFeaturizer, files: Sequence[str], split: str = "train"
    ) -> Iterator[tuple[StructureChunk, list[int], FeatureChunk]]:
        """What :meth:`ChunkFeaturizer.read_chunks` yields, with the features made on workers.

        Counts computed and reused chunks on ``featurizer``.
        """

        def tasks() -> Iterator[tuple[Callable[[], Future], Any]]:
            for read, supported, where in featurizer.stored_chunks(files, split):
                chunk = subset_structures(read, supported)
                yield (
                    _submitter(
                        self.client,
                        _feature_task,
                        self.plugin_name,
                        self.feature_options,
                        featurizer.store,
                        where,
                        chunk,
                    ),
                    (read, supported),
                )

        for (read, supported), (features, computed) in self._ordered(tasks()):
            _count(featurizer, computed)
            yield read, supported, features
        featurizer.finish_sources()

    def select(
        self,
        featurizer: ChunkFeaturizer,
        pool_files: Sequence[str],
        selector: Selector,
        admit: Callable[[StructureChunk, list[int]], tuple[list[int], list[int]]],
        summaries: list[Any],
        options: RunOptions,
        timings: dict[str, float],
        report: Callable[[str, int, int | None], None],
    ) -> SelectionResult:
        """Features and scores of the pool on the workers, shortlist merge and selection here.

        ``admit(chunk, supported)`` is the client's bookkeeping of each chunk as it is read
        (positions to score, positions to sample for the plot); the sampled plot summaries are
        appended to ``summaries`` in chunk order. Adds the stage timings
        (wall seconds on the client; worker seconds summed over workers) to ``timings``.
        """
        select_options = selector.options
        if options.n == 0:
            return selector.select(iter(()), n=0, random_state=options.seed)
        size = select_options.resolved_shortlist_size(options.n)
        n_features = build_feature_map(featurizer.options).n_features(featurizer.backend)
        precision = self.client.scatter(
            scoring_precision(selector, n_features), broadcast=True, hash=False
        )
        random_key = shortlist_random_key(select_options, options.seed)
        merge = ShortlistMerge(size)

        def tasks() -> Iterator[tuple[Callable[[], Future], Any]]:
            for read, supported, where in featurizer.stored_chunks(pool_files, "pool"):
                keep, sampled = admit(read, supported)
                yield (
                    _submitter(
                        self.client,
                        _pool_task,
                        self.plugin_name,
                        self.feature_options,
                        featurizer.store,
                        where,
                        subset_structures(read, supported),
                        keep,
                        sampled,
                        precision,
                        select_options,
                        random_key,
                        merge.bar(),  # evaluated at submission: the bar known by then
                    ),
                    len(read),
                )

        start = time.perf_counter()
        worker_feature_s = worker_scoring_s = merge_s = 0.0
        for n_read, scored in self._ordered(tasks()):
            tick = time.perf_counter()
            _count(featurizer, scored.computed)
            worker_feature_s += scored.feature_s
            worker_scoring_s += scored.scoring_s
            if len(scored.source_index):
                summaries.append(scored.summaries)
            merge.offer(scored)
            merge_s += time.perf_counter() - tick
            report("pool features + scoring", n_read, None)
        featurizer.finish_sources()
        timings["pool_features_and_scoring"] = time.perf_counter() - start
        timings["worker_pool_features"] = worker_feature_s
        timings["worker_pool_scoring"] = worker_scoring_s
        timings["shortlist_merge"] = merge_s
        start = time.perf_counter()
        candidates = merge.candidates()
        result = selector.select(
            iter(()) if candidates is None else iter([candidates]),
            n=options.n,
            random_state=options.seed,
        )
        timings["selection"] = time.perf_counter() - start
        return result


def _submitter(client: Client, function: Callable, *args: Any) -> Callable[[], Future]:
    """A call that submits ``function(*args)`` (not pure, retried) when made."""
    return lambda: client.submit(function, *args, pure=False, retries=RETRIES)


def _count(featurizer: ChunkFeaturizer, computed: bool) -> None:
    if computed:
        featurizer.computed_chunks += 1
    else:
        featurizer.reused_chunks += 1
