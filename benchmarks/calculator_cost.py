"""Cost of ``fntk.Calculator`` per call against one energy+force evaluation, same run.

For each structure file: SevenNet-0 (float32, one thread) energy+forces through
``backend.predict`` (the baseline), the calculator at ranks 4 and 8 (energy, forces and the
calibrated uncertainty from one forward pass and 1 + rank backward passes), and the full joint
features (d = 32 backward passes) that ``fntk uncertainty`` computes. Each is timed over the
same structures after a warm-up; the table gives ms per structure and the ratio to the baseline.

Run: ``python benchmarks/calculator_cost.py --train TRAIN.xyz FILE.xyz ... -o OUT.md``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from ase import Atoms
from ase.io import read

import fntk
from fntk.features import compute_features
from fntk.models import load_backend


def seconds_per_structure(run: Callable[[Atoms], object], structures: list[Atoms]) -> float:
    for atoms in structures[:2]:
        run(atoms.copy())
    start = time.perf_counter()
    for atoms in structures:
        run(atoms.copy())
    return (time.perf_counter() - start) / len(structures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--train", required=True)
    parser.add_argument("-n", type=int, default=10, help="structures timed per file")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    backend = load_backend("sevennet-0", device="cpu")
    train = read(args.train, ":20")
    calculators = {r: fntk.Calculator(backend, train=train, rank=r) for r in (4, 8)}
    options = calculators[8].options
    lines = [
        "| file | atoms (mean) | E+F ms | calculator r4 ms (x) | calculator r8 ms (x) "
        "| joint features d=32 ms (x) |",
        "|---|---|---|---|---|---|",
    ]
    for path in args.files:
        structures = read(path, f":{args.n}")
        base = seconds_per_structure(lambda a: backend.predict([a]), structures)
        cells = [Path(path).name, f"{sum(map(len, structures)) / len(structures):.1f}"]
        cells.append(f"{base * 1e3:.1f}")
        for calc in calculators.values():

            def call(a: Atoms, calc: fntk.Calculator = calc) -> object:
                a.calc = calc
                return a.calc.get_property("force_uncertainty", a)

            t = seconds_per_structure(call, structures)
            cells.append(f"{t * 1e3:.1f} ({t / base:.2f}x)")
        t = seconds_per_structure(lambda a: compute_features(backend, [a], options), structures)
        cells.append(f"{t * 1e3:.1f} ({t / base:.2f}x)")
        lines.append("| " + " | ".join(cells) + " |")
    text = "# fntk.Calculator cost vs one energy+force evaluation (same run)\n\n"
    text += "\n".join(lines) + "\n"
    Path(args.output).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
