"""``fntk.next_batch``: the whole selection job from Python, the mirror of ``fntk select``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fntk.errors import InputError
from fntk.io import check_output_dir
from fntk.pipeline.job import Progress, SelectRun, run_selection
from fntk.pipeline.options import RunOptions, load_run_options
from fntk.pipeline.outputs import OUTPUT_NAMES, run_folder, write_outputs
from fntk.pipeline.preflight import InputScan, scan_inputs


def run_and_write(
    pool: Sequence[str],
    train: Sequence[str],
    out_dir: str | Path,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    report: bool = True,
    scan: InputScan | None = None,
) -> tuple[SelectRun, dict[str, Path]]:
    """Run the selection and write every output to ``out_dir`` (``fntk select``'s body).

    The feature store and the engine come from ``options.execution``; ``scan``: the inputs'
    first read, when made already (see :func:`run_selection`).
    """
    run = run_selection(pool, train, options, progress=progress, scan=scan)
    return run, write_outputs(run, out_dir, report=report)


def next_batch(
    pool: str | Path | Sequence[str | Path],
    train: str | Path | Sequence[str | Path] | None = (),
    *,
    target: str | Path | Sequence[str | Path] = (),
    output: str | Path | None = None,
    overwrite: bool = False,
    config: str | Path | None = None,
    options: RunOptions | None = None,
    progress: Progress | None = None,
    **flags: Any,
) -> SelectRun:
    """Pick the structures of ``pool`` to label next: ``fntk.next_batch("pool.xyz", n=50)``.

    Parameters
    ----------
    pool, train : path or sequence of paths
        Structure files (any format ASE reads, globs allowed); ``train`` may be empty.
    target : path or sequence of paths
        Unlabelled structures like those you will simulate: a covering selector covers a
        sample of them instead of the pool (``fntk select --target``; ``RunOptions.target``).
    output : path, optional
        Also write the files of ``fntk select -o`` there (refused when not empty, unless
        ``overwrite`` or it holds an incomplete run); default ``execution.output`` of the
        options (none: nothing is written).
    config : path, optional
        YAML/TOML/JSON options file (or a previous run.json), see
        :func:`fntk.pipeline.options.read_config`.
    options : RunOptions, optional
        Ready options (instead of ``config``); ``flags`` still apply on top.
    **flags
        Command-line style options (``n``, ``features``, ``selector``, ``model``, ``dim``, ...;
        see :func:`fntk.pipeline.options.apply_flags`).

    Raises
    ------
    InputError
        Bad input (checked before anything is created or the model loads), ``n == 0`` or more
        than the pool's new structures (:func:`~fntk.pipeline.preflight.scan_inputs`).
    """
    pool_files = _file_list(pool, "pool")
    train_files = _file_list(train, "train") if train is not None else []
    if target:
        flags["target"] = _file_list(target, "target")
    if output is not None:
        flags["output"] = Path(output)
    if not pool_files:
        raise InputError("no pool files given", hint="pass next_batch('pool.xyz', ...)")
    if options is not None:
        from fntk.pipeline.options import apply_flags

        run_options = apply_flags(options, **{k: v for k, v in flags.items() if v is not None})
    else:
        run_options = load_run_options(config, **flags)
    output = run_options.execution.output
    if output is not None:  # a refused folder fails before the inputs are read
        check_output_dir(Path(output), overwrite=overwrite, own=OUTPUT_NAMES)
    scan = scan_inputs(pool_files, train_files, run_options)
    if output is None:
        return run_selection(pool_files, train_files, run_options, progress=progress, scan=scan)
    folder = run_folder(
        output,
        overwrite=overwrite,
        options=run_options,
        pool=pool_files,
        train=train_files,
        check_inputs=False,  # the scan did
    )
    with folder as out:
        return run_and_write(
            pool_files, train_files, out, run_options, progress=progress, scan=scan
        )[0]


def _file_list(value: object, what: str) -> list[str]:
    """Paths of ``value``: one path or a sequence of them (anything else: :class:`InputError`)."""
    if isinstance(value, str | os.PathLike):
        return [os.fspath(value)]
    items = list(value) if isinstance(value, Sequence | set | tuple) else None
    if items is None or not all(isinstance(item, str | os.PathLike) for item in items):
        raise InputError(
            f"{what} must be a path or a list of paths, got {type(value).__name__}",
            hint="e.g. next_batch('pool.xyz', ['train.xyz'], n=10)",
        )
    return [os.fspath(item) for item in items]
