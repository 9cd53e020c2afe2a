"""``fntk select``: pool in, batch to label out (the main job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fntk.cli.types import (
    BatchSize,
    Device,
    Dtype,
    ModelSpec,
    OutDir,
    Overwrite,
    Seed,
    SkipUnsupported,
    StructureFiles,
)

FEATURE_MAPS = ("joint", "force-ntk", "energy-ntk", "embedding")


def select(
    pool: StructureFiles,
    output: OutDir,
    train: Annotated[
        list[str] | None,
        typer.Option("--train", "-t", help="Labelled structures (repeat for several files)."),
    ] = None,
    n: Annotated[int, typer.Option("-n", min=0, help="How many structures to pick.")] = 100,
    features: Annotated[
        str, typer.Option(help=f"Feature map: {', '.join(FEATURE_MAPS)}.")
    ] = "joint",
    selector: Annotated[
        str, typer.Option(help="lcmd, maxdet, maxdiag, bait, kmeans++, maxdist, random.")
    ] = "lcmd",
    model: ModelSpec = "sevennet-0",
    group: Annotated[
        str, typer.Option(help="Parameter group of NTK maps: readout, last-interaction, all.")
    ] = "readout",
    dim: Annotated[
        int | None,
        typer.Option(min=1, help="Sketch width d of NTK maps (default: the map's own, joint 12)."),
    ] = None,
    shortlist: Annotated[
        int | None, typer.Option(min=1, help="Shortlist size M (default max(1000, 10 n)).")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Structures read at a time.")] = 256,
    batch_size: BatchSize = 8,
    cost_aware: Annotated[
        bool, typer.Option(help="Divide gains by the labelling cost N^3 (DFT-like).")
    ] = False,
    seed: Seed = 0,
    device: Device = "auto",
    dtype: Dtype = "float32",
    skip_unsupported: SkipUnsupported = False,
    overwrite: Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print run.json to stdout instead of the summary.")
    ] = False,
) -> None:
    """Pick N structures of POOL to label next; write OUTDIR/selected.xyz, scores.csv, report."""
    import json

    from fntk.io import prepare_output_dir
    from fntk.pipeline import build_run_options, run_and_write

    options = build_run_options(
        n=n,
        features=features,
        selector=selector,
        model=model,
        group=group,
        dim=dim,
        shortlist=shortlist,
        chunk_size=chunk_size,
        batch_size=batch_size,
        cost_aware=cost_aware,
        seed=seed,
        device=device,
        dtype=dtype,
        skip_unsupported=skip_unsupported,
    )
    out = prepare_output_dir(output, overwrite=overwrite)
    progress = None if quiet or json_output else _RichProgress()
    run, paths = run_and_write(pool, train or [], out, options, progress=progress)
    if json_output:
        typer.echo(json.dumps(run.run_record(), indent=2, default=str))
    elif not quiet:
        _print_summary(run, paths)


class _RichProgress:
    """Adapts the library's ``progress(stage, advance, total)`` callback to rich bars."""

    def __init__(self) -> None:
        from fntk.cli.progress import progress_bar

        self.bar = progress_bar()
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, advance: int, total: int | None) -> None:
        if stage not in self.tasks:
            self.bar.start()
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.advance(self.tasks[stage], advance)
        if all(t.finished for t in self.bar.tasks):
            self.bar.stop()


def _print_summary(run, paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("stage", "seconds", title=f"fntk select: {len(run.picked)} picked")
    for stage, seconds in run.timings_s.items():
        table.add_row(stage, f"{seconds:.2f}")
    console = Console()
    console.print(table)
    for message in run.result.status:
        console.print(f"[yellow]note:[/yellow] {message}", highlight=False)
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
    for name, path in paths.items():
        console.print(f"{name:>12}: {path}", highlight=False)
