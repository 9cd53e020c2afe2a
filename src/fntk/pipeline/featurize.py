"""Feature chunks of structure files, computed or reused from a feature store.

:class:`ChunkFeaturizer` streams files in chunks and yields each chunk's structures with its
feature blocks. Without a store every chunk is computed. With a store
(:class:`~fntk.features.store.FeatureStore`) each file is streamed on its own, keyed by its
content hash, and chunk ``k`` of a file is read back when it is on disk and intact, computed and
written otherwise; so a killed run resumes without recomputing finished chunks and a later round
reuses every chunk of unchanged files. Source indices are running indices over all files, as
:func:`fntk.io.iter_chunks` numbers them, in both cases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from fntk.chunk import FeatureChunk
from fntk.engine import weights_hash
from fntk.features import build_feature_map
from fntk.features.options import FeatureMapOptions
from fntk.features.registry import compute_features
from fntk.features.store import FeatureStore, file_sha256
from fntk.io import expand_paths, iter_chunks
from fntk.io.formats import parse_source
from fntk.io.read import StructureChunk
from fntk.models import ModelBackend


def open_store(
    directory: str | Path, backend: ModelBackend, options: FeatureMapOptions, chunk_size: int
) -> FeatureStore:
    """Create or reopen the store of ``backend``'s ``options`` features in ``directory``.

    Raises
    ------
    InputError
        ``directory`` holds a store of another model, weights, feature options or chunk size.
    """
    return FeatureStore.create(
        directory,
        options,
        backend.spec,
        chunk_size=chunk_size,
        n_features=build_feature_map(options).n_features(backend),
        weights_hash=weights_hash(backend),
    )


class ChunkFeaturizer:
    """Stream files as ``(structures, features)`` chunks, through a store when one is given.

    Attributes
    ----------
    computed_chunks, reused_chunks : int
        Chunks featurised by the model and chunks read back from the store, so far.
    """

    def __init__(
        self,
        backend: ModelBackend,
        options: FeatureMapOptions,
        chunk_size: int,
        store: FeatureStore | None = None,
        skip_unsupported: bool = False,
    ) -> None:
        self.backend = backend
        self.options = options
        self.chunk_size = chunk_size
        self.store = store
        self.skip_unsupported = skip_unsupported
        self.computed_chunks = 0
        self.reused_chunks = 0
        self.skipped: list[dict[str, object]] = []
        self._read_sources: list[tuple[str, str, int]] = []

    def chunks(
        self, files: Sequence[str], split: str = "pool"
    ) -> Iterator[tuple[StructureChunk, FeatureChunk]]:
        """Chunks of ``files`` (validated against the model's species) and their features.

        With ``skip_unsupported``, structures with elements the model lacks are left out of the
        chunks and listed in :attr:`skipped` (with ``split``); source indices still count them.
        """
        for read, supported, features in self.read_chunks(files, split):
            yield subset_structures(read, supported), features

    def read_chunks(
        self, files: Sequence[str], split: str = "pool"
    ) -> Iterator[tuple[StructureChunk, list[int], FeatureChunk]]:
        """Every chunk as read, the positions of its supported structures and their features.

        ``features`` holds the blocks of ``read.structures[j]`` for ``j`` in ``supported``, in
        that order; without ``skip_unsupported`` every structure is supported.
        """
        species = None if self.skip_unsupported else self.backend.species
        if self.store is None:
            for read in iter_chunks(files, self.chunk_size, species=species):
                supported = self._supported(read, split)
                if supported:
                    self.computed_chunks += 1
                    yield read, supported, self._compute(subset_structures(read, supported))
            return
        for read, supported, where in self.stored_chunks(files, split):
            chunk = subset_structures(
                _with_indices(read, read.global_indices - where.offset), supported
            )
            features, computed = stored_features(
                self.backend, self.options, self.store, where, chunk
            )
            self.count(computed)
            indices = read.global_indices[supported]
            yield read, supported, _features_with_indices(features, indices)
        self.finish_sources()

    def stored_chunks(
        self, files: Sequence[str], split: str = "pool"
    ) -> Iterator[tuple[StructureChunk, list[int], StoreChunk]]:
        """Every chunk as read (running source indices), its supported positions and its place
        in the store, without featurising (the read stage of the pool pass; an engine makes the
        features).

        Chunks without supported structures are left out. Files read to the end are recorded
        for :meth:`finish_sources` (call it once all their chunks are in the store). Without a
        store, ``source`` is ``""``.
        """
        species = None if self.skip_unsupported else self.backend.species
        offset = 0
        for spec in expand_paths(files):
            source = "" if self.store is None else file_sha256(parse_source(spec).path)
            n_frames = 0
            for k, read in enumerate(iter_chunks([spec], self.chunk_size, species=species)):
                n_frames += len(read)
                supported = self._supported(read, split)
                if supported:
                    shifted = _with_indices(read, read.global_indices + offset)
                    yield shifted, supported, StoreChunk(source, k, offset)
            self._read_sources.append((source, spec, n_frames))
            offset += n_frames

    def count(self, computed: bool) -> None:
        """Count one chunk as computed by the model or read back from the store."""
        if computed:
            self.computed_chunks += 1
        else:
            self.reused_chunks += 1

    def finish_sources(self) -> None:
        """Record the files read to the end by :meth:`stored_chunks` as complete in the store."""
        for source, spec, n_frames in self._read_sources:
            if self.store is not None and self.store.source_record(source) is None:
                self.store.finish_source(source, spec, n_frames)
        self._read_sources.clear()

    def _compute(self, chunk: StructureChunk) -> FeatureChunk:
        return compute_features(self.backend, chunk.structures, self.options, chunk.global_indices)

    def _supported(self, chunk: StructureChunk, split: str) -> list[int]:
        """Positions in ``chunk`` of structures the model covers (the others go to skipped)."""
        if not self.skip_unsupported:
            return list(range(len(chunk)))
        keep = []
        for j, atoms in enumerate(chunk.structures):
            unknown = self.backend.check_species(atoms.numbers)
            if unknown:
                self.skipped.append(
                    {
                        "split": split,
                        "source_file": chunk.source_files[j],
                        "source_index": chunk.frame_indices[j],
                        "unsupported_elements": [chemical_symbols[z] for z in unknown],
                    }
                )
            else:
                keep.append(j)
        return keep


@dataclass(frozen=True)
class StoreChunk:
    """Place of a chunk in a feature store: chunk ``index`` of the file with hash ``source``,
    whose frame 0 has running source index ``offset``."""

    source: str
    index: int
    offset: int


def stored_features(
    backend: ModelBackend,
    options: FeatureMapOptions,
    store: FeatureStore,
    where: StoreChunk,
    chunk: StructureChunk,
) -> tuple[FeatureChunk, bool]:
    """Features of ``chunk`` (source indices = frame indices in its file), read from ``store``
    when chunk ``where`` is there, intact and of the same frames, else computed and written.

    Returns
    -------
    features : FeatureChunk
        Source indices are the frame indices of ``chunk``.
    computed : bool
        Whether the model ran (False: read back from the store).
    """
    if store.has_chunk(where.index, where.source):
        features = store.read_chunk(where.index, where.source)
        # Another chunking, a partial chunk or other skipped frames: recompute.
        if np.array_equal(features.source_index, chunk.global_indices):
            return features, False
    features = compute_features(backend, chunk.structures, options, chunk.global_indices)
    store.write_chunk(where.index, features, source=where.source)
    return features, True


def subset_structures(chunk: StructureChunk, keep: list[int]) -> StructureChunk:
    """The structures of ``chunk`` at positions ``keep`` (``chunk`` itself when all are kept)."""
    if len(keep) == len(chunk):
        return chunk
    return StructureChunk(
        structures=[chunk.structures[j] for j in keep],
        source_files=[chunk.source_files[j] for j in keep],
        frame_indices=[chunk.frame_indices[j] for j in keep],
        global_indices=chunk.global_indices[keep],
    )


def _with_indices(chunk: StructureChunk, indices: np.ndarray) -> StructureChunk:
    return StructureChunk(chunk.structures, chunk.source_files, chunk.frame_indices, indices)


def _features_with_indices(chunk: FeatureChunk, indices: np.ndarray) -> FeatureChunk:
    return FeatureChunk(
        values=chunk.values,
        offsets=chunk.offsets,
        source_index=np.asarray(indices, dtype=np.int64),
        n_atoms=chunk.n_atoms,
        row_kind=chunk.row_kind,
    )
