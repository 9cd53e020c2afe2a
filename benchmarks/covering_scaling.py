"""Cost of the covering selectors against the pool size: linear time, flat memory.

For each pool size in ``--sizes`` and each selector (``coverage``, ``coverage-density``, and
``coverage-density`` covering ``--n-target`` target structures), one
fresh subprocess fits the precision on a training set, streams a synthetic pool of ragged blocks
(``selection_scaling.synthetic_chunks``: energy row + 3N force rows, generated chunk by chunk,
never all in memory) and selects ``--batch``; it reports wall time, peak RSS and how many
candidates the selector saw. Ratios: time against ``coverage`` at the same pool size (the same
run), and each selector's fitted exponent of time against pool size (1 = linear).

    python benchmarks/covering_scaling.py --sizes 5000,20000,80000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fntk.select import Selector

_SPEC = importlib.util.spec_from_file_location(
    "selection_scaling", Path(__file__).with_name("selection_scaling.py")
)
assert _SPEC is not None and _SPEC.loader is not None
_SCALING = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_SCALING)

SELECTORS = ("coverage", "coverage-density", "coverage-density+target")


def worker(args: argparse.Namespace) -> dict:
    """Fit, stream a pool of ``args.size`` and select; time, peak RSS, candidate count."""

    def chunks(n: int, seed: int, start: int = 0):
        return _SCALING.synthetic_chunks(
            n,
            n_features=args.n_features,
            max_atoms=args.max_atoms,
            chunk_size=args.chunk_size,
            seed=seed,
            start=start,
        )

    method, _, target = args.selector.partition("+")
    train = list(chunks(args.n_train, 1, start=10**9))
    start = time.perf_counter()
    selector = Selector(method).fit(train)
    result = selector.select(
        chunks(args.size, 2),
        args.batch,
        random_state=0,
        target_chunks=chunks(args.n_target, 3, start=2 * 10**9) if target else None,
    )
    return {
        "time_s": time.perf_counter() - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_candidates": len(result.shortlist.source_index),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,20000,80000")
    parser.add_argument("--n-features", type=int, default=32)
    parser.add_argument("--max-atoms", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-target", type=int, default=2000)
    parser.add_argument("--selector", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.selector:
        print(json.dumps(worker(args)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"# covering selectors, ragged blocks 1+3N rows (N in 1..{args.max_atoms}), "
        f"d={args.n_features}, train={args.n_train}, batch={args.batch}, "
        f"M=max(1000, 10 n), targets={args.n_target}"
    )
    runs: dict[tuple[str, int], dict] = {}
    for size in sizes:
        for name in SELECTORS:
            command = [sys.executable, __file__, "--selector", name, "--size", str(size)]
            for flag in ("n_features", "max_atoms", "chunk_size", "batch", "n_train", "n_target"):
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs[name, size] = json.loads(out.strip().splitlines()[-1])
    print("| pool | selector | candidates | time s | time / coverage | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        base = runs["coverage", size]["time_s"]
        for name in SELECTORS:
            run = runs[name, size]
            print(
                f"| {size:,} | {name} | {run['n_candidates']} | {run['time_s']:.1f} | "
                f"{run['time_s'] / base:.2f} | {run['peak_rss_mb']:.0f} |"
            )
    if len(sizes) > 1:
        print("\n| selector | fitted exponent of time vs pool size | peak RSS largest / smallest |")
        print("|---|---|---|")
        for name in SELECTORS:
            times = [runs[name, s]["time_s"] for s in sizes]
            slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
            rss = runs[name, sizes[-1]]["peak_rss_mb"] / runs[name, sizes[0]]["peak_rss_mb"]
            print(f"| {name} | {slope:.2f} | {rss:.2f} |")


if __name__ == "__main__":
    main()
