"""Readout fine-tuning two ways: Adam steps through SevenNet-0 vs the exact ridge solve.

Both learners fine-tune the ``readout`` group of SevenNet-0 on the same labelled structures
(same seed, same held-out slice, same loss weights and E0 refit) and are evaluated on the same
test structures. ``FinetuneLearner`` takes Adam steps (``fntk.learn.finetune``); ``RidgeLearner``
solves the same loss plus a cross-validated ridge in the readout move of width ``d``
(``fntk.learn.ridge``; ``d = 128`` is the whole readout). Reported: wall time of the fit (for the
ridge: design rows of the training structures + the solve; the test designs are extra, since
evaluating a ridge model needs them), the test errors, and the ratio against Adam measured in
the same run. Data: splits written by ``fntk data make``.

    python benchmarks/ridge_vs_adam.py DATA_DIR [--n-train 40] [--n-test 100] [--steps 100]
        [--dims 16,128] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fntk.bench.learner import FinetuneLearner, RidgeLearner
from fntk.learn import FinetuneOptions, LabelledSet
from fntk.models import load_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--dims", default="16,128")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = LabelledSet.from_files([str(args.data / "init.xyz")])
    train = train.subset(range(min(args.n_train, len(train))))
    test = LabelledSet.from_files([str(args.data / "test_id.xyz")])
    test = test.subset(range(min(args.n_test, len(test))))
    e0 = args.data / "e0_reference.xyz"
    reference = LabelledSet.from_files([str(e0)]) if e0.is_file() else None
    backend = load_backend("sevennet-0", device="cpu")
    options = FinetuneOptions(n_steps=args.steps)

    rows = []
    start = time.perf_counter()
    adam = FinetuneLearner(backend, options, reference)
    model = adam.fit(train, seed=0)
    seconds = time.perf_counter() - start
    metrics = adam.evaluate(model, {"test": test})["test"]
    rows.append((f"Adam, {model.n_steps_run} steps", seconds, 0.0, metrics))
    frozen = FinetuneLearner(backend, options.model_copy(update={"n_steps": 0}), reference)
    metrics = frozen.evaluate(frozen.fit(train, seed=0), {"test": test})["test"]
    rows.append(("pretrained + E0 refit", 0.0, 0.0, metrics))
    for dim in (int(d) for d in args.dims.split(",")):
        ridge = RidgeLearner(backend, options, dim, e0_reference=reference)
        start = time.perf_counter()
        model = ridge.fit(train, seed=0)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = ridge.evaluate(model, {"test": test})["test"]
        rows.append((f"ridge, d = {dim}", seconds, time.perf_counter() - start, metrics))

    adam_seconds = rows[0][1]  # the Adam fit, measured in this run
    print(
        f"{len(train)} training and {len(test)} test structures from {args.data}, "
        f"{args.threads} thread(s)\n"
    )
    print("| learner | fit s | ratio vs Adam | test designs s | E RMSE meV/atom | F RMSE meV/A |")
    print("|---|---|---|---|---|---|")
    for name, seconds, seconds_test, m in rows:
        print(
            f"| {name} | {seconds:.1f} | {seconds / adam_seconds:.3f}x | {seconds_test:.1f} | "
            f"{m.energy_rmse_mev_per_atom:.1f} | {m.force_rmse_mev_per_ang:.1f} |"
        )


if __name__ == "__main__":
    main()
