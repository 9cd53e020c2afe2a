"""Feature maps (embedding, energy NTK, force NTK, joint NTK), their options and the store.

Each map turns a chunk of structures into feature blocks Phi(x) in R^{m(x) x d}, returned as a
ragged :class:`FeatureChunk` (DESIGN.md section 2); :class:`FeatureStore` keeps chunks on disk.
"""

from fntk.features.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
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
from fntk.features.pipeline import (
    FEATURE_MAP_NAMES,
    FeatureMap,
    build_feature_map,
    compute_features,
    default_options,
    load_backend_for,
)
from fntk.features.sketch import sketch_column, sketch_matrix
from fntk.features.store import FeatureStore

__all__ = [
    "ENERGY_ROW",
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
    "load_backend_for",
    "options_to_json",
    "parse_feature_options",
    "sketch_column",
    "sketch_matrix",
]
