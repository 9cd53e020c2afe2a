"""On-disk feature store: one ``.npz`` per chunk plus a ``meta.json`` naming how they were made.

``meta.json`` holds the feature-map options, the model spec, the chunk size, the number of
feature columns and the fntk version. Opening a store with different options, model or chunk
size raises :class:`~fntk.errors.InputError` listing the differences, so features made with other
settings are never mixed. Every file is written to a temporary sibling and renamed into place
(``os.replace``), so a crash leaves complete chunks only and a rerun resumes by skipping the
chunks already on disk (:meth:`FeatureStore.has_chunk`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fntk import __version__
from fntk.chunk import FeatureChunk
from fntk.errors import InputError
from fntk.features.options import FeatureMapOptions, parse_feature_options
from fntk.io import atomic_write_npz, atomic_write_text

META_FILE = "meta.json"
_CHUNK_PATTERN = "chunk-{:06d}.npz"


RUN_ONLY_OPTIONS = ("device", "batch_size", "max_batch_atoms")
"""Feature options that change how the model runs, not the values: not part of the identity, so
a store made with ``--device cuda`` resumes with ``--device cpu``."""


class FeatureStore:
    """A directory of feature chunks made by one map, model and chunk size.

    Use :meth:`create` to start or resume a run and :meth:`open` to read one back.

    Attributes
    ----------
    directory : Path
    options : FeatureMapOptions
    model_spec : str
    chunk_size : int
        Structures per chunk; chunk ``i`` holds stream positions ``i*chunk_size`` onwards.
    n_features : int
    """

    def __init__(
        self,
        directory: Path,
        options: FeatureMapOptions,
        model_spec: str,
        chunk_size: int,
        n_features: int,
    ) -> None:
        self.directory = directory
        self.options = options
        self.model_spec = model_spec
        self.chunk_size = chunk_size
        self.n_features = n_features

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike,
        options: FeatureMapOptions,
        model_spec: str,
        *,
        chunk_size: int,
        n_features: int,
    ) -> FeatureStore:
        """Start a store in ``directory``, or reopen it for resuming if it was made the same way.

        Raises
        ------
        InputError
            ``directory`` already holds a store made with other options, model or chunk size.
        """
        directory = Path(directory)
        store = cls(directory, options, model_spec, chunk_size, n_features)
        if (directory / META_FILE).exists():
            cls.open(directory, options=options, model_spec=model_spec)._check_same(store)
            return store
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / META_FILE, json.dumps(store._meta(), indent=2) + "\n")
        return store

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike,
        *,
        options: FeatureMapOptions | None = None,
        model_spec: str | None = None,
    ) -> FeatureStore:
        """Open an existing store; with ``options``/``model_spec``, refuse a mismatch.

        Raises
        ------
        InputError
            No ``meta.json`` in ``directory``, or it differs from the expected options or model.
        """
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise InputError(
                "not a feature store (no meta.json)",
                file=str(directory),
                hint="compute features first with `fntk features`",
            )
        meta = json.loads(meta_path.read_text())
        stored_options = parse_feature_options(meta["options"])
        missing = sorted(
            set(stored_options.model_dump(mode="json"))
            - set(meta["options"])
            - set(RUN_ONLY_OPTIONS)
        )
        if missing:
            # A newer option filled in by its default would hide a change of construction.
            raise InputError(
                "feature store was made by an earlier fntk "
                f"(its options lack {', '.join(missing)})",
                file=str(directory),
                hint="recompute the features into another output directory",
            )
        store = cls(
            directory,
            stored_options,
            meta["model"],
            int(meta["chunk_size"]),
            int(meta["n_features"]),
        )
        expected = cls(
            directory,
            options if options is not None else store.options,
            model_spec if model_spec is not None else store.model_spec,
            store.chunk_size,
            store.n_features,
        )
        store._check_same(expected)
        return store

    def chunk_path(self, chunk_id: int) -> Path:
        """File of chunk ``chunk_id``."""
        return self.directory / _CHUNK_PATTERN.format(chunk_id)

    def has_chunk(self, chunk_id: int) -> bool:
        """Whether chunk ``chunk_id`` is complete on disk (files appear only when complete)."""
        return self.chunk_path(chunk_id).is_file()

    def chunk_ids(self) -> list[int]:
        """Ids of the chunks on disk, ascending."""
        return sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("chunk-*.npz"))

    def write_chunk(self, chunk_id: int, chunk: FeatureChunk) -> None:
        """Write ``chunk`` as chunk ``chunk_id``, atomically."""
        if chunk.n_features != self.n_features:
            raise ValueError(
                f"chunk has {chunk.n_features} feature columns, the store {self.n_features}"
            )
        atomic_write_npz(self.chunk_path(chunk_id), **chunk.to_arrays())

    def read_chunk(self, chunk_id: int) -> FeatureChunk:
        """Chunk ``chunk_id`` as written."""
        with np.load(self.chunk_path(chunk_id)) as data:
            return FeatureChunk.from_arrays(data)

    def iter_chunks(self) -> Iterator[FeatureChunk]:
        """All chunks on disk in id order, one at a time."""
        for chunk_id in self.chunk_ids():
            yield self.read_chunk(chunk_id)

    def read_all(self) -> FeatureChunk:
        """All chunks concatenated (for pools that fit in memory)."""
        chunks = list(self.iter_chunks())
        if not chunks:
            raise InputError("feature store holds no chunks", file=str(self.directory))
        return FeatureChunk.concatenate(chunks)

    def _meta(self) -> dict:
        return {
            "fntk_version": __version__,
            "model": self.model_spec,
            "options": self.options.model_dump(mode="json", exclude=set(RUN_ONLY_OPTIONS)),
            "chunk_size": self.chunk_size,
            "n_features": self.n_features,
        }

    def _check_same(self, expected: FeatureStore) -> None:
        ours, theirs = self._meta(), expected._meta()
        differences = [
            f"{key}: stored {ours[key]!r}, asked for {theirs[key]!r}"
            for key in ("model", "chunk_size", "n_features")
            if ours[key] != theirs[key]
        ]
        stored, asked = ours["options"], theirs["options"]
        differences += [
            f"option {key}: stored {stored.get(key)!r}, asked for {asked.get(key)!r}"
            for key in sorted(set(stored) | set(asked))
            if stored.get(key) != asked.get(key)
        ]
        if differences:
            raise InputError(
                "feature store was made with other settings (" + "; ".join(differences) + ")",
                file=str(self.directory),
                hint="use the same settings to resume, or another output directory",
            )
