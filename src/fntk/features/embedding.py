"""The embedding feature map: pooled invariant node features of the last interaction layer.

One row per structure: the mean of the node features h_i over all atoms, optionally followed by
the mean over the atoms of each listed element (zeros where the element is absent), so the row
width is F (1 + n_elements) (DESIGN.md section 2). Cheap: one forward pass, no derivatives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from fntk.features.assembly import (
    assemble_chunk,
    check_backend_dtype,
    iter_batches,
)
from fntk.features.chunk import ENERGY_ROW, FeatureChunk
from fntk.features.options import EmbeddingOptions
from fntk.models.base import ModelBackend, reproducible_execution


class EmbeddingFeatureMap:
    """Mean-pooled (and optionally per-element pooled) node features; one row per structure.

    Parameters
    ----------
    options : EmbeddingOptions
    """

    def __init__(self, options: EmbeddingOptions) -> None:
        self.options = options

    def elements(self, backend: ModelBackend) -> tuple[int, ...]:
        """Atomic numbers of the per-element blocks, in column order (empty without them)."""
        if not self.options.per_element:
            return ()
        if self.options.elements is not None:
            return self.options.elements
        return tuple(sorted(backend.species))

    def n_features(self, backend: ModelBackend) -> int:
        """Row width F (1 + n_elements)."""
        return backend.n_node_features * (1 + len(self.elements(backend)))

    def describe(self, backend: ModelBackend) -> str:
        """One status line: map and width, e.g. for run.json."""
        d = self.n_features(backend)
        return f"embedding features: pooled node features of {backend.spec}, d={d}"

    def __call__(
        self,
        backend: ModelBackend,
        structures: Sequence[Atoms],
        source_index: Sequence[int] | np.ndarray | None = None,
    ) -> FeatureChunk:
        """Feature rows of ``structures``, shape (n_structures, n_features), all energy-kind.

        Parameters
        ----------
        backend : ModelBackend
            Loaded model; its dtype must match ``options.dtype``.
        structures : sequence of ase.Atoms
        source_index : array-like of int, shape (n_structures,), optional
            Global pool index of each structure (default ``0..n-1``).
        """
        check_backend_dtype(backend, self.options.dtype)
        elements = self.elements(backend)
        rows = []
        options = self.options
        for batch in iter_batches(structures, options.batch_size, options.max_batch_atoms):
            graph = backend.build_graph(batch)
            with torch.no_grad(), reproducible_execution():
                hidden = backend(graph).node_features
            groups = [graph.batch]
            # One pooling per block: atoms of other elements go to a dummy group n_graphs.
            for z in elements:
                groups.append(torch.where(graph.atomic_numbers == z, graph.batch, graph.n_graphs))
            pooled = []
            for group in groups:
                sums = torch.zeros(
                    graph.n_graphs + 1, hidden.shape[1], dtype=hidden.dtype, device=hidden.device
                ).index_add_(0, group, hidden)
                counts = torch.bincount(group, minlength=graph.n_graphs + 1).to(hidden.dtype)
                pooled.append(sums[:-1] / counts[:-1].clamp_min(1)[:, None])
            rows.append(torch.cat(pooled, dim=1).cpu().numpy())
        values = np.concatenate(rows)
        blocks = list(values[:, None, :])
        kinds = [np.full(1, ENERGY_ROW)] * len(blocks)
        return assemble_chunk(blocks, kinds, structures, source_index)
