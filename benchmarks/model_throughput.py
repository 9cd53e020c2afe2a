"""Energy+force throughput of each model backend: batched graphs vs one structure at a time.

Prints structures/s for SevenNet-0 (the real pretrained weights) and for a MACE model of
MACE-MP-0-small's size (128x0e, 2 layers; random weights, since no foundation MACE can be
downloaded here: cost does not depend on weight values), on 30-atom water clusters and 60-atom
Cu(111) slabs. The ratio column is batched throughput over one-by-one throughput measured in the
same run; SevenNet's own ASE calculator is timed as an outside baseline.

    python benchmarks/model_throughput.py [--n 32] [--batch-size 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import Atoms
from ase.build import fcc111, molecule

from feature_cost import mace_mp_small_shaped  # same directory: one builder for both
from fntk.models import load_backend


def water_cluster(seed: int) -> Atoms:
    """Ten water molecules on a jittered 3 Angstrom grid: 30 atoms."""
    rng = np.random.default_rng(seed)
    cluster = Atoms()
    for k, corner in enumerate(np.ndindex(3, 2, 2)):
        if k == 10:
            break
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate(3.0 * np.array(corner) + rng.normal(scale=0.1, size=3))
        cluster += water
    return cluster


def cu_slab(seed: int) -> Atoms:
    """A rattled 3x4x5 Cu(111) slab: 60 atoms, periodic in-plane."""
    slab = fcc111("Cu", size=(3, 4, 5), vacuum=8.0)
    slab.rattle(0.05, seed=seed)
    return slab


def throughput(backend, structures, batch_size: int, repeats: int = 2) -> float:
    backend.predict(structures[:batch_size], batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        backend.predict(structures, batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return len(structures) / best


def calculator_throughput(structures) -> float:
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator("7net-0", device="cpu")
    atoms = structures[0].copy()
    atoms.calc = calc
    atoms.get_forces()  # warm-up
    start = time.perf_counter()
    for s in structures:
        atoms = s.copy()
        atoms.calc = calc
        atoms.get_potential_energy()
        atoms.get_forces()
    return len(structures) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="structures per system type")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    systems = {
        "30-atom water cluster": [water_cluster(s) for s in range(args.n)],
        "60-atom Cu(111) slab": [cu_slab(s) for s in range(args.n)],
    }
    backends = {"sevennet-0": load_backend("sevennet-0", device="cpu")}
    backends["mace (MP-0 small size)"] = mace_mp_small_shaped()

    header = (
        f"| backend | system | one-by-one (struct/s) | batched x{args.batch_size} (struct/s) "
        "| batched / one-by-one | ASE calculator (struct/s) |"
    )
    print(header)
    print("|" + "---|" * 6)
    for name, backend in backends.items():
        for system, structures in systems.items():
            single = throughput(backend, structures, 1)
            batched = throughput(backend, structures, args.batch_size)
            calc = calculator_throughput(structures) if name == "sevennet-0" else float("nan")
            print(
                f"| {name} | {system} | {single:.2f} | {batched:.2f} | {batched / single:.2f}x "
                f"| {calc:.2f} |"
            )
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU; "
        f"{args.n} structures per system."
    )


if __name__ == "__main__":
    main()
