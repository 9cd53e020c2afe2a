"""Cost and kernel error of SevenNet-0's feature maps against one energy+force evaluation.

One table, one run: for a batch of small molecules (~7 atoms, like ``xtb-reactions``) and a
batch of ~35-atom metal nanoclusters with an adsorbate (like ``emt-adsorbates``), at 1 and at 2
torch threads, every variant of the joint map is timed against one energy+force evaluation of
the same structures, batched the same way (graph building included in both), and its
structure-kernel error is measured against the exact map (d = F = 128) on the same structures:
``||K - K_exact||_F / ||K_exact||_F`` with ``K[x, y] = <Phi_x^T Phi_x, Phi_y^T Phi_y>``.
Variants: the embedding; the joint map with the seeded Gaussian sketch (``basis="sketch"``,
the default before issue 21) and with the PCA basis (``basis="pca"``, fitted on the built-in
reference set); the exact map as the library runs it (forward or reverse mode per batch,
``fntk.features.jacobian.use_forward_mode``) and, for comparison, forced into reverse mode
(128 backward passes) and forward mode (3 N_max dual-number passes). The default joint map is
read from ``fntk.features.default_options("joint")``. The PCA basis's one-off reference cost
(its Gram over the built-in set, once per model and options) is printed separately.

    python benchmarks/feature_cost.py                  # > 45 min on the loaded 2-core machine
    python benchmarks/feature_cost.py --molecules 64 --clusters 8 --threads 1 2
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, molecule

from fntk.chunk import FeatureChunk
from fntk.features import build_feature_map, default_options
from fntk.features.assembly import iter_batches
from fntk.features.basis import REFERENCE_TANGENTS, readout_root, reference_gram
from fntk.features.jacobian import hidden_jacobian_forward, projected_rows_reverse
from fntk.features.readout import linear_readout
from fntk.features.reference import builtin_reference
from fntk.models import ModelBackend, load_backend
from fntk.models.base import reproducible_execution

_MOLECULES = ("H2O", "NH3", "CH4", "CH3OH", "C2H4", "C2H6", "HCOOH", "CH3CHO", "CH3CN")
_MOLECULES += ("CH3CH2OH", "C2H2", "H2CO", "CH3COOH", "HCN", "CO2", "N2H4")
_METALS = ("Cu", "Pt", "Au", "Ni", "Pd", "Ag", "Al")


def molecules(n: int) -> list[Atoms]:
    """``n`` small molecules (3-9 atoms), rattled by 0.1 Angstrom and with one bond stretched."""
    rng = np.random.default_rng(1)
    structures = []
    for k in range(n):
        atoms = molecule(_MOLECULES[k % len(_MOLECULES)])
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        atoms.positions[0] *= rng.uniform(1.0, 1.3)
        structures.append(atoms)
    return structures


def clusters(n: int) -> list[Atoms]:
    """``n`` metal nanoclusters of 33 atoms with a CO on top (35 atoms), rattled by 0.1."""
    rng = np.random.default_rng(2)
    structures = []
    for k in range(n):
        lattice = bulk(_METALS[k % len(_METALS)], "fcc", cubic=True).repeat((3, 3, 3))
        centre = lattice.positions.mean(axis=0) + rng.normal(0.0, 0.5, 3)
        order = np.argsort(np.linalg.norm(lattice.positions - centre, axis=1), kind="stable")
        cluster = lattice[order[:33]]
        cluster.set_cell(np.zeros((3, 3)))
        cluster.set_pbc(False)
        cluster.positions += rng.normal(0.0, 0.1, cluster.positions.shape)
        co = molecule("CO")
        top = int(np.argmax(cluster.positions[:, 2]))
        co.translate(cluster.positions[top] + (0.0, 0.0, 1.9) - co.positions[1])
        structures.append(cluster + co)
    return structures


def energy_forces(backend: ModelBackend, structures: list[Atoms]) -> None:
    """One energy+force evaluation, batched exactly as the feature maps batch by default."""
    options = default_options("joint")
    for batch in iter_batches(structures, options.batch_size, options.max_batch_atoms):
        backend.energy_and_forces(backend.build_graph(batch))


def exact_forced(backend: ModelBackend, structures: list[Atoms], mode: str) -> None:
    """The exact map's rows (d = F), every batch in one mode (``reverse`` or ``forward``)."""
    options = default_options("joint")
    readout = linear_readout(backend, "readout")
    assert readout is not None
    root = readout_root(readout).to(backend.dtype)
    for batch in iter_batches(structures, options.batch_size, options.max_batch_atoms):
        graph = backend.build_graph(batch)
        with reproducible_execution():
            if mode == "reverse":
                projected_rows_reverse(backend, graph, readout, root, True)
            else:
                pooled, jacobian = hidden_jacobian_forward(backend, graph, readout)
                _ = pooled @ root, jacobian @ root


def seconds(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def structure_kernel(chunk: FeatureChunk) -> np.ndarray:
    grams = [chunk.block(j).astype(np.float64) for j in range(chunk.n_structures)]
    flat = np.stack([b.T @ b for b in grams]).reshape(len(grams), -1)
    return flat @ flat.T


def kernel_error(chunk: FeatureChunk, exact: np.ndarray) -> float:
    return float(np.linalg.norm(structure_kernel(chunk) - exact) / np.linalg.norm(exact))


def variants() -> list[tuple[str, dict]]:
    """(label, joint-map overrides); the default map is the one ``default_options`` gives."""
    default = default_options("joint")
    rows = [
        ("joint sketch", {"basis": "sketch", "dim": 8}),
        ("joint sketch", {"basis": "sketch", "dim": 32}),
        ("joint pca", {"basis": "pca", "dim": 4}),
        ("joint pca", {"basis": "pca", "dim": 8}),
        ("joint pca", {"basis": "pca", "dim": 12}),
        ("joint exact (library)", {"dim": 128}),
    ]
    labelled = []
    for label, overrides in rows:
        is_default = (overrides.get("basis"), overrides["dim"]) == (default.basis, default.dim)
        labelled.append((label + (" (default)" if is_default else ""), overrides))
    return labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=32, help="small molecules per batch")
    parser.add_argument("--clusters", type=int, default=4, help="35-atom clusters per batch")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats (best is kept)")
    args = parser.parse_args()

    warnings.simplefilter("ignore")
    backend = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
    default = default_options("joint")
    systems = {"molecules": molecules(args.molecules), "clusters-35": clusters(args.clusters)}
    print(f"torch {torch.__version__}, SevenNet-0 float32, CPU, threads {args.threads}")
    print(f"default joint map: basis {default.basis}, d = {default.dim}, batches of at most")
    print(f"{default.batch_size} structures / {default.max_batch_atoms} atoms (all rows alike)")
    for name, structures in systems.items():
        sizes = [len(a) for a in structures]
        print(f"{name}: {len(structures)} structures, {min(sizes)}-{max(sizes)} atoms")

    # The one-off cost of the PCA basis, relative to one E+F of the reference set itself.
    torch.set_num_threads(args.threads[0])
    readout = linear_readout(backend, "readout")
    assert readout is not None
    reference = builtin_reference(default.seed)
    energy_forces(backend, reference)
    t_reference_ef, _ = seconds(lambda: energy_forces(backend, reference), 1)
    t_gram, _ = seconds(lambda: reference_gram(backend, readout, default), 1)
    n_ref_atoms = sum(len(a) for a in reference)
    print(
        f"PCA reference Gram ({len(reference)} structures, {n_ref_atoms} atoms, "
        f"{REFERENCE_TANGENTS} tangents), once per model and options: {t_gram:.1f} s = "
        f"{t_gram / t_reference_ef:.1f}x one E+F of the reference set ({args.threads[0]} thread)\n"
    )

    exact_kernels: dict[str, np.ndarray] = {}
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for system, structures in systems.items():
            energy_forces(backend, structures)  # warm-up: TorchScript specialises on shapes
            base, _ = seconds(lambda s=structures: energy_forces(backend, s), args.repeats)
            n = len(structures)
            rows.append([system, str(threads), "energy+forces", "-", f"{base / n:.4f}", "1.0", "-"])
            timed: list[tuple[str, str, Callable[[], object]]] = [
                (
                    "embedding",
                    "-",
                    lambda s=structures: build_feature_map(default_options("embedding"))(
                        backend, s
                    ),
                )
            ]
            for label, overrides in variants():
                feature_map = build_feature_map(default_options("joint", **overrides))
                feature_map.n_features(backend)  # fits a PCA basis outside the timing
                timed.append(
                    (
                        label,
                        str(overrides["dim"]),
                        lambda m=feature_map, s=structures: m(backend, s),
                    )
                )
            for mode in ("reverse", "forward"):
                if threads == args.threads[0]:
                    timed.append(
                        (
                            f"joint exact, all {mode} mode",
                            "128",
                            lambda s=structures, m=mode: exact_forced(backend, s, m),
                        )
                    )
            # The exact map first: it is every other row's kernel reference.
            timed.sort(key=lambda row: "exact (library)" not in row[0])
            for label, dim, function in timed:
                t, result = seconds(function, args.repeats)
                error = "-"
                if isinstance(result, FeatureChunk) and label != "embedding":
                    if "exact (library)" in label and system not in exact_kernels:
                        exact_kernels[system] = structure_kernel(result)
                    error = f"{kernel_error(result, exact_kernels[system]):.3f}"
                rows.append(
                    [system, str(threads), label, dim, f"{t / n:.4f}", f"{t / base:.1f}", error]
                )
                print("  " + " | ".join(rows[-1]), flush=True)

    print("\nx E+F: time of the map / time of one energy+force evaluation of the same batch, same")
    print("threads, same run. K err: structure-kernel error against the exact map (d = 128) on")
    print("the same structures (the exact map's own row: float32 rounding between thread counts).")
    header = ["system", "threads", "map", "d", "s/structure", "x E+F", "K err"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
