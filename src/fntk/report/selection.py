"""The report of one ``fntk select`` run: three PNG plots and an HTML page that shows them.

The report takes a plain record (:class:`SelectionRecord`: numbers, strings and arrays), not the
pipeline's run object, so the report layer sits below the pipeline that fills it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from fntk.report.html import render_report
from fntk.report.plots import (
    plot_composition,
    plot_posterior_variance,
    plot_predicted_errors,
    plot_projection,
    write_thumbnail,
)
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
    picked_structures: list[Atoms] = field(default_factory=list)
    """The picks, for thumbnails (the first :data:`THUMBNAILS`)."""
    stopping: dict[str, Any] | None = None
    """The stopping signal of ``run.json`` (``fntk.pipeline.uncertainty.pool_error_signal``)."""


THUMBNAILS = 24
"""Most picks drawn as thumbnails in the report."""


def calibration_line(calibration: dict[str, Any]) -> str:
    """One line on the stopping signal's calibration: set size, fitted scale and noise, and
    the coverage of the calibrated intervals on the calibration structures themselves."""
    fitted = calibration["error_model"]["force_calibration"]
    scores = calibration["force_scores"]
    dropped = len(calibration["dropped_overlap"])
    return (
        f"{calibration['n_structures']} labelled structures"
        + (f" ({dropped} dropped: in the training set)" if dropped else "")
        + f"; scale {fitted['scale']:.3g}, noise floor {np.sqrt(fitted['noise']):.3g} eV/Å, "
        f"relative noise {calibration['error_model']['relative_noise']:g}; coverage of the "
        f"68%/95% intervals on them {scores['coverage_68']:.2f}/{scores['coverage_95']:.2f}"
    )


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
    summary = dict(record.summary)
    if record.stopping is not None:
        stop = record.stopping
        unit = "eV/Å, calibrated" if stop.get("calibrated") else "uncalibrated"
        summary[f"predicted pool force RMSE before the batch ({unit})"] = (
            f"{stop['pool_force_rmse_before']:.4g}"
        )
        summary[f"predicted pool force RMSE after the batch ({unit})"] = (
            f"{stop['pool_force_rmse_after']:.4g} ({100 * stop['relative_change']:+.1f}%, "
            f"sample of {stop['n_sample']})"
        )
        if "calibration" in stop:
            summary["stopping-signal calibration"] = calibration_line(stop["calibration"])
        paths["predicted_errors"] = plot_predicted_errors(
            stop["before_per_structure"],
            stop["after_per_structure"],
            out / "predicted_errors.png",
            unit=unit,
        )
        figures.append(
            (
                "Predicted force RMSE of a pool sample before and after labelling the batch "
                "(the stopping signal: when the batch barely moves it, stop)",
                "predicted_errors.png",
            )
        )
    thumbnails = []
    for rank, atoms in enumerate(record.picked_structures[:THUMBNAILS], start=1):
        name = f"thumbnails/pick_{rank:03d}.png"
        (out / "thumbnails").mkdir(exist_ok=True)
        write_thumbnail(atoms, out / name)  # a folder of the run (OUTPUT_NAMES), not an output file
        thumbnails.append((f"#{rank} {atoms.get_chemical_formula()}", name))
    paths["report"] = render_report(
        out / "report.html",
        title="fntk selection report",
        summary=summary,
        figures=figures,
        thumbnails=thumbnails,
        picked_rows=record.picked_rows,
        tables=[("Picks vs pool (atoms, largest reference force, info tags)", record.profile_rows)]
        if record.profile_rows
        else [],
    )
    return paths
