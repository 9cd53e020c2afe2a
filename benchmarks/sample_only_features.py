"""Featurise only the uniform sample: `fntk select` with coverage on a pool larger than M.

`coverage` (and `random`) without `--store` featurise only their seeded uniform sample of M
pool structures; with `--store` every pool structure is featurised (the store serves later
rounds). Both runs of this script use the same pool, options and seed, in the same process,
one torch thread, so the ratio of their pool-feature times is the saving; the picks must be
identical. The stopping signal's pool sample comes from the pass in both (no second model pass).

Usage (data: ``fntk data make xtb-reactions -o DATA --size pool=300 --size init=10
--size test_id=0 --size test_ood=0``)::

    python benchmarks/sample_only_features.py --pool DATA/pool.xyz --train DATA/init.xyz \
        --shortlist 30 -n 10 > benchmarks/results/sample-only-features.md
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from fntk.pipeline import build_run_options, run_selection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--shortlist", type=int, default=30)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--selector", default="coverage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = build_run_options(
        n=args.n, shortlist=args.shortlist, selector=args.selector, seed=args.seed, device="cpu"
    )
    from fntk.features.registry import load_backend_for

    backend = load_backend_for(options.model, options.features)
    runs = {}
    with tempfile.TemporaryDirectory() as store:
        for mode in ("sample only", "whole pool (--store)"):  # the first pays any warm-up
            start = time.perf_counter()
            runs[mode] = run_selection(
                [args.pool],
                [args.train],
                options,
                backend=backend,
                store=f"{store}/features" if mode.startswith("whole") else None,
            )
            runs[mode].timings_s["wall"] = time.perf_counter() - start
    whole = runs["whole pool (--store)"]
    print(
        f"# Sample-only pool features: `fntk select --selector {args.selector} "
        f"--shortlist {args.shortlist} -n {args.n}`\n"
    )
    print(
        f"Pool {args.pool} ({whole.n_pool} structures), training set {args.train} "
        f"({whole.n_train}), model {options.model}, joint map d = {options.features.dim}, "
        f"seed {args.seed}, one torch thread, both runs in one process on one loaded model. "
        "Ratios are against the whole-pool run of this same invocation.\n"
    )
    print(
        "| run | pool structures featurised | pool features (s) | ratio | stopping signal (s) "
        "| wall (s) | ratio | same picks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode, run in runs.items():
        timings = run.timings_s
        same = np.array_equal(run.result.indices, whole.result.indices)
        print(
            f"| {mode} | {run.pool_passes['pool_structures_featurised']} "
            f"| {timings['pool_features']:.1f} "
            f"| {timings['pool_features'] / whole.timings_s['pool_features']:.3f} "
            f"| {timings['stopping_signal']:.3f} | {timings['wall']:.1f} "
            f"| {timings['wall'] / whole.timings_s['wall']:.3f} | {'yes' if same else 'NO'} |"
        )
    sampled = runs["sample only"]
    print(f"\nPicks (pool indices): {sampled.result.indices.tolist()}")
    for mode, run in runs.items():
        signal = run.stopping_signal or {}
        print(
            f"\n{mode}: stopping signal {signal.get('pool_force_rmse_before', float('nan')):.6g}"
            f" -> {signal.get('pool_force_rmse_after', float('nan')):.6g} over "
            f"{signal.get('n_sample')} structures ({signal.get('sample')})"
        )
    notes = [note for note in sampled.feature_status if "featurised only" in note]
    print(f"\nrun.json note (sample only): {notes[0] if notes else 'none'}")


if __name__ == "__main__":
    main()
