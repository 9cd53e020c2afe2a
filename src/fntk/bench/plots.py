"""Learning-curve plot of a benchmark: one panel per test split and error metric.

Matplotlib runs on a :class:`~matplotlib.figure.Figure` it owns with the Agg canvas (no pyplot
global state), so plotting works headless and inside worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from fntk.bench.results import METRIC_LABELS, METRICS, ResultRow, mean_curves
from fntk.io import atomic_write_with

_PLAIN = FuncFormatter(lambda value, _: f"{value:g}")
"""Tick labels of log axes as plain numbers (300, not 3 x 10^2)."""


def plot_learning_curves(rows: Sequence[ResultRow], path: str | os.PathLike) -> Path:
    """Mean ± std over seeds of every metric versus labelled-set size, both on log axes (a
    learning curve is close to a straight line there); write a PNG.

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
            # NaN curves (energy-only splits) give matplotlib no data limits to log-scale
            plotted = [
                c for (_, sp), c in curves.items() if sp == split and np.isfinite(c.mean).any()
            ]
            if plotted and all(c.n_labels.min() > 0 for c in plotted):
                ax.set_xscale("log")
                sizes = sorted({float(n) for c in plotted for n in c.n_labels})
                ax.set_xticks(sizes, [f"{n:g}" for n in sizes])
                ax.xaxis.set_minor_formatter(NullFormatter())
            means = np.concatenate([c.mean for c in plotted]) if plotted else np.zeros(0)
            if means.size and np.all(np.isfinite(means) & (means > 0)):
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(_PLAIN)
                ax.yaxis.set_minor_formatter(_PLAIN)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    path = Path(path)
    FigureCanvasAgg(figure)
    # atomically, like every output: a full disk is one line and leaves no half-written PNG
    atomic_write_with(path, lambda h: figure.savefig(h, format="png", dpi=100), binary=True)
    return path
