"""Cost of every feature map relative to one energy+force evaluation, and sketch accuracy.

For SevenNet-0 (real pretrained weights) and a MACE model of MACE-MP-0-small's shape (random
weights: no foundation MACE can be downloaded here, and cost does not depend on weight values),
each map is timed on batches of rattled copies of a 30-atom molecule, a 60-atom Cu(111) slab and
a 120-atom Cu cell, in one run; the ratio column divides by one batched energy+force evaluation
of the same model on the same batch (graph building included in both). Peak memory is the
largest growth of the process's resident memory while the map ran (sampled every 5 ms).
A second table gives the accuracy/cost trade-off of the sketch width d for the joint map with
SevenNet-0's readout: the relative Frobenius error of the kernel matrix
K[x, y] = <Phi_x^T Phi_x, Phi_y^T Phi_y> (DESIGN.md section 4) against the exact map (d = F = 128),
averaged over seeds, next to the cost ratio.
Baselines: a naive row-by-row force Jacobian of SevenNet-0's readout took 64 s for one 30-atom
molecule; SevenNet-0 energy+forces through its ASE calculator takes ~0.3 s.

    python benchmarks/feature_cost.py            # default set, ~5 minutes on 2 CPU cores
    python benchmarks/feature_cost.py --full     # adds 'all'-group sketches and larger d
    python benchmarks/feature_cost.py --copies 8 --threads 4 --repeats 3
    python benchmarks/feature_cost.py --part accuracy   # one table: cost, accuracy or methods
"""

from __future__ import annotations

import argparse
import ctypes
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule

from fntk.features import build_feature_map, default_options, sketch_column, sketch_matrix
from fntk.features.assembly import iter_batches
from fntk.models import ModelBackend, load_backend
from fntk.models.mace import MaceBackend


def molecule_30(seed: int) -> Atoms:
    """Benzene and two ethanols, 30 atoms, rattled."""
    atoms = molecule("C6H6")
    for shift in ((0.0, 0.0, 4.0), (0.0, 4.5, 0.0)):
        ethanol = molecule("CH3CH2OH")
        ethanol.translate(shift)
        atoms += ethanol
    atoms.rattle(0.05, seed=seed)
    return atoms


def slab_60(seed: int) -> Atoms:
    """3x4x5 Cu(111) slab, 60 atoms, periodic in-plane, rattled."""
    slab = fcc111("Cu", size=(3, 4, 5), vacuum=6.0)
    slab.rattle(0.05, seed=seed)
    return slab


def cell_120(seed: int) -> Atoms:
    """Periodic fcc Cu cell (3x5x2 cubic cells), 120 atoms, rattled."""
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 5, 2))
    cell.rattle(0.05, seed=seed)
    return cell


SYSTEMS: dict[str, Callable[[int], Atoms]] = {
    "mol30": molecule_30,
    "slab60": slab_60,
    "cell120": cell_120,
}


def mace_mp_small_shaped() -> MaceBackend:
    """ScaleShiftMACE with MACE-MP-0-small's shape (128x0e, 2 layers, l_max 3), random weights."""
    from fntk.models._compat import import_e3nn

    import_e3nn()
    from e3nn import o3
    from mace import modules

    elements = [1, 6, 7, 8, 29]
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = modules.ScaleShiftMACE(
            r_max=6.0,
            num_bessel=10,
            num_polynomial_cutoff=5,
            max_ell=3,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes[
                "RealAgnosticResidualInteractionBlock"
            ],
            num_interactions=2,
            num_elements=len(elements),
            hidden_irreps=o3.Irreps("128x0e"),
            MLP_irreps=o3.Irreps("16x0e"),
            atomic_energies=np.zeros(len(elements)),
            avg_num_neighbors=20.0,
            atomic_numbers=elements,
            correlation=3,
            gate=torch.nn.functional.silu,
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
    return MaceBackend(model, "mace (MACE-MP-0-small shape, random weights)").float().eval()


class PeakMemory:
    """Largest growth of resident memory (MB) inside a ``with`` block, sampled in a thread.

    Freed heap memory is first handed back to the system (glibc ``malloc_trim``), so the growth
    is the block's own working set rather than zero after a larger earlier run.
    """

    def __enter__(self) -> PeakMemory:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._start = self._rss()
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._record()

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self._page

    def _record(self) -> None:
        self.peak_mb = max(self.peak_mb, (self._rss() - self._start) / 2**20)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._record()


@dataclass
class Timing:
    seconds: float
    peak_mb: float


def timed(function: Callable[[], object], repeats: int) -> Timing:
    """Best wall time of ``repeats`` calls (after one warm-up) and the peak memory growth."""
    with PeakMemory() as memory:
        function()  # warm-up: TorchScript profiles and specialises on new shapes
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return Timing(best, memory.peak_mb)


def energy_forces(backend: ModelBackend, structures: list[Atoms]) -> None:
    """One energy+force evaluation, batched exactly as the feature maps batch."""
    options = default_options("embedding", batch_size=len(structures))
    for batch in iter_batches(structures, options.batch_size, options.max_batch_atoms):
        backend.energy_and_forces(backend.build_graph(batch))


def cost_rows(
    backend_name: str,
    backend: ModelBackend,
    configs: list[tuple[str, dict, tuple[str, ...]]],
    copies: int,
    repeats: int,
) -> list[list[str]]:
    """One table row per (map config, system)."""
    rows = []
    batches = {name: [make(seed) for seed in range(copies)] for name, make in SYSTEMS.items()}
    baseline = {
        name: timed(lambda s=structures: energy_forces(backend, s), repeats).seconds
        for name, structures in batches.items()
    }
    for system in batches:
        rows.append(
            [
                backend_name,
                "energy+forces",
                "-",
                "-",
                system,
                "-",
                f"{baseline[system] / copies:.4f}",
                "1.0",
                "-",
            ]
        )
    for map_name, overrides, systems in configs:
        options = default_options(map_name, batch_size=copies, **overrides)
        feature_map = build_feature_map(options)
        n_features = feature_map.n_features(backend)
        for system in systems:
            structures = batches[system]
            timing = timed(lambda m=feature_map, s=structures: m(backend, s), repeats)
            rows.append(
                [
                    backend_name,
                    map_name,
                    getattr(options, "group", "-"),
                    str(getattr(options, "dim", "-")),
                    system,
                    str(n_features),
                    f"{timing.seconds / copies:.4f}",
                    f"{timing.seconds / baseline[system]:.1f}",
                    f"{timing.peak_mb:.0f}",
                ]
            )
            print("  " + " | ".join(rows[-1]), flush=True)
    return rows


def kernel_error_rows(
    backend: ModelBackend, widths: tuple[int, ...], n_seeds: int
) -> list[list[str]]:
    """Errors of the sketched joint readout map vs the exact one, per width d.

    Pool: three rattled 30-atom molecules and three rattled 60-atom slabs. Two errors, both
    relative Frobenius norms averaged over seeds: the structure kernel matrix
    K[x, y] = <G_x, G_y> (fourth order in Omega) and each structure's row Gram Phi Phi^T
    (second order, what the posterior variance sees).
    """
    structures = [make(seed) for make in (molecule_30, slab_60) for seed in range(3)]
    exact_map = build_feature_map(default_options("joint", dim=512, batch_size=len(structures)))
    exact = exact_map(backend, structures)
    n_hidden = exact.n_features
    blocks = [exact.block(j).astype(np.float64) for j in range(exact.n_structures)]
    grams = [b.T @ b for b in blocks]
    kernel = np.array([[np.sum(a * b) for b in grams] for a in grams])
    row_grams = [b @ b.T for b in blocks]
    rows = []
    for dim in widths:
        kernel_errors, row_errors = [], []
        for seed in range(n_seeds):
            # Sketched hidden-path features are the exact ones times Omega_h (ntk.py).
            omega = sketch_matrix(seed, n_hidden, dim).numpy()
            sketched = [omega.T @ g @ omega for g in grams]
            approx = np.array([[np.sum(a * b) for b in sketched] for a in sketched])
            kernel_errors.append(np.linalg.norm(approx - kernel) / np.linalg.norm(kernel))
            row_errors.append(
                np.mean(
                    [
                        np.linalg.norm((b @ omega) @ (b @ omega).T - r) / np.linalg.norm(r)
                        for b, r in zip(blocks, row_grams)
                    ]
                )
            )
        rows.append([str(dim), f"{np.mean(kernel_errors):.3f}", f"{np.mean(row_errors):.3f}"])
    return rows


def func_jvp_columns(
    backend: ModelBackend, structures: list[Atoms], group: str, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Forward-over-reverse alternative: torch.func.jvp of (E, F) along each sketch column.

    Returns energy columns (n_graphs, dim) and force columns (3 n_atoms, dim); the library's
    parameter path (double backward) is compared against this for speed and agreement.
    """
    from torch.func import functional_call, grad, jvp

    graph = backend.build_graph(structures)
    params = backend.parameter_group(group)
    sizes = [p.numel() for p in params.values()]
    frozen = {n: p.detach() for n, p in backend.named_parameters()}
    buffers = dict(backend.named_buffers())

    def energy_forces(theta: dict) -> tuple[torch.Tensor, torch.Tensor]:
        def total(positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            energy = functional_call(backend, ({**frozen, **theta}, buffers), (graph, positions))
            return energy.energy.sum(), energy.energy

        gradient, energy = grad(total, has_aux=True)(graph.positions)
        return energy, -gradient

    primal = {n: p.detach() for n, p in params.items()}
    energy_cols, force_cols = [], []
    for k in range(dim):
        column = sketch_column(0, k, sum(sizes), dim, dtype=backend.dtype)
        tangent = {
            n: piece.reshape(p.shape)
            for (n, p), piece in zip(params.items(), torch.split(column, sizes))
        }
        _, (d_energy, d_forces) = jvp(energy_forces, (primal,), (tangent,))
        energy_cols.append(d_energy.detach().numpy())
        force_cols.append(d_forces.detach().reshape(-1).numpy())
    return np.stack(energy_cols, 1), np.stack(force_cols, 1)


def method_rows(backends: dict[str, ModelBackend], dim: int) -> list[list[str]]:
    """Double backward (library) vs torch.func forward-over-reverse, 'last-interaction' group."""
    rows = []
    structures = [molecule_30(seed) for seed in range(2)]
    for name, backend in backends.items():
        options = default_options(
            "joint", group="last-interaction", dim=dim, per_atom=False, batch_size=2
        )
        feature_map = build_feature_map(options)
        library = timed(lambda m=feature_map, b=backend: m(b, structures), 1).seconds
        chunk = feature_map(backend, structures)
        start = time.perf_counter()
        try:
            energy, forces = func_jvp_columns(backend, structures, "last-interaction", dim)
        except Exception as exc:  # report, do not hide: torch.func may not trace every model
            rows.append([name, f"{library:.2f}", "failed", type(exc).__name__])
            continue
        func = time.perf_counter() - start
        reference = np.concatenate(
            [
                chunk.values[chunk.offsets[j] + 1 : chunk.offsets[j + 1]]
                for j in range(chunk.n_structures)
            ]
        )
        deviation = np.abs(forces - reference).max() / np.abs(reference).max()
        deviation = max(
            deviation,
            np.abs(energy - chunk.values[chunk.offsets[:-1]]).max()
            / np.abs(chunk.values[chunk.offsets[:-1]]).max(),
        )
        rows.append([name, f"{library:.2f}", f"{func:.2f}", f"{deviation:.1e}"])
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="structures per batch")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats (best is kept)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--full", action="store_true", help="more groups and sketch widths")
    parser.add_argument(
        "--part", choices=("all", "cost", "accuracy", "methods"), default="all", help="tables"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    all_systems = tuple(SYSTEMS)
    default_joint = default_options("joint").dim
    sevennet_configs: list[tuple[str, dict, tuple[str, ...]]] = [
        ("embedding", {}, all_systems),
        ("energy-ntk", {}, all_systems),
        ("energy-ntk", {"group": "last-interaction"}, ("mol30",)),
        ("joint", {}, all_systems),
        ("joint", {"dim": 8}, all_systems),
        ("joint", {"dim": 16}, ("mol30",)),
        ("force-ntk", {"dim": 32}, ("mol30",)),
        ("joint", {"group": "last-interaction", "dim": 4}, ("mol30",)),
    ]
    mace_configs: list[tuple[str, dict, tuple[str, ...]]] = [
        ("embedding", {}, all_systems),
        ("energy-ntk", {}, all_systems),
        ("joint", {}, all_systems),
        ("joint", {"group": "all", "dim": 4}, ("mol30",)),
    ]
    if args.full:
        sevennet_configs += [
            ("force-ntk", {}, all_systems),
            ("energy-ntk", {"group": "all"}, ("mol30",)),
            ("joint", {"group": "all", "dim": 8}, ("mol30",)),
        ]
        mace_configs += [("force-ntk", {"dim": 64}, all_systems)]

    print(f"torch {torch.__version__}, {args.threads} threads, {args.copies} structures per batch")
    print("MACE: no foundation model can be downloaded here; using a MACE-MP-0-small-shaped")
    print("model with random weights built in this script (cost does not depend on weights).")
    print(f"Default joint map: group readout, d = {default_joint}.\n")
    header = ["backend", "map", "group", "d", "system", "n_feat", "s/structure", "x E+F", "peak MB"]
    parts = {"cost", "accuracy", "methods"} if args.part == "all" else {args.part}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sevennet = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
        mace = mace_mp_small_shaped()
        if "cost" in parts:
            print("SevenNet-0 (float32):", flush=True)
            rows = cost_rows("sevennet-0", sevennet, sevennet_configs, args.copies, args.repeats)
            print("MACE (float32):", flush=True)
            rows += cost_rows("mace-small", mace, mace_configs, args.copies, args.repeats)
            print("\nCost (time per structure, batched; x E+F = ratio to one batched energy+force")
            print("evaluation of the same structures, batched the same way):")
            print_table(header, rows)
        if "accuracy" in parts:
            widths = (4, 8, 12, 16, 32, 64) + ((96,) if args.full else ())
            error_rows = kernel_error_rows(sevennet, widths, n_seeds=20)
            print("\nSketch width vs error, joint map, SevenNet-0 readout (exact: d = F = 128):")
            print_table(["d", "kernel K[x,y] rel. error", "row Gram rel. error"], error_rows)
        if "methods" in parts:
            comparison = method_rows({"sevennet-0": sevennet, "mace-small": mace}, dim=2)
            print("\nForce-NTK columns, 'last-interaction' group, d = 2, two 30-atom molecules:")
            print("library double backward vs torch.func forward-over-reverse (s, max rel. diff):")
            print_table(
                ["backend", "double backward s", "torch.func jvp s", "max rel. diff"], comparison
            )


if __name__ == "__main__":
    main()
