"""The fine-tuning step early stopping kept: results.csv column and the summary's warning."""

from __future__ import annotations

import dataclasses
import math

from fntk.bench import RESULT_COLUMNS, ResultRow, read_results, summary_markdown, write_results


def _row(method: str, rnd: int, n_steps_kept: int, n_steps_run: int = 5) -> ResultRow:
    return ResultRow(
        round=rnd,
        n_labels=4 + 2 * rnd,
        method=method,
        seed=0,
        split="test",
        n_structures=3,
        energy_mae_mev_per_atom=1.0,
        energy_rmse_mev_per_atom=2.0,
        force_mae_mev_per_ang=50.0,
        force_rmse_mev_per_ang=100.0 - rnd,
        seconds_finetune=1.0,
        seconds_evaluate=0.1,
        seconds_features=0.0,
        seconds_training=0.0,
        seconds_select=0.0,
        n_steps_run=n_steps_run,
        finished_at="2026-12-01T00:00:00+00:00",
        n_steps_kept=n_steps_kept,
    )


def test_summary_warns_when_early_stopping_kept_the_pretrained_weights():
    rows = [_row("random", 0, 5), _row("random", 1, 0), _row("joint", 0, 5), _row("joint", 1, 3)]
    summary = summary_markdown(rows)
    assert "WARNING: in 1 of 4 evaluated rounds, early stopping kept step 0" in summary
    assert "random seed 0 round 1" in summary and "joint seed 0 round 1" not in summary


def test_no_warning_for_trained_rounds_or_ridge_fits():
    ridge = [_row("random", r, 0, n_steps_run=0) for r in (0, 1)]
    assert "WARNING" not in summary_markdown([_row("random", 0, 5), *ridge])


def test_kept_step_round_trips_and_old_files_read_as_unknown(tmp_path):
    rows = [
        dataclasses.replace(
            _row("random", 0, 3),
            predicted_force_rmse_mev_per_ang=90.5,
            force_rmse_spearman=0.25,
            seconds_estimates=0.5,
        )
    ]
    write_results(tmp_path / "results.csv", rows)
    assert read_results(tmp_path / "results.csv") == rows
    assert RESULT_COLUMNS[-4:] == (
        "n_steps_kept",
        "predicted_force_rmse_mev_per_ang",
        "force_rmse_spearman",
        "seconds_estimates",
    )
    lines = (tmp_path / "results.csv").read_text().splitlines()
    for n_dropped in (3, 4):  # before the predicted errors; before n_steps_kept too
        legacy = tmp_path / f"legacy{n_dropped}.csv"
        legacy.write_text("\n".join(line.rsplit(",", n_dropped)[0] for line in lines) + "\n")
        (old,) = read_results(legacy)
        assert old.n_steps_kept == (3 if n_dropped == 3 else -1)
        assert math.isnan(old.predicted_force_rmse_mev_per_ang)
        assert math.isnan(old.force_rmse_spearman) and old.seconds_estimates == 0.0
        assert old.force_rmse_mev_per_ang == rows[0].force_rmse_mev_per_ang
