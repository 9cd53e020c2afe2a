"""Force errors of pretrained models before any fine-tuning, on labelled files.

Prints force RMSE and MAE (meV/Angstrom, over all force components) of each model against the
files' reference forces, and the ratio of each model to the first one (the baseline, measured
in the same run). Energies are left out: without a per-element E0 refit their offsets say
nothing about the model.

    python benchmarks/pretrained_errors.py id=test_id.xyz ood=test_ood.xyz \\
        [--models sevennet-0,so3lr] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from fntk.learn import LabelledSet, evaluate_splits
from fntk.models import load_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", help="NAME=FILE of labelled structures")
    parser.add_argument("--models", default="sevennet-0,so3lr")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = {}
    for item in args.splits:
        name, _, path = item.partition("=")
        splits[name] = LabelledSet.from_files([path])
    models = args.models.split(",")
    errors = {m: evaluate_splits(load_backend(m, device="cpu"), splits) for m in models}
    print("| split | structures | model | force RMSE (meV/Å) | force MAE (meV/Å) | RMSE ratio |")
    print("|---|---|---|---|---|---|")
    for name in splits:
        base = errors[models[0]][name].force_rmse_mev_per_ang
        for model in models:
            e = errors[model][name]
            print(
                f"| {name} | {e.n_structures} | {model} | {e.force_rmse_mev_per_ang:.1f} "
                f"| {e.force_mae_mev_per_ang:.1f} | {e.force_rmse_mev_per_ang / base:.2f} |"
            )
    print(f"\nPretrained weights, no fine-tuning; float32, {args.threads} torch thread(s).")


if __name__ == "__main__":
    main()
