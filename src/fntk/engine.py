"""How a job runs its stages over chunks: the engine protocol and the one-process engine.

A stage is a plain, picklable function ``stage(backend, item) -> result`` of the model and one
work item (a chunk of structures and what to do with it). An :class:`Engine` maps a stage over
items and yields the results in item order, consuming the items lazily (an item may depend on
results already yielded, such as the shortlist bar). :class:`InProcess` runs each stage here,
one item at a time; :class:`fntk.parallel.DaskEngine` runs them on Dask workers, each with its
own copy of the model (:class:`ModelSource`). Adding an engine (a thread pool, Ray, a GPU
stream) is one class with :meth:`Engine.map_chunks` and :meth:`Engine.close`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fntk.errors import InputError
from fntk.features.options import FeatureMapOptions
from fntk.models import ModelBackend

Item = TypeVar("Item")
Result = TypeVar("Result")
Stage = Callable[[ModelBackend, Any], Any]
"""``stage(backend, item) -> result``: a module-level function (or a partial of one)."""


class Engine(Protocol):
    """Runs stages over chunks; results come back in item order."""

    def map_chunks(
        self, stage: Callable[[ModelBackend, Item], Result], items: Iterable[Item]
    ) -> Iterator[Result]:
        """``stage(backend, item)`` for each item, in item order; items are drawn lazily."""
        ...

    def close(self) -> None:
        """Release what the engine started (workers, a cluster)."""
        ...


class InProcess:
    """The one-process engine: each stage runs here, on ``backend``, when its result is asked
    for."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend

    def map_chunks(
        self, stage: Callable[[ModelBackend, Item], Result], items: Iterable[Item]
    ) -> Iterator[Result]:
        """``stage(backend, item)`` for each item, one at a time."""
        for item in items:
            yield stage(self.backend, item)

    def close(self) -> None:
        """Nothing to release."""


def weights_hash(backend: ModelBackend) -> str:
    """SHA-256 (first 32 hex digits) of the model's parameters and buffers, by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(backend.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ModelSource:
    """What an engine's worker needs to load the client's model: its spec, the feature options
    (device, dtype) and the weights hash the loaded model must have."""

    spec: str
    options: FeatureMapOptions
    weights: str

    @classmethod
    def of(cls, backend: ModelBackend, options: FeatureMapOptions) -> ModelSource:
        """The source of an already loaded ``backend``."""
        return cls(backend.spec, options, weights_hash(backend))

    def load(self) -> ModelBackend:
        """Load the model.

        Raises
        ------
        InputError
            The loaded weights differ from the client's (another model version installed).
        """
        from fntk.features.registry import load_backend_for

        backend = load_backend_for(self.spec, self.options)
        found = weights_hash(backend)
        if found != self.weights:
            raise InputError(
                f"worker loaded model {self.spec} with weights {found}, the client has "
                f"{self.weights}",
                hint="install the same fntk and model versions on every worker",
            )
        return backend
