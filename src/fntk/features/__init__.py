"""Feature maps (embedding, energy NTK, force NTK, joint NTK), their options and the store.

Each map turns a chunk of structures into feature blocks Phi(x) in R^{m(x) x d}, returned as a
ragged :class:`~fntk.chunk.FeatureChunk` (DESIGN.md section 2); :class:`FeatureStore` keeps
chunks on disk. Names are imported lazily (PEP 562): the options and the registry need no
torch, so CLI help and option parsing stay fast; the maps load torch when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ENERGY_ROW": "fntk.chunk",
    "FORCE_ROW": "fntk.chunk",
    "FeatureChunk": "fntk.chunk",
    "EmbeddingFeatureMap": "fntk.features.embedding",
    "NTKFeatureMap": "fntk.features.ntk",
    "EmbeddingOptions": "fntk.features.options",
    "EnergyNTKOptions": "fntk.features.options",
    "FeatureMapOptions": "fntk.features.options",
    "ForceNTKOptions": "fntk.features.options",
    "JointNTKOptions": "fntk.features.options",
    "options_to_json": "fntk.features.options",
    "force_row_weight": "fntk.features.options",
    "parse_feature_options": "fntk.features.options",
    "DEFAULT_FEATURE_MAP": "fntk.features.registry",
    "FEATURE_MAPS": "fntk.features.registry",
    "FEATURE_MAP_NAMES": "fntk.features.registry",
    "FeatureMap": "fntk.features.registry",
    "build_feature_map": "fntk.features.registry",
    "compute_features": "fntk.features.registry",
    "default_options": "fntk.features.registry",
    "has_energy_rows": "fntk.features.registry",
    "has_force_rows": "fntk.features.registry",
    "option_names": "fntk.features.registry",
    "weighs_force_rows": "fntk.features.registry",
    "load_backend_for": "fntk.features.registry",
    "sketch_column": "fntk.features.sketch",
    "sketch_matrix": "fntk.features.sketch",
    "FeatureStore": "fntk.features.store",
}

__all__ = [
    "DEFAULT_FEATURE_MAP",
    "ENERGY_ROW",
    "FEATURE_MAPS",
    "FEATURE_MAP_NAMES",
    "FORCE_ROW",
    "EmbeddingFeatureMap",
    "EmbeddingOptions",
    "EnergyNTKOptions",
    "FeatureChunk",
    "FeatureMap",
    "FeatureMapOptions",
    "FeatureStore",
    "ForceNTKOptions",
    "JointNTKOptions",
    "NTKFeatureMap",
    "build_feature_map",
    "compute_features",
    "default_options",
    "force_row_weight",
    "has_energy_rows",
    "has_force_rows",
    "load_backend_for",
    "option_names",
    "options_to_json",
    "parse_feature_options",
    "sketch_column",
    "sketch_matrix",
    "weighs_force_rows",
]

if TYPE_CHECKING:
    from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
    from fntk.features.embedding import EmbeddingFeatureMap
    from fntk.features.ntk import NTKFeatureMap
    from fntk.features.options import (
        EmbeddingOptions,
        EnergyNTKOptions,
        FeatureMapOptions,
        ForceNTKOptions,
        JointNTKOptions,
        force_row_weight,
        options_to_json,
        parse_feature_options,
    )
    from fntk.features.registry import (
        DEFAULT_FEATURE_MAP,
        FEATURE_MAP_NAMES,
        FEATURE_MAPS,
        FeatureMap,
        build_feature_map,
        compute_features,
        default_options,
        has_energy_rows,
        has_force_rows,
        load_backend_for,
        option_names,
        weighs_force_rows,
    )
    from fntk.features.sketch import sketch_column, sketch_matrix
    from fntk.features.store import FeatureStore


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fntk.features' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
