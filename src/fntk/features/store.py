"""On-disk feature store: one ``.npz`` per chunk plus a ``meta.json`` naming how they were made.

``meta.json`` holds the identity of the features: the feature-map options that change values
(not device or batch size), the model spec and a hash of its weights, the chunk size, the number
of feature columns. Opening a store with a different identity raises
:class:`~fntk.errors.InputError` listing the differences, so features made with other settings
are never mixed.

Chunks of input files are keyed by the file's content (SHA-256): file ``f`` chunk ``k`` is
``sources/<sha256(f)[:32]>/chunk-<k>.npz`` and holds frames ``k*chunk_size ...`` of that file,
with source indices equal to frame indices. A file that changed on disk therefore never reuses
the chunks of its old content, the same file listed as pool in one round and as training set
in the next reuses its chunks, and a grown training set (a new file of labels) computes only the
new file. ``sources/<hash>/source.json`` records the path and frame count once a file is done.

Every chunk carries a SHA-256 checksum of its arrays; a truncated or corrupt chunk fails the
check, counts as missing (:meth:`FeatureStore.has_chunk`) and is recomputed, never used. Every
file is written to a temporary sibling and renamed into place (``os.replace``), so a crash (even
``kill -9``) leaves complete chunks only, and concurrent writers of one chunk leave one complete
copy. Format: npz per chunk (measured against zarr and HDF5 in README.md, "Feature store").
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fntk import __version__
from fntk.chunk import FeatureChunk
from fntk.errors import InputError
from fntk.features.options import FeatureMapOptions, parse_feature_options
from fntk.io import atomic_write_npz, atomic_write_text, prepare_output_dir
from fntk.io.lock import folder_lock

STORE_LOCK_WAIT_S = 30.0
"""Seconds a process creating a store waits for another one creating it (milliseconds' work)."""

META_FILE = "meta.json"
STORE_FORMAT = 2
"""Layout version in meta.json (2: content-keyed sources, checksummed chunks)."""
_CHUNK_PATTERN = "chunk-{:06d}.npz"
_CHECKSUM = "checksum"
_SOURCE_FILE = "source.json"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_checksum(arrays: dict[str, np.ndarray]) -> str:
    """Hex SHA-256 over the names, dtypes, shapes and bytes of ``arrays`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


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
    weights_hash : str
        Hash of the model's weights ("" when unknown); part of the identity.
    """

    def __init__(
        self,
        directory: Path,
        options: FeatureMapOptions,
        model_spec: str,
        chunk_size: int,
        n_features: int,
        weights_hash: str = "",
    ) -> None:
        self.directory = directory
        self.options = options
        self.model_spec = model_spec
        self.chunk_size = chunk_size
        self.n_features = n_features
        self.weights_hash = weights_hash

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike,
        options: FeatureMapOptions,
        model_spec: str,
        *,
        chunk_size: int,
        n_features: int,
        weights_hash: str = "",
    ) -> FeatureStore:
        """Start a store in ``directory``, or reopen it for resuming if it was made the same way.

        Raises
        ------
        InputError
            ``directory`` already holds a store made with other options, model, weights or
            chunk size.
        """
        directory = Path(directory)
        store = cls(directory, options, model_spec, chunk_size, n_features, weights_hash)
        check_store_folder(directory)
        if (directory / META_FILE).exists():
            cls.open(directory)._check_same(store)
            return store
        prepare_output_dir(directory, overwrite=True)  # a new store may go into any folder
        # the lock makes "no meta.json yet, write ours" one step: of two processes creating
        # one store, the second finds the first's meta.json and compares
        with folder_lock(directory, what="feature store", wait_s=STORE_LOCK_WAIT_S):
            if (directory / META_FILE).exists():
                cls.open(directory)._check_same(store)
            else:
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
        try:
            meta = json.loads(meta_path.read_text())
            stored_options = parse_feature_options(meta["options"])
            store = cls(
                directory,
                stored_options,
                meta["model"],
                int(meta["chunk_size"]),
                int(meta["n_features"]),
                str(meta.get("weights_hash", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            if not _is_store_meta(meta_path):
                raise _not_a_store(directory) from None
            raise InputError(
                f"meta.json of the feature store is unreadable ({type(exc).__name__})",
                file=str(meta_path),
                hint="delete the store directory and recompute",
            ) from None
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
        expected = cls(
            directory,
            options if options is not None else store.options,
            model_spec if model_spec is not None else store.model_spec,
            store.chunk_size,
            store.n_features,
            store.weights_hash,
        )
        store._check_same(expected)
        return store

    def chunk_path(self, chunk_id: int, source: str | None = None) -> Path:
        """File of chunk ``chunk_id``: of the input file with hash ``source``, or of the store."""
        return self.source_dir(source) / _CHUNK_PATTERN.format(chunk_id)

    def source_dir(self, source: str | None) -> Path:
        """Folder of the chunks of the file with content hash ``source`` (store root if None)."""
        return self.directory if source is None else self.directory / "sources" / source[:32]

    def source_record(self, source: str) -> dict | None:
        """``{"path", "n_frames", "n_chunks"}`` of a finished source file, or None."""
        path = self.source_dir(source) / _SOURCE_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def finish_source(self, source: str, path: str, n_frames: int) -> None:
        """Record that all chunks of the file with hash ``source`` (``n_frames``) are done."""
        n_chunks = -(-n_frames // self.chunk_size)
        record = {"path": path, "sha256": source, "n_frames": n_frames, "n_chunks": n_chunks}
        atomic_write_text(self.source_dir(source) / _SOURCE_FILE, json.dumps(record) + "\n")

    def has_chunk(self, chunk_id: int, source: str | None = None) -> bool:
        """Whether chunk ``chunk_id`` (of ``source``, a file hash) is on disk and intact.

        A chunk that fails to load or whose checksum does not match counts as missing (and is
        overwritten by the next write).
        """
        return self._load(self.chunk_path(chunk_id, source)) is not None

    def chunk_ids(self) -> list[int]:
        """Ids of the chunks on disk, ascending."""
        return sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("chunk-*.npz"))

    def write_chunk(
        self,
        chunk_id: int,
        chunk: FeatureChunk,
        source: str | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write ``chunk`` (and ``extra`` arrays) as chunk ``chunk_id``, atomically."""
        if chunk.n_features != self.n_features:
            raise ValueError(
                f"chunk has {chunk.n_features} feature columns, the store {self.n_features}"
            )
        arrays = {**chunk.to_arrays(), **{f"extra_{k}": v for k, v in (extra or {}).items()}}
        arrays[_CHECKSUM] = np.array(chunk_checksum(arrays))
        atomic_write_npz(self.chunk_path(chunk_id, source), **arrays)

    def read_chunk(self, chunk_id: int, source: str | None = None) -> FeatureChunk:
        """Chunk ``chunk_id`` as written (checksum verified).

        Raises
        ------
        InputError
            The chunk is missing, truncated or fails its checksum.
        """
        return self.read_chunk_with_extra(chunk_id, source)[0]

    def read_chunk_with_extra(
        self, chunk_id: int, source: str | None = None
    ) -> tuple[FeatureChunk, dict[str, np.ndarray]]:
        """Chunk ``chunk_id`` and the ``extra`` arrays written with it (checksum verified)."""
        path = self.chunk_path(chunk_id, source)
        arrays = self._load(path)
        if arrays is None:
            raise InputError(
                "feature chunk is missing, truncated or fails its checksum",
                file=str(path),
                hint="rerun the same command to recompute it",
            )
        extra = {k[len("extra_") :]: v for k, v in arrays.items() if k.startswith("extra_")}
        return FeatureChunk.from_arrays(arrays), extra

    @staticmethod
    def _load(path: Path) -> dict[str, np.ndarray] | None:
        """The arrays of a chunk file, or None if it is absent, unreadable or corrupt."""
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        stored = arrays.pop(_CHECKSUM, None)
        if stored is None or str(stored) != chunk_checksum(arrays):
            return None
        return arrays

    def read_source(self, path: str | os.PathLike) -> FeatureChunk:
        """All features of the input file ``path`` (source index = frame index), verified.

        Raises
        ------
        InputError
            The file's current content was not (completely) featurised into this store, or a
            chunk of it is corrupt.
        """
        source = file_sha256(path)
        record = self.source_record(source)
        if record is None:
            raise InputError(
                "this file (its current content) is not complete in the feature store",
                file=str(path),
                hint=f"compute it with `fntk features {path} -o {self.directory}`",
            )
        return FeatureChunk.concatenate(
            [self.read_chunk(k, source) for k in range(int(record["n_chunks"]))]
        )

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
            "store_format": STORE_FORMAT,
            "model": self.model_spec,
            "weights_hash": self.weights_hash,
            "options": self.options.model_dump(mode="json", exclude=set(RUN_ONLY_OPTIONS)),
            "chunk_size": self.chunk_size,
            "n_features": self.n_features,
        }

    def _check_same(self, expected: FeatureStore) -> None:
        ours, theirs = self._meta(), expected._meta()
        differences = [
            f"{key}: stored {ours[key]!r}, asked for {theirs[key]!r}"
            for key in ("model", "weights_hash", "chunk_size", "n_features")
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


_META_KEYS = frozenset({"store_format", "model", "options", "chunk_size", "n_features"})


def _is_store_meta(path: Path) -> bool:
    """Whether ``path`` looks like a feature store's meta.json (fntk wrote it)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and _META_KEYS <= set(meta)


def _not_a_store(directory: Path, flag: str = "") -> InputError:
    return InputError(
        f"is not a feature store: its {META_FILE} was not written by fntk",
        file=str(directory),
        hint=f"give {flag + ' ' if flag else ''}another folder; nothing was changed",
    )


def check_store_folder(directory: str | os.PathLike, *, flag: str = "") -> None:
    """Raise :class:`InputError` unless ``directory`` may hold a feature store (creates nothing).

    Accepted: a folder with a store's ``meta.json``, or a path where a new store can be made (a
    writable folder without ``meta.json``, which a store may join, or a path to create).
    ``flag`` names the option that gave the path (``--store``, ``-o``), for the message.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise InputError(
            "exists and is not a directory (a feature store is a folder)",
            file=f"{flag} {path}" if flag else str(path),
            hint=f"give {flag + ' ' if flag else ''}a folder",
        )
    meta = path / META_FILE
    if meta.exists():
        if not _is_store_meta(meta):
            raise _not_a_store(path, flag)
        return  # an existing store may be read-only: its complete chunks are only read
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{'folder' if existing == path else f'its parent {existing}'} is not writable "
            "(a feature store writes its chunks there)",
            file=f"{flag} {path}" if flag else str(path),
            hint=f"give {flag + ' ' if flag else ''}a writable folder",
        )
