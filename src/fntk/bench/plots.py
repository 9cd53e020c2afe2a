"""Learning-curve plot of a benchmark: one panel per test split and error metric.

Matplotlib runs on a :class:`~matplotlib.figure.Figure` it owns with the Agg canvas (no pyplot
global state), so plotting works headless and inside worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fntk.bench.results import METRIC_LABELS, METRICS, ResultRow, mean_curves
from fntk.io import atomic_write_with


def plot_learning_curves(rows: Sequence[ResultRow], path: str | os.PathLike) -> Path:
    """Mean ± std over seeds of every metric versus labelled-set size; write a PNG.

    Parameters
    ----------
    rows : sequence of ResultRow
    path : path
        PNG file to write.

    Returns
    -------
    Path
        ``path``.
    """
    splits = list(dict.fromkeys(r.split for r in rows))
    methods = list(dict.fromkeys(r.method for r in rows))
    figure = Figure(figsize=(3.4 * len(METRICS), 2.8 * max(len(splits), 1)), layout="constrained")
    axes = figure.subplots(max(len(splits), 1), len(METRICS), squeeze=False)
    for column, metric in enumerate(METRICS):
        curves = mean_curves(rows, metric)
        for row_index, split in enumerate(splits):
            ax = axes[row_index][column]
            for method in methods:
                curve = curves.get((method, split))
                if curve is None or not len(curve.n_labels):
                    continue
                line = ax.plot(curve.n_labels, curve.mean, marker="o", ms=3, label=method)[0]
                ax.fill_between(
                    curve.n_labels,
                    curve.mean - curve.std,
                    curve.mean + curve.std,
                    color=line.get_color(),
                    alpha=0.2,
                    linewidth=0,
                )
            ax.set_title(f"{split}: {METRIC_LABELS[metric]}", fontsize=9)
            ax.set_xlabel("labelled structures")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    path = Path(path)
    FigureCanvasAgg(figure)
    # atomically, like every output: a full disk is one line and leaves no half-written PNG
    atomic_write_with(path, lambda h: figure.savefig(h, format="png", dpi=100), binary=True)
    return path
