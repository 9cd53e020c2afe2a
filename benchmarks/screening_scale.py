"""Scale of ``fntk select`` through the feature store (issue 10).

Part 1, ``--pool N``: the whole select job (default model SevenNet-0, joint features) on a
generated, unlabelled pool of small molecules (the xtb-reactions molecules, 3-12 atoms, rattled
as MD snapshots), through a fresh feature store, then again from the filled store (a second
round); seconds per stage per structure and the peak RSS of the process.

Part 2, ``--synthetic N``: the stages after the features (precision, shortlist scoring and merge,
lcmd selection) on N synthetic joint-shaped feature blocks streamed from a store; seconds per
structure, peak RSS growth.

Run: ``PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/screening_scale.py --pool 200
--synthetic 50000 200000``. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_pool(n: int, seed: int) -> list:
    """``n`` rattled copies of the xtb-reactions molecules (3-12 atoms), no labels."""
    from ase.build import molecule

    from fntk.data.xtb_reactions import SPLITS

    rng = np.random.default_rng(seed)
    names = [m for m in SPLITS["pool"] if 3 <= len(molecule(m)) <= 12]
    pool = []
    for i in range(n):
        atoms = molecule(str(rng.choice(names)))
        atoms.info.clear()
        atoms.rattle(0.1, seed=int(seed * 1_000_003 + i))
        pool.append(atoms)
    return pool


def whole_job(n_pool: int, n_train: int, root: Path) -> list[str]:
    import ase.io

    from fntk.pipeline import build_run_options, run_selection

    ase.io.write(root / "pool.xyz", make_pool(n_pool, 1))
    ase.io.write(root / "train.xyz", make_pool(n_train, 2))
    options = build_run_options(n=20, device="cpu", chunk_size=50)
    lines = [
        f"### Whole job: {n_pool} pool + {n_train} train structures, SevenNet-0 joint d=12, "
        "chunk 50, 1 process",
        "",
        "| run | stage | s | s / structure |",
        "|---|---|---|---|",
    ]
    picks = []
    for label in ("fresh store", "second round (store filled)"):
        tick = time.perf_counter()
        run = run_selection(
            [str(root / "pool.xyz")], [str(root / "train.xyz")], options, store=root / "store"
        )
        total = time.perf_counter() - tick
        picks.append(run.result.indices.tolist())
        for stage, seconds in run.timings_s.items():
            lines.append(f"| {label} | {stage} | {seconds:.2f} | {seconds / n_pool:.2e} |")
        lines.append(f"| {label} | **total** | {total:.2f} | {total / n_pool:.2e} |")
        lines.append(
            f"| {label} | chunks computed / reused | {run.store['computed_chunks']} / "
            f"{run.store['reused_chunks']} | |"
        )
    lines += [
        "",
        f"identical picks in both rounds: {picks[0] == picks[1]}; peak RSS {peak_rss_mb():.0f} MB",
        "",
    ]
    return lines


def synthetic_chunk(start: int, n: int, dim: int, rng: np.random.Generator):
    from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk

    atoms = rng.integers(3, 13, size=n)
    rows = 1 + 3 * atoms
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    kinds = np.full(offsets[-1], FORCE_ROW)
    kinds[offsets[:-1]] = ENERGY_ROW
    return FeatureChunk(
        values=rng.normal(size=(offsets[-1], dim)).astype(np.float32),
        offsets=offsets,
        source_index=np.arange(start, start + n, dtype=np.int64),
        n_atoms=atoms.astype(np.int64),
        row_kind=kinds,
    )


def post_feature_stages(sizes: list[int], root: Path, dim: int = 12) -> list[str]:
    from fntk.features import default_options
    from fntk.features.store import FeatureStore
    from fntk.select import SelectOptions, Selector

    chunk_size = 256
    lines = [
        f"### Stages after the features: synthetic joint blocks (3-12 atoms, d={dim}), "
        f"chunks of {chunk_size} from an npz store, 1000 train structures, lcmd n=100, M=1000",
        "",
        "| pool | write store s | precision s | shortlist+select s | s / structure "
        "(after features) | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    train = [synthetic_chunk(10**9 + i * chunk_size, chunk_size, dim, rng) for i in range(4)]
    for n in sizes:
        store = FeatureStore.create(
            root / f"syn{n}",
            default_options("joint", dim=dim),
            "synthetic",
            chunk_size=chunk_size,
            n_features=dim,
        )
        tick = time.perf_counter()
        n_chunks = -(-n // chunk_size)
        for k in range(n_chunks):
            size = min(chunk_size, n - k * chunk_size)
            store.write_chunk(k, synthetic_chunk(k * chunk_size, size, dim, rng), source="s" * 32)
        write = time.perf_counter() - tick
        tick = time.perf_counter()
        selector = Selector.from_options(SelectOptions(method="lcmd")).fit(train)
        precision = time.perf_counter() - tick
        tick = time.perf_counter()
        pool = (store.read_chunk(k, source="s" * 32) for k in range(n_chunks))
        selector.select(pool, n=100, random_state=0)
        select = time.perf_counter() - tick
        lines.append(
            f"| {n} | {write:.1f} | {precision:.3f} | {select:.1f} | "
            f"{(precision + select) / n:.2e} | {peak_rss_mb():.0f} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--train", type=int, default=20)
    parser.add_argument("--synthetic", type=int, nargs="*", default=[50_000])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        if args.synthetic:
            lines += post_feature_stages(args.synthetic, Path(tmp))
        if args.pool:
            lines += whole_job(args.pool, args.train, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
