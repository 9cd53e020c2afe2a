"""Table of the acquisition benchmark runs: force RMSE and its ratio to random in the same run.

Each argument is a ``fntk bench`` output folder (``results.csv``) that holds ``random`` and one
or more other methods. For every (folder, method, split): the final-round force RMSE (meV/A,
mean over seeds) with its ratio to random's in the same folder, and the mean over rounds
1..R of the per-round ratio of mean RMSEs (the whole learning curve, not only its end). The
last column averages the final ratios over the splits; the one before, the curve ratios.

    python benchmarks/acquisition_table.py runs/xtb-reactions/*/
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def _means(folder: Path) -> dict[tuple[str, str, int], float]:
    """Mean force RMSE over seeds by (method, split, round), complete rounds only."""
    values: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    with open(folder / "results.csv") as handle:
        for row in csv.DictReader(handle):
            key = (row["method"], row["split"], int(row["round"]))
            values[key].append(float(row["force_rmse_mev_per_ang"]))
    n_seeds = max(len(v) for v in values.values())
    return {k: float(np.mean(v)) for k, v in values.items() if len(v) == n_seeds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    lines = []
    splits: list[str] = []
    for folder in args.folders:
        means = _means(folder)
        splits = splits or sorted({s for _, s, _ in means})
        methods = sorted({m for m, _, _ in means} - {"random"})
        for method in ["random", *methods]:
            cells, finals, curves = [], [], []
            for split in splits:
                rounds = sorted(r for m, s, r in means if m == method and s == split)
                rounds = [r for r in rounds if ("random", split, r) in means]
                if not rounds:
                    cells.append("-")
                    continue
                last = rounds[-1]
                value, base = means[method, split, last], means["random", split, last]
                finals.append(value / base)
                curve = [means[method, split, r] / means["random", split, r] for r in rounds[1:]]
                curves.append(float(np.mean(curve)) if curve else 1.0)
                cells.append(f"{value:.0f} ({value / base:.2f})")
            name = f"{folder.name}: {method}"
            summary = [f"{np.mean(curves):.3f}", f"{np.mean(finals):.3f}"] if finals else ["-"] * 2
            lines.append(f"| {name} | {' | '.join(cells)} | {' | '.join(summary)} |")
    print(f"| run: method | {' | '.join(splits)} | mean curve ratio | mean final ratio |")
    print("|---" * (len(splits) + 3) + "|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
