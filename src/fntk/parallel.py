"""The Dask engine: stages over chunks on Dask workers; the only module of fntk that imports Dask.

:class:`DaskEngine` implements :class:`fntk.engine.Engine`. It starts a
:class:`~dask.distributed.LocalCluster` (``--workers N``: worker processes with one thread and
one torch thread each) or connects to a running scheduler (``--scheduler ADDR``, e.g. a
dask-jobqueue SLURM cluster), and maps a stage (a plain function of the model and one item; the
stages of ``fntk select`` are in :mod:`fntk.pipeline.stages`) over items. The stage is
scattered to every worker once (it may carry the precision matrix); each item travels with its
task. Results are consumed in submission order and at most a few items per worker are in
flight, so neither the client nor a worker holds more than a few chunks. Each worker loads the
model once, kept on a worker plugin (:class:`ModelPlugin`), not in a module global. Tasks are
retried (``RETRIES``) and the scheduler reschedules the tasks of a worker that dies, so a run
survives a killed worker; a killed client resumes from the feature store (``--resume``).

This module knows nothing of the selection job: it sits below :mod:`fntk.pipeline`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import dask
from distributed import Client, Future, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from fntk.engine import ModelSource
from fntk.errors import InputError
from fntk.models import ModelBackend

Item = TypeVar("Item")
Result = TypeVar("Result")

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
    depends on), so on a long-lived cluster later runs of the same model reuse it. The weights
    hash is checked once (:meth:`ModelSource.load`), so a worker with other model weights
    (another sevenn version) is refused.
    """

    idempotent = True

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        options = source.options
        self.name = f"fntk-model-{source.weights[:12]}-{options.device}-{options.dtype}"
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
            self._backend = self.source.load()
        return self._backend


def _run_stage(plugin_name: str, stage: Callable[[ModelBackend, Any], Any], item: Any) -> Any:
    plugin = get_worker().plugins[plugin_name]
    assert isinstance(plugin, ModelPlugin)
    return stage(plugin.backend(), item)


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
    source : ModelSource
        The model every worker loads (spec, device, dtype, weights hash).
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
        source: ModelSource,
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
        plugin = ModelPlugin(source)
        self.client.register_plugin(plugin)
        self.plugin_name = plugin.name

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

    def map_chunks(
        self, stage: Callable[[ModelBackend, Item], Result], items: Iterable[Item]
    ) -> Iterator[Result]:
        """``stage(backend, item)`` for each item on the workers, results in item order.

        ``stage`` is sent to every worker once; items are drawn a window ahead
        (``IN_FLIGHT_PER_WORKER`` per worker thread), which is what bounds memory.
        """
        shared = self.client.scatter(stage, broadcast=True, hash=False)
        pending: deque[Future] = deque()
        for item in items:
            while len(pending) >= IN_FLIGHT_PER_WORKER * self.n_threads():
                yield _result(pending.popleft())
            pending.append(
                self.client.submit(
                    _run_stage, self.plugin_name, shared, item, pure=False, retries=RETRIES
                )
            )
        while pending:
            yield _result(pending.popleft())


def _result(future: Future) -> Any:
    result = future.result()
    future.release()
    return result
