"""Scaling benchmark of the selection engine (precision, streamed shortlist, LCMD).

Three tables, each with ratio columns against a baseline measured in the same run:

1. Streamed selection on synthetic ragged features (energy row + 3N force rows, N uniform in
   1..``--max-atoms``, ``--n-features`` wide) for every pool size in ``--sizes``. Each size runs
   in a fresh subprocess, features are generated chunk by chunk from a seeded generator (the
   pool never sits in memory), and the subprocess reports wall time and peak RSS
   (``resource.getrusage``). The time exponent is the least-squares slope of log(time) against
   log(pool size).
2. The brute-force kernel path (dense ``n x n`` posterior kernel of the whole pool, then LCMD on
   it) against the streamed path on one-row (energy) features, at ``--brute-sizes``. Sizes whose
   kernel matrix would exceed ``--brute-limit-gb`` are reported as ``OOM (needs X GB)``.
3. bmdal_reg's ``select_batch`` (lcmd, linear kernel, ``('train', [s, None])``, float64) against
   fntk on the same one-row features, checking that the picks are identical.

Run ``python benchmarks/selection_scaling.py`` (a few minutes on 2 cores) or add
``--sizes 10000,100000,1000000`` for the million-structure pool.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.select import Selector

N_DIRECTIONS = 32


def synthetic_chunks(
    n_structures: int,
    *,
    n_features: int,
    max_atoms: int,
    chunk_size: int,
    seed: int,
    one_row: bool = False,
    start: int = 0,
) -> Iterator[FeatureChunk]:
    """Seeded ragged feature chunks; chunk ``k`` has its own child seed, so any chunk can be
    regenerated alone. Rows mix a few shared directions (clusters) with isotropic noise."""
    directions = np.random.default_rng(seed).standard_normal((N_DIRECTIONS, n_features))
    directions = directions.astype(np.float32)
    for k, first in enumerate(range(0, n_structures, chunk_size)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k + 1,)))
        count = min(chunk_size, n_structures - first)
        n_atoms = rng.integers(1, max_atoms + 1, count)
        rows = np.ones(count, dtype=np.int64) if one_row else 1 + 3 * n_atoms
        offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        mixing = rng.standard_normal((offsets[-1], N_DIRECTIONS), dtype=np.float32)
        mixing *= rng.random((offsets[-1], N_DIRECTIONS), dtype=np.float32) < 0.1
        values = mixing @ directions
        values += 0.3 * rng.standard_normal(values.shape, dtype=np.float32)
        kinds = np.full(offsets[-1], FORCE_ROW, dtype=np.int8)
        kinds[offsets[:-1]] = ENERGY_ROW
        yield FeatureChunk(
            values=values,
            offsets=offsets,
            source_index=np.arange(start + first, start + first + count, dtype=np.int64),
            n_atoms=n_atoms.astype(np.int64),
            row_kind=kinds,
        )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _features(args: argparse.Namespace, n: int, seed: int, one_row: bool, start: int = 0):
    return synthetic_chunks(
        n,
        n_features=args.n_features,
        max_atoms=args.max_atoms,
        chunk_size=args.chunk_size,
        seed=seed,
        one_row=one_row,
        start=start,
    )


def worker_streamed(args: argparse.Namespace) -> dict:
    """Fit on the training set and select from a streamed pool of ``args.size``."""
    one_row = args.one_row
    train = list(_features(args, args.n_train, 1, one_row, start=10**9))
    start = time.perf_counter()
    selector = Selector("lcmd", shortlist_size=args.shortlist_size).fit(train)
    result = selector.select(_features(args, args.size, 2, one_row), args.batch, random_state=0)
    elapsed = time.perf_counter() - start
    return {"time_s": elapsed, "peak_rss_mb": _peak_rss_mb(), "indices": result.indices.tolist()}


def worker_brute(args: argparse.Namespace) -> dict:
    """Dense-kernel LCMD over the whole pool (one-row features, TP mode)."""
    train = FeatureChunk.concatenate(list(_features(args, args.n_train, 1, True)))
    pool = FeatureChunk.concatenate(list(_features(args, args.size, 2, True)))
    start = time.perf_counter()
    x_train = train.values.astype(np.float64)
    x_pool = pool.values.astype(np.float64)
    gram = x_train.T @ x_train
    sigma2 = 1e-6 * np.trace(gram) / len(x_train)
    factor = np.linalg.cholesky(gram + sigma2 * np.eye(len(gram)))
    transform = np.sqrt(sigma2) * np.linalg.inv(factor)
    post_pool, post_train = x_pool @ transform.T, x_train @ transform.T
    kernel = post_pool @ post_pool.T  # the n x n matrix of the brute-force path
    diag = np.diag(kernel).copy()
    to_train = diag[:, None] + np.sum(post_train**2, 1)[None, :] - 2 * post_pool @ post_train.T
    closest = np.argmin(to_train, axis=1)
    min_sq = to_train[np.arange(len(diag)), closest]
    n_centres = len(post_train)
    selected = np.zeros(len(diag), dtype=bool)
    picks = []
    for _ in range(args.batch):
        sums = np.bincount(closest, weights=min_sq, minlength=n_centres)
        eligible = (sums[closest] == sums.max()) & ~selected
        scores = np.where(eligible, min_sq, -np.inf)
        pick = int(np.argmax(scores))
        picks.append(pick)
        selected[pick] = True
        sq = diag + diag[pick] - 2 * kernel[:, pick]
        closer = sq < min_sq
        closest[closer], min_sq[closer] = n_centres, sq[closer]
        n_centres += 1
    return {"time_s": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}


def worker_bmdal(args: argparse.Namespace) -> dict:
    """bmdal_reg ``select_batch`` (lcmd, float64) on the one-row features."""
    import torch

    setattr(np, "Inf", np.inf)  # noqa: B010 - bmdal_reg 3.0.2 uses the alias removed in numpy 2
    from bmdal_reg.bmdal.algorithms import select_batch
    from bmdal_reg.bmdal.feature_data import TensorFeatureData

    train = FeatureChunk.concatenate(list(_features(args, args.n_train, 1, True)))
    pool = FeatureChunk.concatenate(list(_features(args, args.size, 2, True)))
    data = {
        "train": TensorFeatureData(torch.as_tensor(train.values)),
        "pool": TensorFeatureData(torch.as_tensor(pool.values)),
    }
    start = time.perf_counter()
    picks, _ = select_batch(
        batch_size=args.batch,
        models=[torch.nn.Identity()],
        data=data,
        y_train=None,
        base_kernel="linear",
        kernel_transforms=[("train", [1e-3, None])],
        selection_method="lcmd",
        allow_float64=True,
        verbosity=0,
    )
    return {
        "time_s": time.perf_counter() - start,
        "peak_rss_mb": _peak_rss_mb(),
        "indices": picks.tolist(),
    }


WORKERS = {"streamed": worker_streamed, "brute": worker_brute, "bmdal": worker_bmdal}


def run_worker(args: argparse.Namespace, kind: str, size: int, **extra: object) -> dict:
    """Run one measurement in a fresh interpreter (fresh peak RSS) and parse its JSON line."""
    command = [sys.executable, __file__, "--worker", kind, "--size", str(size)]
    for name in ("n_features", "max_atoms", "chunk_size", "batch", "n_train"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    for name, value in extra.items():
        flag = f"--{name.replace('_', '-')}"
        command += [flag] if value is True else [flag, str(value)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="streamed pool sizes")
    parser.add_argument("--brute-sizes", default="5000,20000,50000")
    parser.add_argument("--brute-limit-gb", type=float, default=8.0)
    parser.add_argument("--bmdal-size", type=int, default=50000, help="0 skips bmdal_reg")
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--max-atoms", type=int, default=3, help="blocks have 1 + 3N rows")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--shortlist-size", type=int, default=None)
    parser.add_argument("--one-row", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"# streamed LCMD, ragged blocks 1+3N rows (N in 1..{args.max_atoms}), "
        f"d={args.n_features}, train={args.n_train}, batch={args.batch}, chunk={args.chunk_size}"
    )
    runs = [run_worker(args, "streamed", size) for size in sizes]
    base = runs[0]
    rows = [
        [
            f"{size:,}",
            f"{run['time_s']:.1f}",
            f"{run['time_s'] / base['time_s']:.2f}",
            f"{size / sizes[0]:.0f}",
            f"{run['peak_rss_mb']:.0f}",
            f"{run['peak_rss_mb'] / base['peak_rss_mb']:.3f}",
        ]
        for size, run in zip(sizes, runs)
    ]
    print(_table(["pool", "time s", "time ratio", "size ratio", "peak RSS MB", "RSS ratio"], rows))
    if len(sizes) > 1:
        slope = np.polyfit(np.log(sizes), np.log([r["time_s"] for r in runs]), 1)[0]
        print(f"\nfitted exponent of time vs pool size: {slope:.3f} (target <= 1.05)\n")

    print("# brute-force dense-kernel LCMD vs streamed LCMD, one-row features")
    rows = []
    for size in [int(s) for s in args.brute_sizes.split(",") if s]:
        streamed = run_worker(args, "streamed", size, one_row=True)
        needed_gb = size**2 * 8 / 1e9
        if needed_gb > args.brute_limit_gb:
            brute_cell, ratio = f"OOM (needs {needed_gb:.1f} GB)", "-"
        else:
            brute = run_worker(args, "brute", size)
            brute_cell = f"{brute['time_s']:.1f}"
            ratio = f"{brute['time_s'] / streamed['time_s']:.1f}x"
        rows.append([f"{size:,}", f"{streamed['time_s']:.2f}", brute_cell, ratio])
    print(_table(["pool", "streamed s", "brute force s", "brute / streamed"], rows))

    if args.bmdal_size:
        size = args.bmdal_size
        print(f"\n# bmdal_reg select_batch vs fntk: lcmd, one-row features, pool {size:,}")
        bmdal = run_worker(args, "bmdal", size)
        full = run_worker(args, "streamed", size, one_row=True, shortlist_size=size)
        short = run_worker(args, "streamed", size, one_row=True)
        rows = [["bmdal_reg (float64)", f"{bmdal['time_s']:.2f}", "1.0x", "-"]]
        for name, run in (("fntk, shortlist = pool", full), ("fntk, default shortlist", short)):
            same = "identical" if run["indices"] == bmdal["indices"] else "differ"
            speedup = f"{bmdal['time_s'] / run['time_s']:.1f}x"
            rows.append([name, f"{run['time_s']:.2f}", speedup, same])
        print(_table(["method", "time s", "speed-up vs bmdal", "picks vs bmdal"], rows))


if __name__ == "__main__":
    main()
