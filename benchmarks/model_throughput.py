"""Energy+force throughput of each model backend: batched graphs vs one structure at a time.

Prints structures/s for SevenNet-0 (the real pretrained weights) and for a MACE model of
MACE-MP-0-small's size (128x0e, 2 layers; random weights, since no foundation MACE can be
downloaded here: cost does not depend on weight values), on 30-atom water clusters and 60-atom
Cu(111) slabs. The ratio column is batched throughput over one-by-one throughput measured in the
same run; SevenNet's own ASE calculator is timed as an outside baseline.

A second table puts the molecular foundation model SO3LR (``so3lr``, needs ``fntk[so3lr]``)
next to SevenNet-0 on the same small organic molecules (the ``xtb-reactions`` ones, rattled):
seconds per structure of energy+force, of the embedding map and of the default joint map
(SevenNet-0: hidden path; SO3LR: parameter path of its non-linear readout), and the ratio
so3lr / sevennet-0 of each, measured in the same run. ``--only molecular`` runs just that table.

    python benchmarks/model_throughput.py [--n 32] [--batch-size 16] [--threads 2]
        [--only backends|molecular]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import Atoms
from ase.build import fcc111, molecule

from feature_cost import mace_mp_small_shaped  # same directory: one builder for both
from fntk.data.xtb_reactions import ID_MOLECULES, OOD_MOLECULES
from fntk.features import build_feature_map, default_options
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


def organic_molecules(n: int) -> list[Atoms]:
    """``n`` rattled copies of the xtb-reactions molecules (3 to 12 atoms), cycled."""
    names = [*ID_MOLECULES, *OOD_MOLECULES]
    frames = []
    for k in range(n):
        atoms = molecule(names[k % len(names)])
        atoms.rattle(0.05, seed=k)
        frames.append(atoms)
    return frames


def seconds_per_structure(run, structures, repeats: int = 2) -> float:
    run(structures[:2])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(structures)
        best = min(best, time.perf_counter() - start)
    return best / len(structures)


def so3lr_calculator_seconds(structures) -> float:
    import contextlib
    import io

    from so3krates_torch.calculator.so3 import SO3LRCalculator

    default_dtype = torch.get_default_dtype()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its dtype choice
        calc = SO3LRCalculator(device="cpu")
    torch.set_default_dtype(default_dtype)  # the calculator sets it globally

    def run(frames):
        for s in frames:
            atoms = s.copy()
            atoms.calc = calc
            atoms.get_forces()

    return seconds_per_structure(run, structures)


def molecular_table(n: int, batch_size: int) -> None:
    """SO3LR vs SevenNet-0 per structure on the same molecules, ratios from this run.

    Both models are timed back to back for each quantity (best of 3), so load on a shared
    machine hits both alike.
    """
    structures = organic_molecules(n)
    embedding = build_feature_map(default_options("embedding"))
    joint = build_feature_map(default_options("joint"))
    backends = {spec: load_backend(spec, device="cpu") for spec in ("sevennet-0", "so3lr")}
    quantities = {
        "energy+force": lambda b, f: b.predict(f, batch_size=batch_size),
        "embedding": lambda b, f: embedding(b, f),
        "joint": lambda b, f: joint(b, f),
    }
    print("\n| quantity (ms per structure) | sevennet-0 | so3lr | so3lr / sevennet-0 |")
    print("|---|---|---|---|")
    for quantity, run in quantities.items():
        seconds = [
            seconds_per_structure(lambda f, b=backend, r=run: r(b, f), structures, repeats=3)
            for backend in backends.values()
        ]
        print(
            f"| {quantity} | {1e3 * seconds[0]:.1f} | {1e3 * seconds[1]:.1f} "
            f"| {seconds[1] / seconds[0]:.2f}x |"
        )
    calc = so3lr_calculator_seconds(structures)
    print(f"| energy+force, SO3LRCalculator one by one | | {1e3 * calc:.1f} | |")
    n_atoms = np.mean([len(a) for a in structures])
    print(
        f"\n{n} molecules (mean {n_atoms:.1f} atoms), batches of {batch_size}; joint = "
        "default_options('joint'):"
    )
    for spec, backend in backends.items():
        print(f"- {spec}: {joint.describe(backend)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="structures per system type")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["backends", "molecular"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only != "molecular":
        backend_table(args)
    if args.only != "backends":
        molecular_table(args.n, args.batch_size)
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU; "
        f"{args.n} structures per system."
    )


def backend_table(args: argparse.Namespace) -> None:
    """Batched vs one-by-one energy+force throughput of SevenNet-0 and a MACE-MP-0-sized MACE."""

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


if __name__ == "__main__":
    main()
