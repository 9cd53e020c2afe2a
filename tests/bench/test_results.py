"""results.csv format, mean curves, labels-to-reach and the summary table, on synthetic rows."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fntk.bench import (
    RESULT_COLUMNS,
    ResultRow,
    labels_to_reach,
    mean_curves,
    read_results,
    summarize,
    summary_markdown,
    write_results,
)


def row(method: str, seed: int, rnd: int, force_rmse: float, split: str = "test") -> ResultRow:
    return ResultRow(
        round=rnd,
        n_labels=10 + 5 * rnd,
        method=method,
        seed=seed,
        split=split,
        n_structures=4,
        energy_mae_mev_per_atom=1.0,
        energy_rmse_mev_per_atom=2.0 + seed,
        force_mae_mev_per_ang=force_rmse / 2,
        force_rmse_mev_per_ang=force_rmse,
        seconds_finetune=1.5,
        seconds_evaluate=0.25,
        seconds_features=3.0 if rnd == 1 else 0.0,
        seconds_training=0.0,
        seconds_select=0.5 if rnd else 0.0,
        n_steps_run=7,
        finished_at="2025-01-01T00:00:00+00:00",
    )


def synthetic() -> list[ResultRow]:
    """random: 100, 80, 60 (both seeds); fast: 100, 50, 40 and 100, 70, 40; slow never."""
    curves = {
        ("random", 0): [100, 80, 60],
        ("random", 1): [100, 80, 60],
        ("fast", 0): [100, 50, 40],
        ("fast", 1): [100, 70, 40],
        ("slow", 0): [100, 95, 90],
        ("slow", 1): [100, 95, 70],
    }
    return [row(m, s, r, v) for (m, s), values in curves.items() for r, v in enumerate(values)]


def test_labels_to_reach_interpolates():
    n = np.array([10.0, 15.0, 20.0])
    assert labels_to_reach(n, np.array([100.0, 60.0, 40.0]), 80.0) == pytest.approx(12.5)
    assert labels_to_reach(n, np.array([100.0, 60.0, 40.0]), 60.0) == pytest.approx(15.0)
    assert labels_to_reach(n, np.array([50.0, 60.0, 40.0]), 80.0) == 10.0
    assert labels_to_reach(n, np.array([100.0, 90.0, 85.0]), 80.0) is None
    # a curve that dips below and comes back: the first crossing counts
    assert labels_to_reach(n, np.array([100.0, 70.0, 90.0]), 80.0) == pytest.approx(40 / 3)


def test_mean_curves_over_seeds():
    curve = mean_curves(synthetic(), "force_rmse_mev_per_ang")[("fast", "test")]
    np.testing.assert_allclose(curve.n_labels, [10, 15, 20])
    np.testing.assert_allclose(curve.mean, [100, 60, 40])
    np.testing.assert_allclose(curve.std, [0, math.sqrt(200), 0])
    assert curve.n_seeds == 2


def test_mean_curves_keep_complete_rounds_only():
    rows = [*synthetic(), row("fast", 0, 3, 10.0)]  # seed 1 has not finished round 3
    curve = mean_curves(rows, "force_rmse_mev_per_ang")[("fast", "test")]
    assert len(curve.mean) == 3


def test_summary_numbers():
    summaries = {s.method: s for s in summarize(synthetic())}
    # random's final mean force RMSE is 60; fast's mean curve 100, 60, 40 reaches it at 15
    assert summaries["fast"].labels_to_reach_random == pytest.approx(15.0)
    assert summaries["random"].labels_to_reach_random == pytest.approx(20.0)
    assert summaries["slow"].labels_to_reach_random is None  # mean 100, 95, 80
    assert summaries["slow"].force_rmse_mev_per_ang == pytest.approx(80.0)
    assert summaries["slow"].force_rmse_std == pytest.approx(math.sqrt(200))
    assert summaries["fast"].energy_rmse_mev_per_atom == pytest.approx(2.5)
    # per run: acquisition 3 + 0.5 + 0.5 = 4, total adds 3 x 1.5 of fine-tuning
    assert summaries["fast"].seconds_acquisition == pytest.approx(4.0)
    assert summaries["fast"].seconds_total == pytest.approx(8.5)


def test_summary_markdown():
    text = summary_markdown(synthetic(), notes=["a note"])
    lines = text.splitlines()
    assert "## test" in lines
    lines = lines[lines.index("## test") :]  # after the savings table
    header = next(line for line in lines if line.startswith("| method"))
    assert "labels to reach random's final force RMSE" in header
    fast = next(line for line in lines if line.startswith("| fast"))
    assert "| 15.0 |" in fast and "| 40.00 |" in fast
    assert "not reached" in next(line for line in lines if line.startswith("| slow"))
    assert lines[-1] == "- a note"
    no_random = summary_markdown([r for r in synthetic() if r.method != "random"])
    assert "no random run" in no_random


def test_summary_tables_per_split():
    rows = synthetic() + [row(r.method, r.seed, r.round, 1.0, "ood") for r in synthetic()]
    text = summary_markdown(rows)
    assert text.index("## test") < text.index("## ood")


def test_csv_format_round_trip(tmp_path):
    rows = synthetic()
    path = tmp_path / "results.csv"
    write_results(path, rows)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(RESULT_COLUMNS)
    assert lines[0].startswith("round,n_labels,method,seed,split,n_structures,energy_mae")
    assert len(lines) == len(rows) + 1
    assert read_results(path) == rows
    assert read_results(tmp_path / "absent.csv") == []
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unexpected columns"):
        read_results(path)


def test_summary_curve_table_holds_seed_means_per_labelled_size():
    rows = [row("random", s, r, 100.0 - 10 * r + s) for s in (0, 1) for r in range(3)]
    rows += [row("joint", 0, r, 90.0 - 20 * r) for r in range(3)]
    lines = summary_markdown(rows).splitlines()
    start = lines.index("| method | 10 | 15 | 20 |")
    assert lines[start + 2] == "| random | 100 | 90 | 80 |"  # (100 + 101) / 2 rounds to 100
    assert lines[start + 3] == "| joint | 90 | 70 | 50 |"


def test_summary_reports_label_savings_and_judge_agreement():
    from fntk.bench.results import agreement_markdown, saving_markdown

    rows = synthetic()
    text = "\n".join(saving_markdown(rows))
    # fast's mean curve 100, 60, 40 against random's 100, 80, 60:
    # budget 15 (target 80): 10 * 1.5**0.5 = 12.247 -> +18.4%;
    # budget 20 (target 60): 10 * 1.5**1 = 15 -> +25%; mean +21.7%
    assert "| fast | +22% [" in text
    # a run cut after round 1 is compared at budget 15 only: +18%
    cut = [r for r in rows if not (r.method == "fast" and r.round == 2)]
    assert "| fast | +18% [" in "\n".join(saving_markdown(cut))
    # a proxy that swaps fast and slow disagrees completely on the order of the three
    swapped = [
        dataclasses.replace(r, method={"fast": "slow", "slow": "fast"}.get(r.method, r.method))
        for r in rows
    ]
    table = "\n".join(agreement_markdown(rows, swapped, "ridge"))
    assert "| test |" in table and "| -1.00 |" in table
    assert "| 1.00 |" in "\n".join(agreement_markdown(rows, rows, "ridge"))
