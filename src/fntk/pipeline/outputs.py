"""The files of a selection run: selected.xyz, scores.csv, run.json and the HTML report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from fntk.io import atomic_write_text, write_extxyz
from fntk.pipeline.job import SelectRun
from fntk.report.profile import StructureProfile, picks_vs_pool_rows
from fntk.report.selection import SelectionRecord, write_selection_report

SCORE_COLUMNS = (
    "rank",
    "source_file",
    "source_index",
    "pool_index",
    "n_atoms",
    "posterior_variance",
    "picked",
    "score",
)
"""Columns of scores.csv, one row per shortlisted candidate."""


def write_outputs(run: SelectRun, out_dir: str | Path, *, report: bool = True) -> dict[str, Path]:
    """Write selected.xyz, scores.csv, run.json and (optionally) report.html with its PNGs."""
    out = Path(out_dir)
    protected = run.files.get("pool", []) + run.files.get("train", [])
    paths = {
        "selected": out / "selected.xyz",
        "scores": out / "scores.csv",
        "run": out / "run.json",
    }
    write_extxyz(paths["selected"], run.picked, protected=protected)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SCORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.shortlist)
    atomic_write_text(paths["scores"], buffer.getvalue())
    atomic_write_text(paths["run"], json.dumps(run.run_record(), indent=2, default=str) + "\n")
    if report:
        paths.update(write_selection_report(selection_record(run), out))
    return paths


def selection_record(run: SelectRun) -> SelectionRecord:
    """What the report shows of ``run``, as a plain record."""
    options = run.options
    summary: dict[str, object] = {
        "model": run.model_spec,
        "feature map": options.features.name,
        "selector": options.select.method,
        "pool structures": run.n_pool,
        "training structures": run.n_train,
        "excluded (already in training set)": len(run.excluded_duplicates),
        "excluded (repeats of an earlier pool structure)": len(run.pool_duplicates),
        "shortlist size": len(run.shortlist),
        "picked": len(run.picked),
        "seed": options.seed,
        **{f"time: {k} (s)": f"{v:.2f}" for k, v in run.timings_s.items()},
    }
    rows: list[dict[str, object]] = [
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
    return SelectionRecord(
        summary=summary,
        shortlist_pv=run.result.shortlist.posterior_variance,
        picked_pv=np.array([a.info["fntk_posterior_variance"] for a in run.picked]),
        picked_numbers=[a.numbers for a in run.picked],
        picked_rows=rows,
        plot=run.plot_data,
        profile_rows=[]
        if run.plot_data is None or run.plot_data.pool_profile is None
        else picks_vs_pool_rows(run.plot_data.pool_profile, StructureProfile.of(run.picked)),
    )
