"""The registry of feature maps and the one entry point that computes features.

Each entry carries the map's name (the ``name`` literal of its options class, so map names,
options and CLI choices come from one source), its options class, a one-line help text, its row
kinds as capabilities (``energy-rows``, ``force-rows``) and the map class, named by import path
so that listing the maps (CLI choices, ``--help``) does not load torch.
:func:`compute_features` is what the pipeline, the store and the bench call: a pure function of
(backend, structures, options).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
from pydantic import BaseModel

from fntk.features.options import (
    EmbeddingOptions,
    EnergyNTKOptions,
    FeatureMapOptions,
    ForceNTKOptions,
    JointNTKOptions,
)
from fntk.registry import Entry, Registry

if TYPE_CHECKING:
    from ase import Atoms

    from fntk.chunk import FeatureChunk
    from fntk.models.base import ModelBackend


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


FEATURE_MAPS: Registry[str] = Registry("feature map")
"""Feature maps by name; the component is the map class's ``module:Class`` path."""

for _options, _path, _help, _rows in (
    (
        EmbeddingOptions,
        "fntk.features.embedding:EmbeddingFeatureMap",
        "pooled last-layer node features, 1 row",
        {"energy-rows"},
    ),
    (
        EnergyNTKOptions,
        "fntk.features.ntk:NTKFeatureMap",
        "energy gradient dE/dtheta, sketched, 1 row",
        {"energy-rows"},
    ),
    (
        ForceNTKOptions,
        "fntk.features.ntk:NTKFeatureMap",
        "force Jacobian dF/dtheta, sketched, 3N rows",
        {"force-rows"},
    ),
    (
        JointNTKOptions,
        "fntk.features.ntk:NTKFeatureMap",
        "energy row and weighted force rows, 1 + 3N rows (default)",
        {"energy-rows", "force-rows"},
    ),
):
    FEATURE_MAPS.add(
        Entry(
            _options.model_fields["name"].default,
            _path,
            _help,
            _options.model_fields["name"].default,
            _options,
            frozenset(_rows),
        )
    )

FEATURE_MAP_NAMES: tuple[str, ...] = FEATURE_MAPS.names()
"""Registered map names: ``embedding``, ``energy-ntk``, ``force-ntk``, ``joint``."""

DEFAULT_FEATURE_MAP = JointNTKOptions.model_fields["name"].default
"""The map of ``fntk select``, ``fntk features`` and ``fntk demo`` by default (``joint``)."""


def has_energy_rows(name: str) -> bool:
    """Whether the map ``name`` gives an energy row per structure (its ``energy-rows``)."""
    return "energy-rows" in FEATURE_MAPS.entry(name).capabilities


def has_force_rows(name: str) -> bool:
    """Whether the map ``name`` gives 3N force rows per structure (its ``force-rows``)."""
    return "force-rows" in FEATURE_MAPS.entry(name).capabilities


def weighs_force_rows(name: str) -> bool:
    """Whether the map ``name`` mixes energy and force rows, and so weighs the force rows by
    lambda (``force_weight``, DESIGN.md section 2)."""
    return has_energy_rows(name) and has_force_rows(name)


def option_names(name: str) -> frozenset[str]:
    """The option fields of the map ``name`` (``group``, ``dim``, ``seed``, ...)."""
    options_class = FEATURE_MAPS.entry(name).options
    assert options_class is not None and issubclass(options_class, BaseModel)
    return frozenset(options_class.model_fields)


def default_options(name: str, **overrides: object) -> FeatureMapOptions:
    """Options of the map ``name`` with its defaults, updated by ``overrides`` (validated).

    Raises
    ------
    InputError
        Unknown map name (the one-line message lists the valid ones).
    pydantic.ValidationError
        Unknown option or invalid value.
    """
    options_class = FEATURE_MAPS.entry(name).options
    assert options_class is not None
    options: FeatureMapOptions = options_class(**overrides)
    return options


def build_feature_map(options: FeatureMapOptions) -> FeatureMap:
    """The feature map that ``options`` configures."""
    module, _, cls = FEATURE_MAPS.get(options.name).partition(":")
    feature_map: FeatureMap = getattr(importlib.import_module(module), cls)(options)
    return feature_map


def load_backend_for(spec: str, options: FeatureMapOptions) -> ModelBackend:
    """Load model ``spec`` on the device and in the dtype that ``options`` ask for."""
    import torch

    from fntk.models.base import load_backend

    return load_backend(spec, device=options.device, dtype=getattr(torch, options.dtype))


def compute_features(
    backend: ModelBackend,
    structures: Sequence[Atoms],
    options: FeatureMapOptions,
    source_index: Sequence[int] | np.ndarray | None = None,
) -> FeatureChunk:
    """Feature blocks of ``structures`` under ``options`` (see :mod:`fntk.features.ntk`)."""
    return build_feature_map(options)(backend, structures, source_index)
