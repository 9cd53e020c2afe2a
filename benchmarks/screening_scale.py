"""Scale of ``fntk select`` through the feature store (issue 10).

Part 1, ``--pool N``: the whole select job (default model SevenNet-0, joint features) on a
generated, unlabelled pool of small molecules (the xtb-reactions molecules, 3-12 atoms, rattled
as MD snapshots), through a fresh feature store, then again from the filled store (a second
round); seconds per stage per structure and the peak RSS of the process.

Part 1b, ``--scale N [N ...] --workers W [W ...]``: the same job on pools of each size N, once
per worker count W (0: one process, no Dask; W >= 1: ``fntk select --workers W``, a
LocalCluster), each run in a fresh subprocess with a fresh store: seconds per stage per
structure, peak RSS of the client and of the largest worker, speed-up over the smallest W.

Part 2, ``--synthetic N``: the stages after the features (precision, shortlist scoring and merge,
lcmd selection) on N synthetic joint-shaped feature blocks streamed from a store, by the
single-process stream (``Selector.select``) and by the distributed path's stages run in this
process (:meth:`fntk.select.Selector.scorer` per chunk, :class:`ShortlistMerge`, then
selection on the merged shortlist); seconds per structure, peak RSS growth.

Run: ``PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/screening_scale.py --pool 0
--scale 200 600 --workers 1 2 --synthetic 50000 200000 1000000``. Prints Markdown tables.
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
            [str(root / "pool.xyz")],
            [str(root / "train.xyz")],
            options.executed_with(store=root / "store"),
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


SCALE_STAGES = (
    "load_model",
    "start_cluster",
    "train_features_and_precision",
    "pool_features_and_scoring",
    "pool_features",
    "pool_scoring",
    "shortlist_merge",
    "selection",
    "collect_picked",
)


def one_scaled_run(n_pool: int, workers: int, root: Path) -> dict:
    """One whole job (fresh store) in this process; the record the parent prints."""
    import ase.io

    from fntk.pipeline import build_run_options, run_selection

    pool, train = root / f"pool-{n_pool}.xyz", root / "train.xyz"
    if not pool.exists():
        ase.io.write(pool, make_pool(n_pool, 1))
    if not train.exists():
        ase.io.write(train, make_pool(20, 2))
    options = build_run_options(n=20, device="cpu", chunk_size=25)
    tick = time.perf_counter()
    execution = {"store": root / f"store-{n_pool}-{workers}", "workers": workers}
    run = run_selection([str(pool)], [str(train)], options.executed_with(**execution))
    total = time.perf_counter() - tick
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "n_pool": n_pool,
        "workers": workers,
        "total_s": total,
        "timings_s": run.timings_s,
        "picks": run.result.indices.tolist(),
        "client_rss_mb": peak_rss_mb(),
        "worker_rss_mb": children if workers else None,
    }


def scaled_jobs(sizes: list[int], worker_counts: list[int], root: Path) -> list[str]:
    import json
    import subprocess
    import sys

    records = []
    for n_pool in sizes:
        for workers in worker_counts:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n_pool), str(workers), str(root)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            records.append(json.loads(out.strip().splitlines()[-1]))
    lines = [
        "### Whole job, 1 vs 2 workers: SevenNet-0 joint d=32 (default), 20 train, n=20, "
        "chunk 25, fresh store per run, one subprocess per run",
        "",
        "| pool | workers | total s | s / structure | speed-up | client peak RSS MB | "
        "largest worker peak RSS MB | same picks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base: dict[int, dict] = {}
    for record in records:
        n = record["n_pool"]
        first = base.setdefault(n, record)
        worker_rss = record["worker_rss_mb"]
        lines.append(
            f"| {n} | {record['workers']} | {record['total_s']:.1f} | "
            f"{record['total_s'] / n:.3f} | {first['total_s'] / record['total_s']:.2f} | "
            f"{record['client_rss_mb']:.0f} | "
            f"{'-' if worker_rss is None else f'{worker_rss:.0f}'} | "
            f"{record['picks'] == first['picks']} |"
        )
    lines += [
        "",
        "Seconds per stage per structure (worker_* rows: summed over workers):",
        "",
        "| pool | workers | " + " | ".join(SCALE_STAGES) + " |",
        "|---|---|" + "---|" * len(SCALE_STAGES),
    ]
    for record in records:
        t = record["timings_s"]
        cells = [
            f"{t[stage] / record['n_pool']:.2e}" if stage in t else "-" for stage in SCALE_STAGES
        ]
        lines.append(f"| {record['n_pool']} | {record['workers']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def post_feature_stages(sizes: list[int], root: Path, dim: int = 12) -> list[str]:
    from fntk.features import default_options
    from fntk.features.store import FeatureStore
    from fntk.select import SelectOptions, Selector, ShortlistMerge

    chunk_size = 256
    lines = [
        f"### Stages after the features: synthetic joint blocks (3-12 atoms, d={dim}), "
        f"chunks of {chunk_size} from an npz store, 1000 train structures, lcmd n=100, M=1000",
        "",
        "| pool | write store s | precision s | stream: shortlist+select s | s / structure "
        "(after features) | chunks: score+merge s | merged: select s | same picks | "
        "peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
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
        streamed = selector.select(pool, n=100, random_state=0)
        select = time.perf_counter() - tick
        # The distributed path's stages, in this process: score each chunk, merge, select.
        tick = time.perf_counter()
        scorer = selector.scorer(dim, selector.shortlist_key(0))
        merge = ShortlistMerge(selector.options.resolved_shortlist_size(100))
        for k in range(n_chunks):
            chunk = store.read_chunk(k, source="s" * 32)
            merge.offer(scorer(chunk).beating(merge.bar()))
        shortlist = merge.shortlist(dim)
        merged_s = time.perf_counter() - tick
        tick = time.perf_counter()
        merged = selector.select_shortlist(shortlist, scorer.precision, n=100, random_state=0)
        merged_select = time.perf_counter() - tick
        same = streamed.indices.tolist() == merged.indices.tolist()
        lines.append(
            f"| {n} | {write:.1f} | {precision:.3f} | {select:.1f} | "
            f"{(precision + select) / n:.2e} | {merged_s:.1f} | {merged_select:.2f} | {same} | "
            f"{peak_rss_mb():.0f} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--train", type=int, default=20)
    parser.add_argument("--synthetic", type=int, nargs="*", default=[50_000])
    parser.add_argument("--scale", type=int, nargs="*", default=[])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # n_pool workers root
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.one:
        import json

        n_pool, workers, root = int(args.one[0]), int(args.one[1]), Path(args.one[2])
        print(json.dumps(one_scaled_run(n_pool, workers, root)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        if args.scale:
            lines += scaled_jobs(args.scale, args.workers, Path(tmp))
        if args.synthetic:
            lines += post_feature_stages(args.synthetic, Path(tmp))
        if args.pool:
            lines += whole_job(args.pool, args.train, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
