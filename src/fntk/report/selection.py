"""The report of one ``fntk select`` run: three PNG plots and an HTML page that shows them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fntk.io import iter_frames
from fntk.report.html import render_report
from fntk.report.plots import plot_composition, plot_posterior_variance, plot_projection
from fntk.report.profile import StructureProfile, picks_vs_pool_rows

if TYPE_CHECKING:
    from fntk.pipeline import SelectRun


def write_selection_report(run: SelectRun, out_dir: str | Path) -> dict[str, Path]:
    """Write pv_histogram.png, projection.png, composition.png and report.html to ``out_dir``."""
    out = Path(out_dir)
    data = run.plot_data
    result = run.result
    picked_pv = np.array([a.info["fntk_posterior_variance"] for a in run.picked])
    paths = {
        "pv_histogram": plot_posterior_variance(
            result.shortlist.posterior_variance, picked_pv, out / "pv_histogram.png"
        ),
        "composition": plot_composition(
            data.pool_element_counts,
            data.pool_sizes.tolist(),
            [a.numbers for a in run.picked],
            out / "composition.png",
        ),
    }
    figures = [
        ("Posterior variance: shortlist (top candidates) vs picked", "pv_histogram.png"),
        ("Elements and sizes: pool vs picked", "composition.png"),
    ]
    if data.pool_summaries.size and data.picked_summaries.size:
        paths["projection"] = plot_projection(
            data.train_summaries, data.pool_summaries, data.picked_summaries, out / "projection.png"
        )
        figures.insert(1, ("Features, first two principal components", "projection.png"))
    options = run.options
    summary = {
        "model": run.model_spec,
        "feature map": options.features.name,
        "selector": options.select.method,
        "pool structures": run.n_pool,
        "training structures": run.n_train,
        "excluded (already in training set)": len(run.excluded_duplicates),
        "shortlist size": len(run.shortlist),
        "picked": len(run.picked),
        "seed": options.seed,
        **{f"time: {k} (s)": f"{v:.2f}" for k, v in run.timings_s.items()},
    }
    rows = [
        {
            "rank": a.info["fntk_rank"],
            "file": a.info["fntk_source_file"],
            "frame": a.info["fntk_source_index"],
            "formula": a.get_chemical_formula(),
            "score": f"{a.info['fntk_score']:.4g}",
            "posterior variance": f"{a.info['fntk_posterior_variance']:.4g}",
        }
        for a in run.picked
    ]
    pool_profile = StructureProfile.of(atoms for _, _, atoms in iter_frames(run.files["pool"]))
    profile_rows = picks_vs_pool_rows(pool_profile, StructureProfile.of(run.picked))
    paths["report"] = render_report(
        out / "report.html",
        title="fntk selection report",
        summary=summary,
        figures=figures,
        picked_rows=rows,
        tables=[("Picks vs pool (atoms, largest reference force, info tags)", profile_rows)],
    )
    return paths
