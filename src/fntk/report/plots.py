"""PNG plots of a selection: posterior variance, a 2-D feature projection, composition.

Matplotlib runs with the non-interactive Agg backend on a figure object it owns (no pyplot global
state), so plots work on headless machines and inside worker processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fntk.chunk import FeatureChunk
from fntk.io import atomic_write_with

POOL_COLOR, PICKED_COLOR, TRAIN_COLOR = "#9aa5b1", "#d1495b", "#2e86ab"


def structure_summaries(chunk: FeatureChunk) -> np.ndarray:
    """One invariant vector per structure for plotting, shape (n_structures, n_features).

    The square root of the diagonal of Phi^T Phi: unchanged by atom order and by rotations of the
    structure (which rotate the force rows among themselves), and never a sum of force rows,
    which is zero (DESIGN.md section 2, pitfall).
    """
    squares = np.add.reduceat(chunk.values.astype(np.float64) ** 2, chunk.offsets[:-1], axis=0)
    squares[chunk.rows_per_structure == 0] = 0.0
    return np.sqrt(squares)


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    # atomically, like every output: a full disk leaves no half-written PNG
    atomic_write_with(
        path,
        lambda handle: figure.savefig(handle, format="png", dpi=110, bbox_inches="tight"),
        binary=True,
    )
    return path


def plot_posterior_variance(
    pool_variance: np.ndarray, picked_variance: np.ndarray, path: str | Path
) -> Path:
    """Histogram (log x axis) of the posterior variance of the pool and of the picked batch."""
    figure = Figure(figsize=(6, 3.6))
    ax = figure.add_subplot()
    positive = pool_variance[pool_variance > 0]
    low, high = (positive.min(), positive.max()) if len(positive) else (1e-12, 1.0)
    bins = np.geomspace(low, max(high, low * 10), 40).tolist()
    ax.hist(positive, bins=bins, color=POOL_COLOR, label=f"pool ({len(pool_variance)})")
    ax.hist(
        picked_variance[picked_variance > 0],
        bins=bins,
        color=PICKED_COLOR,
        histtype="step",  # an outline, so the pool bars underneath stay visible
        linewidth=2,
        label=f"picked ({len(picked_variance)})",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("posterior variance")
    ax.set_ylabel("structures")
    ax.legend(frameon=False)
    return _save(figure, Path(path))


def robust_limits(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits per column spanning the central 98% of ``points`` (n, k), widened by 10%."""
    low, high = np.percentile(points, [1, 99], axis=0)
    pad = 0.1 * np.maximum(high - low, 1e-12)
    return low - pad, high + pad


def plot_projection(
    train: np.ndarray, pool: np.ndarray, picked: np.ndarray, path: str | Path
) -> Path:
    """Scatter of the first two principal components (fitted on train + pool summaries)."""
    stacked = np.concatenate([a for a in (train, pool) if len(a)])
    mean = stacked.mean(axis=0)
    _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    axes = vt[:2].T if vt.shape[0] >= 2 else np.pad(vt.T, ((0, 0), (0, 2 - vt.shape[0])))

    figure = Figure(figsize=(5.5, 5))
    ax = figure.add_subplot()
    groups = [
        (data, color, label, size)
        for data, color, label, size in (
            (pool, POOL_COLOR, "pool (sample)", 8),
            (train, TRAIN_COLOR, "train", 14),
            (picked, PICKED_COLOR, "picked", 30),
        )
        if len(data)
    ]
    projected = [(data - mean) @ axes for data, *_ in groups]
    # A few outliers would squash everything else into a corner: the axes span the central 98%
    # of the points (widened by 10%), and points beyond are drawn on the edge as triangles.
    low, high = robust_limits(np.concatenate(projected))
    n_clipped = 0
    for xy, (data, color, label, size) in zip(projected, groups):
        outside = ((xy < low) | (xy > high)).any(axis=1)
        n_clipped += int(outside.sum())
        clipped = np.clip(xy, low, high)
        ax.scatter(
            clipped[~outside, 0],
            clipped[~outside, 1],
            s=size,
            c=color,
            label=f"{label} ({len(data)})",
        )
        if outside.any():
            ax.scatter(clipped[outside, 0], clipped[outside, 1], s=size, c=color, marker="^")
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if n_clipped:
        ax.set_title(
            f"{n_clipped} points beyond the central 98% drawn on the edge (triangles)",
            fontsize=9,
        )
    ax.legend(frameon=False, loc="best")
    return _save(figure, Path(path))


def plot_composition(
    pool_element_counts: Counter[int],
    pool_sizes: Sequence[int],
    picked_numbers: Sequence[np.ndarray],
    path: str | Path,
) -> Path:
    """Element frequencies (share of structures containing each element) and size histograms.

    ``pool_element_counts[z]`` is the number of pool structures containing element ``z``; the
    pool is summarised by counts so that it never has to sit in memory.
    """
    figure = Figure(figsize=(9, 3.6))
    ax_elements, ax_sizes = figure.subplots(1, 2)
    picked_counts = Counter(z for numbers in picked_numbers for z in set(numbers.tolist()))
    elements = sorted(set(pool_element_counts) | set(picked_counts))
    x = np.arange(len(elements))
    for offset, counts, total, color, label in (
        (-0.2, pool_element_counts, len(pool_sizes), POOL_COLOR, "pool"),
        (0.2, picked_counts, len(picked_numbers), PICKED_COLOR, "picked"),
    ):
        share = [counts[z] / max(total, 1) for z in elements]
        ax_elements.bar(x + offset, share, width=0.4, color=color, label=label)
    ax_elements.set_xticks(x, [chemical_symbols[z] for z in elements])
    ax_elements.set_ylabel("share of structures containing it")
    ax_elements.legend(frameon=False)

    picked_sizes = [len(n) for n in picked_numbers]
    bins = np.histogram_bin_edges(list(pool_sizes) + picked_sizes, bins=20)
    ax_sizes.hist(pool_sizes, bins=bins, color=POOL_COLOR, density=True, label="pool")
    ax_sizes.hist(
        picked_sizes, bins=bins, color=PICKED_COLOR, density=True, alpha=0.7, label="picked"
    )
    ax_sizes.set_xlabel("atoms per structure")
    ax_sizes.set_ylabel("density")
    ax_sizes.legend(frameon=False)
    return _save(figure, Path(path))


def plot_predicted_errors(
    before: Sequence[float], after: Sequence[float], path: str | Path, unit: str = "uncalibrated"
) -> Path:
    """Histogram of the predicted force RMSE of a pool sample before and after the batch
    (``unit`` labels the axis: ``eV/Å, calibrated`` or ``uncalibrated``)."""
    figure = Figure(figsize=(6, 3.6))
    ax = figure.add_subplot()
    values = np.concatenate([np.asarray(before, float), np.asarray(after, float)])
    bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=30).tolist()
    ax.hist(before, bins=bins, color=POOL_COLOR, label=f"before (mean {np.mean(before):.3g})")
    ax.hist(
        after,
        bins=bins,
        color=PICKED_COLOR,
        histtype="step",
        linewidth=2,
        label=f"after the batch (mean {np.mean(after):.3g})",
    )
    ax.set_xlabel(f"predicted force RMSE ({unit})")
    ax.set_ylabel("pool structures (sample)")
    ax.legend(frameon=False)
    return _save(figure, Path(path))


def write_thumbnail(atoms: Atoms, path: str | Path) -> Path:
    """A small PNG of ``atoms`` drawn by ASE's own renderer (no cell, slight tilt)."""
    import ase.io

    path = Path(path)
    ase.io.write(path, atoms, format="png", rotation="10x,20y", show_unit_cell=0, scale=30)
    return path
