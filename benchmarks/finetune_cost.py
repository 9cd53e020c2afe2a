"""Seconds per fine-tuning gradient step on SevenNet-0, per parameter scope and system.

One step is a forward pass, forces by autograd with ``create_graph=True`` and the backward
pass of the energy+force loss into the chosen parameter group (DESIGN.md section 5), on a
mini-batch of structures batched into one graph. Systems: EMT-labelled adsorbates on 2x2x3 fcc
slabs (13-16 atoms, periodic in-plane) and 30-atom water clusters (non-periodic, EMT labels;
label values do not change the cost). A warm-up step is run and not timed. The "x E+F" column
is the step time over one energy+force evaluation of the same batch, to carry the numbers to
another machine. Use it to pick ``FinetuneOptions.n_steps`` and ``batch_size`` for a laptop.

    python benchmarks/finetune_cost.py [--steps 3] [--batch-size 8] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.data import make_adsorbate_structures
from fntk.learn import FinetuneOptions, LabelledSet, finetune
from fntk.models import load_backend

SCOPES = ("readout", "last-interaction", "all")


def water_cluster(seed: int) -> Atoms:
    """Ten water molecules on a jittered 3 Angstrom grid (30 atoms), labelled with EMT."""
    rng = np.random.default_rng(seed)
    cluster = Atoms()
    for corner in list(np.ndindex(3, 2, 2))[:10]:
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate(3.0 * np.array(corner) + rng.normal(scale=0.1, size=3))
        cluster += water
    cluster.calc = EMT()
    energy, forces = cluster.get_potential_energy(), cluster.get_forces()
    cluster.calc = SinglePointCalculator(cluster, energy=energy, forces=forces)
    return cluster


def seconds_per_step(backend, labelled: LabelledSet, scope: str, steps: int, batch: int) -> float:
    base = {"scope": scope, "batch_size": batch, "validation_fraction": 0.0}
    finetune(backend, labelled, FinetuneOptions(n_steps=1, **base))  # warm-up, not timed
    result = finetune(backend, labelled, FinetuneOptions(n_steps=steps, **base))
    return result.seconds_per_step


def seconds_per_evaluation(backend, labelled: LabelledSet, batch: int) -> float:
    graph = backend.build_graph(labelled.structures[:batch])
    backend.energy_and_forces(graph)
    start = time.perf_counter()
    backend.energy_and_forces(graph)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per scope")
    parser.add_argument("--batch-size", type=int, default=8, help="structures per step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backend = load_backend("sevennet-0", device=args.device, dtype=torch.float32)
    systems = {
        "adsorbate slabs": make_adsorbate_structures(args.batch_size, seed=0),
        "water clusters": [water_cluster(seed) for seed in range(args.batch_size)],
    }
    header = ["system", "atoms", "scope", "trainable", "s/step", "x E+F"]
    print(
        f"SevenNet-0, float32, {backend.device}, batch {args.batch_size}, "
        f"{args.threads} CPU thread(s)"
    )
    print(" | ".join(header))
    for name, structures in systems.items():
        labelled = LabelledSet.from_structures(structures)
        n_atoms = f"{labelled.n_atoms.min()}-{labelled.n_atoms.max()}"
        evaluation = seconds_per_evaluation(backend, labelled, args.batch_size)
        for scope in SCOPES:
            step = seconds_per_step(backend, labelled, scope, args.steps, args.batch_size)
            n_trainable = sum(p.numel() for p in backend.parameter_group(scope).values())
            row = [
                name,
                n_atoms,
                scope,
                str(n_trainable),
                f"{step:.2f}",
                f"{step / evaluation:.1f}",
            ]
            print(" | ".join(row))
    backend.restore_pretrained()


if __name__ == "__main__":
    main()
