"""The selection report: thumbnails of picks, the stopping signal and its histogram, an outlier
that no longer squashes the projection, and tables that scroll instead of overflowing."""

from __future__ import annotations

from collections import Counter

import numpy as np
from ase.build import molecule

from fntk.report.plots import plot_projection, robust_limits
from fntk.report.selection import PlotData, SelectionRecord, write_selection_report


def test_report_shows_thumbnails_and_stopping_signal(tmp_path):
    rng = np.random.default_rng(0)
    picks = [molecule("CH4"), molecule("H2O")]
    pool = rng.normal(size=(50, 4))
    pool[0] = 400.0  # one outlier
    record = SelectionRecord(
        summary={"model": "test"},
        shortlist_pv=rng.uniform(0.1, 1.0, size=20),
        picked_pv=np.array([0.9, 0.8]),
        picked_numbers=[a.numbers for a in picks],
        picked_rows=[{"rank": 1, "file": "/a/very/long/path/" * 10}],
        plot=PlotData(
            train_summaries=rng.normal(size=(5, 4)),
            pool_summaries=pool,
            picked_summaries=pool[:2],
            pool_element_counts=Counter({1: 2, 6: 1, 8: 1}),
            pool_sizes=np.array([5, 3]),
        ),
        picked_structures=picks,
        stopping={
            "pool_force_rmse_before": 0.5,
            "pool_force_rmse_after": 0.4,
            "relative_change": -0.2,
            "n_sample": 3,
            "before_per_structure": [0.4, 0.5, 0.6],
            "after_per_structure": [0.3, 0.4, 0.5],
        },
    )
    paths = write_selection_report(record, tmp_path)
    html = paths["report"].read_text()
    assert (tmp_path / "thumbnails" / "pick_001.png").stat().st_size > 0
    assert "thumbnails/pick_002.png" in html and "CH4" in html
    assert "predicted pool force RMSE after the batch" in html and "-20.0%" in html
    assert (tmp_path / "predicted_errors.png").exists()
    assert "overflow-x: auto" in html


def test_projection_axes_ignore_an_outlier(tmp_path):
    rng = np.random.default_rng(1)
    pool = rng.normal(size=(200, 3))
    pool[0] = [400.0, 400.0, 400.0]
    path = plot_projection(np.zeros((0, 3)), pool, pool[:1], tmp_path / "p.png")
    assert path.exists()
    low, high = robust_limits(pool)
    assert (high < 10).all() and (low > -10).all()
