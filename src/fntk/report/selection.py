"""The report of one ``fntk select`` run: three PNG plots and an HTML page that shows them.

The report takes a plain record (:class:`SelectionRecord`: numbers, strings and arrays), not the
pipeline's run object, so the report layer sits below the pipeline that fills it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fntk.report.html import render_report
from fntk.report.plots import plot_composition, plot_posterior_variance, plot_projection
from fntk.report.profile import StructureProfile


@dataclass
class PlotData:
    """What the report plots need, in memory independent of the pool size.

    ``*_summaries`` are :func:`fntk.report.plots.structure_summaries` of the training set, of a
    deterministic subsample of at most ``fntk.pipeline.job.PLOT_SAMPLE`` pool structures, and of
    the picks.
    """

    train_summaries: np.ndarray
    pool_summaries: np.ndarray
    picked_summaries: np.ndarray
    pool_element_counts: Counter[int]
    pool_sizes: np.ndarray
    pool_profile: StructureProfile | None = None
    """Of every pool structure, gathered during the pipeline's one pass over the pool."""


@dataclass
class SelectionRecord:
    """Everything the report shows of one selection run.

    Attributes
    ----------
    summary : dict
        Label -> value rows of the summary table (model, map, counts, timings).
    shortlist_pv : ndarray, shape (M,), float64
        Normalised posterior variance of every shortlisted candidate.
    picked_pv : ndarray, shape (n,), float64
        Normalised posterior variance of the picks, in pick order.
    picked_numbers : list of ndarray
        Atomic numbers of each pick.
    picked_rows : list of dict
        One row of the picks table per pick (rank, file, frame, formula, score, ...).
    plot : PlotData
    profile_rows : list of dict
        Picks vs pool: atom count, largest reference force, info tags.
    """

    summary: dict[str, object]
    shortlist_pv: np.ndarray
    picked_pv: np.ndarray
    picked_numbers: list[np.ndarray]
    picked_rows: list[dict[str, object]] = field(default_factory=list)
    plot: PlotData | None = None
    profile_rows: list[dict[str, object]] = field(default_factory=list)
    """Picks vs pool table (:func:`fntk.report.profile.picks_vs_pool_rows`)."""


def write_selection_report(record: SelectionRecord, out_dir: str | Path) -> dict[str, Path]:
    """Write pv_histogram.png, projection.png, composition.png and report.html to ``out_dir``."""
    out = Path(out_dir)
    data = record.plot
    paths = {
        "pv_histogram": plot_posterior_variance(
            record.shortlist_pv, record.picked_pv, out / "pv_histogram.png"
        ),
    }
    figures = [("Posterior variance: shortlist (top candidates) vs picked", "pv_histogram.png")]
    if data is not None:
        paths["composition"] = plot_composition(
            data.pool_element_counts,
            data.pool_sizes.tolist(),
            record.picked_numbers,
            out / "composition.png",
        )
        figures.append(("Elements and sizes: pool vs picked", "composition.png"))
        if data.pool_summaries.size and data.picked_summaries.size:
            paths["projection"] = plot_projection(
                data.train_summaries,
                data.pool_summaries,
                data.picked_summaries,
                out / "projection.png",
            )
            figures.insert(1, ("Features, first two principal components", "projection.png"))
    paths["report"] = render_report(
        out / "report.html",
        title="fntk selection report",
        summary=record.summary,
        figures=figures,
        picked_rows=record.picked_rows,
        tables=[("Picks vs pool (atoms, largest reference force, info tags)", record.profile_rows)]
        if record.profile_rows
        else [],
    )
    return paths
