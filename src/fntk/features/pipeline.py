"""Wiring of the feature maps: a registry keyed by the options' ``name`` and one entry point.

The registry keys are the ``name`` literals of the options classes, so the map names, the
options and the CLI choices come from one source. :func:`compute_features` is what the CLI, the
store and the Dask layer call: a pure function of (backend, structures, options).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, get_args

import numpy as np
import torch
from ase import Atoms

from fntk.features.chunk import FeatureChunk
from fntk.features.embedding import EmbeddingFeatureMap
from fntk.features.ntk import NTKFeatureMap
from fntk.features.options import (
    EmbeddingOptions,
    EnergyNTKOptions,
    FeatureMapOptions,
    ForceNTKOptions,
    JointNTKOptions,
)
from fntk.models.base import ModelBackend, load_backend


class FeatureMap(Protocol):
    """A feature map: a pure function of (backend, structures) returning a chunk of blocks."""

    options: FeatureMapOptions

    def n_features(self, backend: ModelBackend) -> int: ...

    def describe(self, backend: ModelBackend) -> str: ...

    def __call__(
        self,
        backend: ModelBackend,
        structures: Sequence[Atoms],
        source_index: Sequence[int] | np.ndarray | None = None,
    ) -> FeatureChunk: ...


_OPTIONS_CLASSES = (EmbeddingOptions, EnergyNTKOptions, ForceNTKOptions, JointNTKOptions)
_MAPS: dict[str, Callable[[FeatureMapOptions], FeatureMap]] = {
    EmbeddingOptions.model_fields["name"].default: EmbeddingFeatureMap,
    EnergyNTKOptions.model_fields["name"].default: NTKFeatureMap,
    ForceNTKOptions.model_fields["name"].default: NTKFeatureMap,
    JointNTKOptions.model_fields["name"].default: NTKFeatureMap,
}
FEATURE_MAP_NAMES: tuple[str, ...] = tuple(
    get_args(cls.model_fields["name"].annotation)[0] for cls in _OPTIONS_CLASSES
)
"""Registered map names: ``embedding``, ``energy-ntk``, ``force-ntk``, ``joint``."""


def default_options(name: str, **overrides: object) -> FeatureMapOptions:
    """Options of the map ``name`` with its defaults, updated by ``overrides`` (validated).

    Raises
    ------
    ValueError
        Unknown map name (the message lists the valid ones).
    pydantic.ValidationError
        Unknown option or invalid value.
    """
    for cls in _OPTIONS_CLASSES:
        if cls.model_fields["name"].default == name:
            return cls(**overrides)
    raise ValueError(f"unknown feature map {name!r}; choose one of {', '.join(FEATURE_MAP_NAMES)}")


def build_feature_map(options: FeatureMapOptions) -> FeatureMap:
    """The feature map that ``options`` configures."""
    return _MAPS[options.name](options)


def load_backend_for(spec: str, options: FeatureMapOptions) -> ModelBackend:
    """Load model ``spec`` on the device and in the dtype that ``options`` ask for."""
    return load_backend(spec, device=options.device, dtype=getattr(torch, options.dtype))


def compute_features(
    backend: ModelBackend,
    structures: Sequence[Atoms],
    options: FeatureMapOptions,
    source_index: Sequence[int] | np.ndarray | None = None,
) -> FeatureChunk:
    """Feature blocks of ``structures`` under ``options`` (see :mod:`fntk.features.ntk`)."""
    return build_feature_map(options)(backend, structures, source_index)
