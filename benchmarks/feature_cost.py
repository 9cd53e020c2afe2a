"""Cost of every feature map relative to one energy+force evaluation, and sketch accuracy.

For SevenNet-0 (real pretrained weights) and a MACE model of MACE-MP-0-small's shape (random
weights: no foundation MACE can be downloaded here, and cost does not depend on weight values),
each map is timed on batches of rattled copies of a 30-atom molecule, a 60-atom Cu(111) slab and
a 120-atom Cu cell, in one run; the ratio column divides by one batched energy+force evaluation
of the same model on the same batch (graph building included in both). Peak memory is the
largest growth of the process's resident memory while the map ran (sampled every 5 ms).
A second table gives the accuracy/cost trade-off of the width k of the joint map with
SevenNet-0's readout on a small ``xtb-reactions`` set (20 training, 150 pool structures, made
with ``fntk.data.make_dataset`` and cached with its exact features): the library's seeded random
sketch against data-adaptive bases of the same width built from a seeded pool sample, each
compared with the exact map (d = F = 128) by kernel errors, the rank correlation of the pool's
posterior variance and the overlap of lcmd picks (``width_rows``).
Baselines: a naive row-by-row force Jacobian of SevenNet-0's readout took 64 s for one 30-atom
molecule; SevenNet-0 energy+forces through its ASE calculator takes ~0.3 s.

    python benchmarks/feature_cost.py            # default set, ~15 minutes on 2 CPU cores
    python benchmarks/feature_cost.py --part accuracy --data DIR   # width table only
    python benchmarks/feature_cost.py --full     # adds 'all'-group sketches and larger d
    python benchmarks/feature_cost.py --copies 8 --threads 4 --repeats 3
    python benchmarks/feature_cost.py --part accuracy   # one table: cost, accuracy or methods
"""

from __future__ import annotations

import argparse
import ctypes
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule

from fntk.features import (
    FeatureChunk,
    JointNTKOptions,
    build_feature_map,
    default_options,
    force_row_weight,
    sketch_column,
)
from fntk.features.assembly import iter_batches
from fntk.features.ntk import hidden_basis
from fntk.features.options import DEFAULT_ENERGY_WEIGHT, DEFAULT_FORCES_WEIGHT
from fntk.features.readout import LinearReadout, linear_readout
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


@dataclass
class WidthData:
    """Exact joint features (d = F) of a training set and a pool, and SevenNet-0's readout."""

    train: FeatureChunk
    pool: FeatureChunk
    root: np.ndarray  # R = (M^T M)^{1/2}: exact features are H R, H the hidden-space rows
    readout: LinearReadout
    options: JointNTKOptions
    seconds_exact: float  # per structure, exact map (F backward passes)
    timing_structures: list[Atoms]  # the first 40 pool structures, for the cost column


def xtb_width_data(backend: ModelBackend, directory: Path, n_pool: int) -> WidthData:
    """Make (or reuse) a small ``xtb-reactions`` set in ``directory`` and its exact features.

    The exact features are cached in ``directory/exact-features.npz`` (1.7 s per structure on
    one thread): reruns only recompute the sketches.
    """
    from fntk.data import make_dataset

    sizes = {"init": 20, "pool": n_pool, "test_id": 0, "test_ood": 0}
    if not (directory / "pool.xyz").is_file():
        make_dataset("xtb-reactions", directory, sizes=sizes, seed=0)
    train = ase.io.read(directory / "init.xyz", ":")
    pool = ase.io.read(directory / "pool.xyz", f":{n_pool}")
    weight = force_row_weight(DEFAULT_ENERGY_WEIGHT, DEFAULT_FORCES_WEIGHT, [len(a) for a in train])
    options = default_options("joint", dim=backend.n_node_features, force_weight=weight)
    readout = linear_readout(backend, "readout")
    root = hidden_basis(readout, options).double().numpy()
    cache = directory / f"exact-features-{n_pool}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            chunks = [
                FeatureChunk(**{k[6:]: saved[k] for k in saved if k[:6] == p})
                for p in ("train_", "pool__")
            ]
            seconds = float(saved["seconds"])
    else:
        feature_map = build_feature_map(options)
        start = time.perf_counter()
        chunks = [
            feature_map(backend, train, -1 - np.arange(len(train))),
            feature_map(backend, pool, np.arange(len(pool))),
        ]
        seconds = (time.perf_counter() - start) / (len(train) + len(pool))
        arrays = {"seconds": np.array(seconds)}
        for prefix, chunk in zip(("train_", "pool__"), chunks):
            arrays.update({prefix + f: getattr(chunk, f) for f in _CHUNK_FIELDS})
        np.savez(cache, **arrays)
    return WidthData(chunks[0], chunks[1], root, readout, options, seconds, pool[:40])


_CHUNK_FIELDS = ("values", "offsets", "source_index", "n_atoms", "row_kind")


def with_values(chunk: FeatureChunk, values: np.ndarray) -> FeatureChunk:
    return FeatureChunk(values, chunk.offsets, chunk.source_index, chunk.n_atoms, chunk.row_kind)


def adaptive_directions(name: str, sample: FeatureChunk, train: FeatureChunk, k: int) -> np.ndarray:
    """Orthonormal k directions (F x k) in the coordinates of the exact rows.

    ``pca``: top-k eigenvectors of the sample's ``C_s = sum Phi^T Phi`` (the best rank-k fit of
    its row kernels). ``posterior``: top-k generalised eigenvectors of ``C_s u = mu A u`` with
    ``A = C_train + sigma^2 I`` (relative 1e-6), the directions where the sample has the most
    posterior variance. ``hybrid``: k/2 of each, orthonormalised.
    """
    import scipy.linalg

    def gram(chunk: FeatureChunk) -> np.ndarray:
        values = chunk.values.astype(np.float64)
        return values.T @ values

    c_sample, c_train = gram(sample), gram(train)
    if name == "pca":
        return np.linalg.eigh(c_sample)[1][:, ::-1][:, :k]
    if name == "posterior":
        precision = c_train + 1e-6 * np.trace(c_train) / len(c_train) * np.eye(len(c_train))
        vectors = scipy.linalg.eigh(c_sample, precision)[1][:, ::-1][:, :k]
        return np.linalg.qr(vectors)[0]
    half = k // 2
    both = [adaptive_directions("pca", sample, train, half)]
    both.append(adaptive_directions("posterior", sample, train, k - half))
    return np.linalg.qr(np.hstack(both))[0]


def posterior_variance(train: FeatureChunk, pool: FeatureChunk) -> np.ndarray:
    """Mean per-row PV of each pool structure, A = sigma^2 I + sum Phi^T Phi (relative 1e-6)."""
    x = train.values.astype(np.float64)
    a = x.T @ x
    sigma2 = 1e-6 * np.trace(a) / len(a)
    inverse = np.linalg.inv(a + sigma2 * np.eye(len(a)))
    rows = pool.values.astype(np.float64)
    per_row = sigma2 * np.einsum("ij,jk,ik->i", rows, inverse, rows)
    return np.add.reduceat(per_row, pool.offsets[:-1]) / np.diff(pool.offsets)


def structure_kernel(chunk: FeatureChunk) -> np.ndarray:
    grams = [chunk.block(j).astype(np.float64) for j in range(chunk.n_structures)]
    grams = np.stack([b.T @ b for b in grams]).reshape(len(grams), -1)
    return grams @ grams.T


def width_metrics(data: WidthData, train: FeatureChunk, pool: FeatureChunk, n_pick: int) -> dict:
    """Errors of sketched features (train, pool) against the exact ones, and pick agreement."""
    exact_rows = [data.pool.block(j).astype(np.float64) for j in range(pool.n_structures)]
    rows = [pool.block(j).astype(np.float64) for j in range(pool.n_structures)]
    row_gram = np.mean(
        [
            np.linalg.norm(b @ b.T - e @ e.T) / np.linalg.norm(e @ e.T)
            for b, e in zip(rows, exact_rows)
        ]
    )
    k_exact, k_approx = structure_kernel(data.pool), structure_kernel(pool)
    pv_exact, pv = posterior_variance(data.train, data.pool), posterior_variance(train, pool)
    spearman = np.corrcoef(np.argsort(np.argsort(pv)), np.argsort(np.argsort(pv_exact)))[0, 1]
    picks = set(_picks(train, pool, n_pick))
    return {
        "row_gram": row_gram,
        "kernel": np.linalg.norm(k_approx - k_exact) / np.linalg.norm(k_exact),
        "pv_spearman": spearman,
        "picks": len(picks & set(_picks(data.train, data.pool, n_pick))) / n_pick,
    }


def _picks(train: FeatureChunk, pool: FeatureChunk, n: int) -> list[int]:
    from fntk.select import Selector

    result = Selector("lcmd").fit([train]).select([pool], n=n, random_state=0)
    return [int(i) for i in result.indices]


def width_rows(
    backend: ModelBackend, data: WidthData, widths: tuple[int, ...], n_seeds: int, n_pick: int
) -> list[list[str]]:
    """Random sketch (library basis, n_seeds seeds) vs data-adaptive bases, per width k.

    A seeded sample of 30 pool structures gives the adaptive bases (:func:`adaptive_directions`
    with the training set); every error is measured on the other pool structures. Every basis B
    (F x k) gives features ``H B = Phi_exact R^{-1} B`` from the exact ones, so a basis costs
    no model passes here; the cost column times the library's joint map of width k on 40 pool
    structures (an adaptive map costs the same per structure, plus the exact map on its 30 +
    training structures once: ``seconds_exact`` each).
    """
    import dataclasses

    inverse_root = np.linalg.inv(data.root)
    chosen = np.sort(np.random.default_rng(0).choice(data.pool.n_structures, 30, replace=False))
    rest = np.setdiff1d(np.arange(data.pool.n_structures), chosen)
    sample = data.pool.subset(chosen)
    held_out = dataclasses.replace(data, pool=data.pool.subset(rest))
    structures = data.timing_structures
    baseline = timed(lambda: energy_forces(backend, structures), 1).seconds / len(structures)
    rows = []

    def metrics_of(basis: np.ndarray) -> dict:
        to_basis = inverse_root @ basis
        train, pool = (
            with_values(c, c.values.astype(np.float64) @ to_basis)
            for c in (held_out.train, held_out.pool)
        )
        return width_metrics(held_out, train, pool, n_pick)

    exact = metrics_of(data.root)
    rows.append(_width_row("exact", data.root.shape[0], exact, data.seconds_exact, baseline, 1))
    for k in widths:
        options = data.options.model_copy(update={"dim": k})
        feature_map = build_feature_map(options)
        seconds = timed(lambda m=feature_map: m(backend, structures), 1).seconds / len(structures)
        seeded = [
            metrics_of(
                hidden_basis(data.readout, options.model_copy(update={"seed": s})).double().numpy()
            )
            for s in range(n_seeds)
        ]
        mean = {key: float(np.mean([m[key] for m in seeded])) for key in seeded[0]}
        rows.append(_width_row("random", k, mean, seconds, baseline, n_seeds))
        for name in ("pca", "posterior", "hybrid"):
            directions = adaptive_directions(name, sample, data.train, k)
            rows.append(
                _width_row(
                    f"{name}-pool30", k, metrics_of(data.root @ directions), seconds, baseline, 1
                )
            )
        print("  " + " | ".join(rows[-4]), flush=True)
    return rows


def _width_row(name: str, k: int, m: dict, seconds: float, baseline: float, n: int) -> list[str]:
    return [
        name,
        str(k),
        f"{m['row_gram']:.3f}",
        f"{m['kernel']:.3f}",
        f"{m['pv_spearman']:.3f}",
        f"{m['picks']:.2f}",
        f"{seconds:.3f}",
        f"{seconds / baseline:.1f}",
        str(n),
    ]


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
    parser.add_argument(
        "--data",
        default=os.path.join(tempfile.gettempdir(), "fntk-feature-cost-xtb"),
        help="directory of the xtb-reactions set of the accuracy table (made when missing)",
    )
    parser.add_argument("--pool", type=int, default=150, help="pool structures of that table")
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
            widths = (8, 12, 16, 32, 64) + ((96,) if args.full else ())
            data = xtb_width_data(sevennet, Path(args.data), args.pool)
            print(f"\nxtb-reactions (seed 0): {data.train.n_structures} training structures,")
            print(f"{data.pool.n_structures} pool structures; joint map, SevenNet-0 readout,")
            print(f"lambda = {data.options.force_weight:.3f} (force_row_weight, loss defaults).")
            error_rows = width_rows(sevennet, data, widths, n_seeds=5, n_pick=20)
            print("\nWidth k vs error against the exact map (d = F = 128). row Gram: mean relative")
            print("Frobenius error of each pool structure's Phi Phi^T; K: of the structure kernel")
            print("K[x,y] = <Phi_x^T Phi_x, Phi_y^T Phi_y> over the pool; PV rho: Spearman")
            print("correlation of the pool's posterior variance (train = init); picks: share of")
            print("the exact map's 20 lcmd picks also picked; all on the pool minus a seeded")
            print("sample of 30 structures. random: the library's seeded sketch (mean of 5 seeds);")
            print("pca/posterior/hybrid-pool30: bases from that sample's exact rows (pca: top-k")
            print("principal directions; posterior: top-k generalised eigenvectors against the")
            print("training precision; hybrid: k/2 of each; see adaptive_directions).")
            print_table(
                [
                    "basis",
                    "k",
                    "row Gram err",
                    "K err",
                    "PV rho",
                    "picks",
                    "s/structure",
                    "x E+F",
                    "seeds",
                ],
                error_rows,
            )
        if "methods" in parts:
            comparison = method_rows({"sevennet-0": sevennet, "mace-small": mace}, dim=2)
            print("\nForce-NTK columns, 'last-interaction' group, d = 2, two 30-atom molecules:")
            print("library double backward vs torch.func forward-over-reverse (s, max rel. diff):")
            print_table(
                ["backend", "double backward s", "torch.func jvp s", "max rel. diff"], comparison
            )


if __name__ == "__main__":
    main()
