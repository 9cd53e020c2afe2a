"""``fntk select``: pool in, batch to label out (the main job)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fntk.cli.types import (
    DEFAULT_MAP,
    DEFAULT_SELECTOR,
    BatchSize,
    Config,
    CostAware,
    Device,
    Dim,
    Dtype,
    FeatureMapName,
    ModelSpec,
    OptionalOutDir,
    Overwrite,
    ParameterGroupName,
    Seed,
    SelectorChoice,
    Shortlist,
    SkipUnsupported,
    StructureFiles,
    finite_number,
    given_flags,
)

if TYPE_CHECKING:
    from fntk.pipeline import InputScan, RunOptions, SelectRun


def select(
    ctx: typer.Context,
    pool: StructureFiles,
    output: OptionalOutDir = None,
    train: Annotated[
        list[str] | None,
        typer.Option("--train", "-t", help="Labelled structures (repeat for several files)."),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="Unlabelled structures like those you will simulate (repeatable): a covering "
            "selector (coverage, coverage-density) covers a sample of them instead of the pool.",
            show_default="none: cover the pool",
        ),
    ] = None,
    n: Annotated[int, typer.Option("-n", min=0, help="How many structures to pick.")] = 100,
    calibrate: Annotated[
        list[str] | None,
        typer.Option(
            "--calibrate",
            help="Labelled validation structures (not in --train; repeatable): their force "
            "errors under --model calibrate the stopping signal (predicted pool force RMSE "
            "before/after the batch) into eV/A. Pass the model fine-tuned on --train.",
            show_default="none: the signal is uncalibrated",
        ),
    ] = None,
    features: FeatureMapName = DEFAULT_MAP,
    selector: SelectorChoice = DEFAULT_SELECTOR,
    model: ModelSpec = "sevennet-0",
    group: ParameterGroupName = "readout",
    dim: Dim = None,
    shortlist: Shortlist = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Structures read at a time.")] = 256,
    batch_size: BatchSize = 8,
    cost_aware: CostAware = False,
    energy_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            callback=finite_number,
            help="Fine-tuning loss weight w_E of per-atom energies, 1/(eV/atom)^2.",
        ),
    ] = 1.0,  # = RunOptions().energy_weight (tests/cli/test_choices.py keeps them equal)
    forces_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            callback=finite_number,
            help="Fine-tuning loss weight w_F of force components, 1/(eV/A)^2; with w_E it "
            "sets the joint map's lambda = sqrt(w_F / (3 N w_E)), N the mean atom count of "
            "the pool (first 1000 structures; fixed across rounds, so a --store stays valid).",
        ),
    ] = 100.0,  # = RunOptions().forces_weight
    seed: Seed = 0,
    device: Device = "auto",
    config: Config = None,
    dtype: Dtype = "float32",
    skip_unsupported: SkipUnsupported = False,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Feature store directory: reuse its intact chunks, compute the missing ones "
            "into it (shared between rounds and with `fntk features`).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a killed run in OUTDIR: finished feature chunks are not recomputed "
            "(store: --store, else OUTDIR/feature-store).",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Featurise and score on a local Dask cluster of this many worker processes "
            "(one torch thread each); picks are the same as with 0 (one process).",
        ),
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Use a running Dask scheduler (tcp://HOST:PORT or a scheduler JSON file), e.g. "
            "of a dask-jobqueue SLURM cluster; --store must then be on a shared file system.",
            show_default="none: --workers, or one process",
        ),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print run.json to stdout instead of the summary.")
    ] = False,
) -> None:
    """Pick N structures of POOL to label next; write OUTDIR/selected.xyz, scores.csv, report.

    Options come from the defaults, then --config (YAML, TOML, JSON or a previous run.json),
    then the flags given on the command line (-o too: a run.json's output folder is used when
    -o is not given). OUTDIR must be new or empty, or hold a run that did not finish (run.json
    status "running"), unless --overwrite.
    """
    from fntk.io import check_output_dir
    from fntk.pipeline import FLAGS, OUTPUT_NAMES, load_run_options, run_folder, scan_inputs

    if workers and scheduler:
        raise typer.BadParameter(
            "--workers and --scheduler exclude each other: give one of them",
            param_hint="'--workers' / '--scheduler'",
        )
    options = load_run_options(config, **given_flags(ctx, FLAGS, locals()))
    execution = options.execution
    if execution.output is None:
        raise typer.BadParameter(
            "give the output directory (or execution.output in --config)",
            param_hint="'--output' / '-o'",
        )
    output = execution.output
    resume = execution.resume and not overwrite
    check_select_paths(output, options, pool, train or [], resume=resume)
    # The folder is checked first (cheap), then every input is read once, before anything is
    # created; run_folder checks the folder again as it creates it.
    check_output_dir(output, overwrite=overwrite, own=(*OUTPUT_NAMES, RESUME_STORE))
    scan = scan_inputs(pool, train or [], options)
    folder = run_folder(
        output,
        overwrite=overwrite,
        options=options,
        pool=pool,
        train=train or [],
        own=[RESUME_STORE],
        check_inputs=False,  # the scan did
    )
    with folder as out:
        if execution.resume and execution.store is None:
            options = options.executed_with(store=out / RESUME_STORE)
        run_job(pool, train or [], out, options, quiet=quiet, json_output=json_output, scan=scan)


RESUME_STORE = "feature-store"
"""Folder of OUTDIR that holds the features of a run started or resumed with ``--resume``."""


def check_select_paths(
    output: Path, options: RunOptions, pool: list[str], train: list[str], *, resume: bool
) -> None:
    """Refuse, before any work, a ``--store`` that cannot be a feature store and a ``--resume``
    that would not continue an incomplete run of the same options and inputs (the execution
    options, which do not change the picks, may differ)."""
    import json

    from fntk.errors import InputError
    from fntk.features.store import check_store_folder
    from fntk.io.outdir import check_resumable

    store = options.execution.store
    if store is not None:
        check_store_folder(store, flag="--store")
        if store.resolve() == output.resolve():
            raise InputError(
                "--store is the output folder itself; the store's files would mix with the run's",
                file=str(store),
                hint=f"use --store {output / RESUME_STORE} or a folder of its own",
            )
    if resume:
        check_resumable(
            output,
            options=json.loads(options.model_dump_json()),
            inputs={"pool": list(pool), "train": list(train)},
            ignore=("execution",),
            defaults=json.loads(type(options)().model_dump_json()),  # e.g. target, added later
        )


def run_job(
    pool: list[str],
    train: list[str],
    out: Path,
    options: RunOptions,
    *,
    quiet: bool = False,
    json_output: bool = False,
    scan: InputScan | None = None,
) -> None:
    """Run the selection into the prepared directory ``out`` and print its summary."""
    from fntk.pipeline import run_and_write

    progress = None if quiet or json_output else _RichProgress()
    run, paths = run_and_write(pool, train, out, options, progress=progress, scan=scan)
    if json_output:  # run.json as written: options, counts, the picks and the output files
        typer.echo(paths["run"].read_text(encoding="utf-8"), nl=False)
    elif not quiet:
        _print_summary(run, paths)


class _RichProgress:
    """Adapts the library's ``progress(stage, advance, total)`` callback to rich bars.

    Stages that run one after the other each get a bar of their own, stopped when it is done:
    restarting a stopped bar would draw its finished stages again (on a terminal the bar is
    redrawn in place; elsewhere, e.g. stderr to a log file, each stop writes every bar once).
    """

    def __init__(self) -> None:
        self.bar: Any = None  # the rich Progress drawing now, None between stages
        self.tasks: dict[str, tuple[Any, Any]] = {}  # stage -> (its Progress, rich TaskID)

    def __call__(self, stage: str, advance: int, total: int | None) -> None:
        from fntk.cli.progress import progress_bar

        if stage not in self.tasks:
            if self.bar is None:
                self.bar = progress_bar()
                self.bar.start()
            self.tasks[stage] = (self.bar, self.bar.add_task(stage, total=total))
        bar, task = self.tasks[stage]
        bar.advance(task, advance)
        if bar is self.bar and all(t.finished for t in bar.tasks):
            bar.stop()
            self.bar = None


def _print_summary(run: SelectRun, paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("stage", "seconds", title=f"fntk select: {len(run.picked)} picked")
    for stage, seconds in run.timings_s.items():
        table.add_row(stage, f"{seconds:.2f}")
    console = Console()
    console.print(table)
    for message in run.result.status:
        console.print(f"[yellow]note:[/yellow] {message}", highlight=False)
    if run.pool_duplicates:
        console.print(
            f"[yellow]note:[/yellow] excluded {len(run.pool_duplicates)} pool structures that "
            "repeat an earlier pool structure (listed in run.json)",
            highlight=False,
        )
    if run.excluded_duplicates:
        console.print(
            f"[yellow]note:[/yellow] excluded {len(run.excluded_duplicates)} pool structures "
            "that are already in the training set (listed in run.json)",
            highlight=False,
        )
    if run.skipped_unsupported:
        console.print(
            f"[yellow]note:[/yellow] skipped {len(run.skipped_unsupported)} structures with "
            f"elements model {run.model_spec} does not know (listed in run.json)",
            highlight=False,
        )
    stop = run.stopping_signal
    if stop is not None:
        unit = "eV/A, calibrated" if stop["calibrated"] else "uncalibrated: pass --calibrate"
        console.print(
            f"stopping signal: predicted pool force RMSE {stop['pool_force_rmse_before']:.4g} "
            f"-> {stop['pool_force_rmse_after']:.4g} after the batch ({unit})",
            highlight=False,
        )
    for name, path in paths.items():
        console.print(f"{name:>12}: {path}", highlight=False)
