"""Model backends: pretrained MLIPs behind one interface (see :mod:`fntk.models.base`)."""

from fntk.models.base import (
    PARAMETER_GROUPS,
    ModelBackend,
    ModelOutput,
    available_backends,
    check_model_spec,
    load_backend,
    reproducible_execution,
    resolve_device,
    torch_threads,
)
from fntk.models.graph import GraphBatch, build_graph_batch

__all__ = [
    "PARAMETER_GROUPS",
    "GraphBatch",
    "ModelBackend",
    "ModelOutput",
    "available_backends",
    "build_graph_batch",
    "check_model_spec",
    "load_backend",
    "reproducible_execution",
    "resolve_device",
    "torch_threads",
]
