"""The files of a selection run: selected.xyz, scores.csv, run.json and the HTML report.

``run.json`` is written first with ``"status": "running"`` (:func:`run_folder`) and last with
``"complete"`` (:func:`write_outputs`), so a killed run leaves a folder that says it is
incomplete; ``fntk select`` runs into such a folder again without ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fntk import __version__
from fntk.errors import FntkError
from fntk.io import (
    atomic_write_text,
    check_not_input,
    check_output_dir,
    prepare_output_dir,
    write_extxyz,
)
from fntk.io.lock import LOCK_NAME, folder_lock
from fntk.io.outdir import (
    COMPLETE,
    FAILED,
    INTERRUPTED,
    RUN_RECORD,
    RUNNING,
    remove_temporaries,
)
from fntk.models import check_model_spec
from fntk.pipeline.job import SelectRun
from fntk.pipeline.options import RunOptions
from fntk.pipeline.preflight import check_selection_inputs
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

OUTPUT_NAMES = (
    "selected.xyz",
    "scores.csv",
    RUN_RECORD,
    "report.html",
    "pv_histogram.png",
    "projection.png",
    "composition.png",
    "predicted_errors.png",
    "thumbnails",
)
"""What a selection run writes into its folder."""


@contextlib.contextmanager
def run_folder(
    output: str | os.PathLike,
    *,
    overwrite: bool,
    options: RunOptions,
    pool: Sequence[str],
    train: Sequence[str] = (),
    own: Sequence[str] = (),
    check_inputs: bool = True,
) -> Iterator[Path]:
    """Check the output folder and the inputs, create the folder, mark it ``running``, yield it.

    A folder holding an incomplete run (status ``running``, ``failed`` or ``interrupted``) and
    only the files of a run (:data:`OUTPUT_NAMES` and ``own``) is taken without ``overwrite``;
    an output that would replace an input file is refused. ``check_inputs``: read and validate
    ``pool`` and ``train`` first (:func:`check_selection_inputs`), so a bad input creates
    nothing. The folder's lock (:func:`fntk.io.lock.folder_lock`) is held inside the block, so
    a second run into it is refused. When the run fails with a user error or Ctrl-C, its
    partial outputs are removed and ``run.json`` says ``failed`` (with the error) or
    ``interrupted``; a folder it created and wrote nothing else into is removed.
    """
    path = Path(output)
    names = (*OUTPUT_NAMES, *own)
    check_model_spec(options.model)
    check_output_dir(path, overwrite=overwrite, own=names)
    for name in OUTPUT_NAMES:  # --overwrite replaces these: none may be an input
        check_not_input(path / name, [*pool, *train, *options.calibrate, *options.target])
    if check_inputs:
        check_selection_inputs(pool, train, options)
    created = [p for p in (path, *path.parents) if not p.exists()]
    out = prepare_output_dir(path, overwrite=overwrite, own=names)
    with folder_lock(out):
        check_output_dir(out, overwrite=overwrite, own=names)  # as found, now that it is ours
        remove_temporaries(out, names)  # of a killed run
        record = {
            "status": RUNNING,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "fntk_version": __version__,
            "options": json.loads(options.model_dump_json()),
            "inputs": {"pool": list(pool), "train": list(train)},
        }
        atomic_write_text(out / RUN_RECORD, json.dumps(record, indent=2) + "\n")
        try:
            yield out
        except (FntkError, KeyboardInterrupt) as exc:
            if not _record_failure(out, record, exc, bool(created)):
                raise
            failure = exc
        else:
            return
    # reached only when the run failed in a folder it created and left empty: remove it
    for folder in created:  # deepest first; only the empty ones
        with contextlib.suppress(OSError):
            folder.rmdir()
    raise failure


def _record_failure(
    out: Path, record: dict[str, object], exc: BaseException, created: bool
) -> bool:
    """Leave ``out`` as a run that did not finish: no partial outputs, a ``run.json`` saying
    why (``failed`` with the error, or ``interrupted``), the feature store kept for resuming.
    Return True when ``out`` was ``created`` by this run, which wrote nothing else into it: the
    caller removes it once unlocked."""
    for name in OUTPUT_NAMES:
        if name != RUN_RECORD:
            with contextlib.suppress(OSError):
                (out / name).unlink()
    remove_temporaries(out, OUTPUT_NAMES)
    left = [p.name for p in out.iterdir() if p.name != LOCK_NAME]
    if isinstance(exc, FntkError) and created and left == [RUN_RECORD]:
        (out / RUN_RECORD).unlink()
        return True
    interrupted = isinstance(exc, KeyboardInterrupt)
    ended = {"status": INTERRUPTED if interrupted else FAILED}
    if not interrupted:
        ended["error"] = str(exc)
    with contextlib.suppress(OSError, FntkError):  # a full disk may refuse this too
        atomic_write_text(out / RUN_RECORD, json.dumps({**record, **ended}, indent=2) + "\n")
    return False


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
    if report:
        paths.update(write_selection_report(selection_record(run), out))
    record = complete_record(run, paths)  # last: the folder is complete once it says so
    atomic_write_text(paths["run"], json.dumps(record, indent=2, default=str) + "\n")
    return paths


def complete_record(run: SelectRun, paths: dict[str, Path]) -> dict[str, object]:
    """run.json of a finished run: status, the run's record, the picks and the output files."""
    picks = [
        {
            "rank": a.info["fntk_rank"],
            "source_file": a.info["fntk_source_file"],
            "source_index": a.info["fntk_source_index"],
            "score": a.info["fntk_score"],
            "posterior_variance": a.info["fntk_posterior_variance"],
        }
        for a in run.picked
    ]
    outputs = {name: str(path) for name, path in paths.items()}
    return {"status": COMPLETE, **run.run_record(), "picked": picks, "outputs": outputs}


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
        picked_structures=run.picked,
        stopping=run.stopping_signal,
    )
