"""Cost and kernel error of SevenNet-0's feature maps against one energy+force evaluation.

One table, one run: for a batch of small molecules (~7 atoms, like ``xtb-reactions``) and a
batch of ~35-atom metal nanoclusters with an adsorbate (like ``emt-adsorbates``), at 1 and at 2
torch threads, every variant of the joint map is timed against one energy+force evaluation of
the same structures, batched the same way (graph building included in both), and its
structure-kernel error is measured against the exact map (d = F = 128) on the same structures:
``||K - K_exact||_F / ||K_exact||_F`` with ``K[x, y] = <Phi_x^T Phi_x, Phi_y^T Phi_y>``.
Variants: the embedding; the joint map with the seeded Gaussian sketch (``basis="sketch"``)
and with the PCA basis (``basis="pca"``) fitted on the built-in reference sets ``builtin-v1``
(at most 14 atoms) and ``builtin-v2`` (v1 plus clusters and slabs of up to 49 atoms,
stratified by size), by width; the exact map as the library runs it (forward or reverse mode
per batch, ``fntk.features.jacobian.use_forward_mode``; forward mode carries its tangents
together through one vectorised pass) and, at the first thread count, forward mode as it was
before (one dual-number pass per tangent, :func:`exact_forward_loop`, kept here as the
baseline; on the molecules only, to keep the run short). The default joint map is read from
``fntk.features.default_options("joint")``. The PCA bases' one-off reference cost (the Gram
over the reference set, once per model and options) is printed separately. Rows marked
``1st`` run only at the first thread count.

    python benchmarks/feature_cost.py                  # ~1 h on the loaded 2-core machine
    python benchmarks/feature_cost.py --molecules 64 --clusters 8 --threads 1 2
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.autograd.forward_ad as forward_ad
from ase import Atoms
from ase.build import bulk, molecule

from fntk.chunk import FeatureChunk
from fntk.features import build_feature_map, default_options
from fntk.features.assembly import iter_batches
from fntk.features.basis import REFERENCE_TANGENTS, pca_basis, readout_root
from fntk.features.jacobian import pool_by_structure
from fntk.features.readout import LinearReadout, linear_readout
from fntk.features.reference import builtin_reference
from fntk.models import ModelBackend, load_backend
from fntk.models.base import reproducible_execution
from fntk.models.graph import GraphBatch

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


def jacobian_forward_loop(
    backend: ModelBackend, graph: GraphBatch, readout: LinearReadout
) -> tuple[torch.Tensor, torch.Tensor]:
    """s and ds/dr by one dual-number pass per tangent: the library's forward mode before it
    carried the tangents together (the baseline of the vectorised pass)."""
    weights = readout.atom_weights(graph)[:, None]
    start = graph.ptr[:-1]
    positions = graph.positions
    jacobian = torch.empty(
        3 * positions.shape[0], readout.n_hidden, dtype=positions.dtype, device=positions.device
    )
    pooled = torch.empty(0)
    for a in range(int(graph.n_atoms.max())):
        has_atom = graph.n_atoms > a
        atoms = start[has_atom] + a
        for k in range(3):
            tangent = torch.zeros_like(graph.positions)
            tangent[atoms, k] = 1.0
            with torch.no_grad(), forward_ad.dual_level():
                dual = forward_ad.make_dual(graph.positions.detach(), tangent)
                hidden = backend(graph, dual).node_features * weights
                pooled, derivative = forward_ad.unpack_dual(pool_by_structure(graph, hidden))
            jacobian[3 * atoms + k] = derivative[has_atom]
    return pooled, jacobian


def exact_forward_loop(backend: ModelBackend, structures: list[Atoms]) -> None:
    """The exact map's rows (d = F) by :func:`jacobian_forward_loop`, batched as the library."""
    options = default_options("joint")
    readout = linear_readout(backend, "readout")
    assert readout is not None
    root = readout_root(readout).to(backend.dtype)
    for batch in iter_batches(structures, options.batch_size, options.max_batch_atoms):
        graph = backend.build_graph(batch)
        with reproducible_execution():
            pooled, jacobian = jacobian_forward_loop(backend, graph, readout)
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


def variants(first: bool) -> list[tuple[str, dict]]:
    """(label, joint-map overrides); the default map is the one ``default_options`` gives.
    ``first``: the first thread count, which runs every variant; later ones run a subset."""
    default = default_options("joint")
    rows = [
        ("joint sketch", {"basis": "sketch", "dim": 8}, False),
        ("joint sketch", {"basis": "sketch", "dim": 32}, True),
        ("joint pca v1", {"basis": "pca", "dim": 8, "reference": "builtin-v1"}, False),
        ("joint pca v2", {"basis": "pca", "dim": 8, "reference": "builtin-v2"}, False),
        ("joint pca v2", {"basis": "pca", "dim": 12, "reference": "builtin-v2"}, False),
        ("joint pca v2", {"basis": "pca", "dim": 16, "reference": "builtin-v2"}, True),
        ("joint pca v2", {"basis": "pca", "dim": 32, "reference": "builtin-v2"}, False),
        ("joint exact (library)", {"dim": 128}, True),
    ]
    labelled = []
    for label, overrides, every_time in rows:
        if not (first or every_time):
            continue
        options = default_options("joint", **overrides)
        is_default = options == default
        if is_default:
            label += " (default)"
        labelled.append((label + ("" if every_time else " 1st"), overrides))
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
    for reference_name in ("builtin-v1", "builtin-v2"):
        reference = builtin_reference(default.seed, reference_name)
        options = default_options("joint", basis="pca", reference=reference_name)
        energy_forces(backend, reference)
        t_reference_ef, _ = seconds(lambda r=reference: energy_forces(backend, r), 1)
        # Fits (and caches) the basis that the pca rows below then use.
        t_gram, _ = seconds(lambda o=options: pca_basis(backend, readout, o), 1)
        n_ref_atoms = sum(len(a) for a in reference)
        print(
            f"PCA reference Gram, {reference_name} ({len(reference)} structures, {n_ref_atoms} "
            f"atoms, {REFERENCE_TANGENTS} tangents), once per model and options: {t_gram:.1f} s "
            f"= {t_gram / t_reference_ef:.1f}x one E+F of the reference set "
            f"({args.threads[0]} thread)"
        )
    print()

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
            first = threads == args.threads[0]
            for label, overrides in variants(first):
                feature_map = build_feature_map(default_options("joint", **overrides))
                feature_map.n_features(backend)  # fits a PCA basis outside the timing
                timed.append(
                    (
                        label,
                        str(overrides["dim"]),
                        lambda m=feature_map, s=structures: m(backend, s),
                    )
                )
            if first and system == "molecules":
                timed.append(
                    (
                        "joint exact, forward loop (before) 1st",
                        "128",
                        lambda s=structures: exact_forward_loop(backend, s),
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
