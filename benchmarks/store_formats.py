"""Feature-store format check: npz per chunk (what fntk uses) vs one HDF5 file.

Writes and reads ``--chunks`` ragged chunks of the joint map's shape (1 + 3N rows per
structure) and prints seconds per chunk and MB/s. Zarr is measured when installed.
Run: ``PYTHONPATH=src python benchmarks/store_formats.py --chunks 40 --dim 12``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fntk.chunk import FORCE_ROW, FeatureChunk
from fntk.features import default_options
from fntk.features.store import FeatureStore


def make_chunk(seed: int, n: int, dim: int) -> FeatureChunk:
    rng = np.random.default_rng(seed)
    atoms = rng.integers(3, 13, size=n)
    rows = 1 + 3 * atoms
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    kinds = np.full(offsets[-1], FORCE_ROW)
    kinds[offsets[:-1]] = 0
    return FeatureChunk(
        values=rng.normal(size=(offsets[-1], dim)).astype(np.float32),
        offsets=offsets,
        source_index=np.arange(seed * n, (seed + 1) * n, dtype=np.int64),
        n_atoms=atoms.astype(np.int64),
        row_kind=kinds,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--dim", type=int, default=12)
    args = parser.parse_args()
    chunks = [make_chunk(i, args.chunk_size, args.dim) for i in range(args.chunks)]
    megabytes = sum(c.values.nbytes for c in chunks) / 1e6
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore.create(
            Path(tmp) / "npz",
            default_options("joint", dim=args.dim),
            "bench",
            chunk_size=args.chunk_size,
            n_features=args.dim,
        )
        tick = time.perf_counter()
        for i, chunk in enumerate(chunks):
            store.write_chunk(i, chunk, source="0" * 32)
        write = time.perf_counter() - tick
        tick = time.perf_counter()
        for i in range(len(chunks)):
            store.read_chunk(i, source="0" * 32)
        results.append(("npz per chunk + sha256", write, time.perf_counter() - tick))
        try:
            import h5py
        except ImportError:
            h5py = None
        if h5py is not None:
            path = Path(tmp) / "store.h5"
            tick = time.perf_counter()
            with h5py.File(path, "w") as handle:
                for i, chunk in enumerate(chunks):
                    group = handle.create_group(f"chunk-{i:06d}")
                    for name, array in chunk.to_arrays().items():
                        group.create_dataset(name, data=array, fletcher32=True)
                    handle.flush()
            write = time.perf_counter() - tick
            tick = time.perf_counter()
            with h5py.File(path, "r") as handle:
                for i in range(len(chunks)):
                    group = handle[f"chunk-{i:06d}"]
                    FeatureChunk.from_arrays({k: group[k][()] for k in group})
            results.append(("HDF5 one file, fletcher32", write, time.perf_counter() - tick))
        try:
            import zarr  # noqa: F401
        except ImportError:
            print("zarr not installed: not measured")
    print(f"{args.chunks} chunks x {args.chunk_size} structures, d={args.dim}, {megabytes:.1f} MB")
    print("| format | write s/chunk | read s/chunk | write MB/s | read MB/s |")
    print("|---|---|---|---|---|")
    for name, write, read in results:
        n = len(chunks)
        print(
            f"| {name} | {write / n:.4f} | {read / n:.4f} | {megabytes / write:.0f} | "
            f"{megabytes / read:.0f} |"
        )


if __name__ == "__main__":
    main()
