"""``fntk demo``: the main job on a generated adsorbate pool with the embedded default model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fntk.cli.types import DEFAULT_MAP, Device, FeatureMapName, ModelSpec, OutDir, Overwrite, Seed

DEMO_TRAIN, DEMO_POOL, DEMO_PICKS = 12, 24, 6
"""Sized for a laptop: the demo's own run (not the install) takes about a minute of one CPU
core (README, "Quick start")."""
DEMO_OUTPUT = Path("demo-output")
DEMO_INPUTS = "inputs"
"""Folder of the demo's output that holds its generated train.xyz and pool.xyz."""


def demo(
    output: OutDir = DEMO_OUTPUT,
    model: ModelSpec = "sevennet-0",
    features: FeatureMapName = DEFAULT_MAP,
    device: Device = "auto",
    overwrite: Overwrite = False,
    seed: Seed = 0,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="Torch CPU threads (1: next to other work on a small machine, more threads "
            "were several times slower).",
        ),
    ] = 1,
) -> None:
    """Generate a small adsorbate pool and run `fntk select` on it, offline.

    Training set: EMT-labelled H, O, OH, CO on Cu, Pt, Ni (111)/(100) slabs. Pool: unlabelled
    slabs that add N and CH2 adsorbates, which the training set has never seen.
    """
    from fntk.cli.select_cmd import run_job
    from fntk.data import make_adsorbate_structures
    from fntk.io import write_extxyz
    from fntk.models import torch_threads
    from fntk.pipeline import build_run_options, run_folder

    options = build_run_options(
        n=DEMO_PICKS, features=features, model=model, device=device, seed=seed, output=output
    )
    pool_file, train_file = output / DEMO_INPUTS / "pool.xyz", output / DEMO_INPUTS / "train.xyz"
    folder = run_folder(
        output,
        overwrite=overwrite,
        options=options,
        pool=[str(pool_file)],
        train=[str(train_file)],
        own=[DEMO_INPUTS],
        check_inputs=False,  # written below
    )
    with folder as out:
        train = make_adsorbate_structures(DEMO_TRAIN, seed=seed)
        pool = make_adsorbate_structures(
            DEMO_POOL, seed=seed + 1, adsorbates=("H", "O", "OH", "CO", "N", "CH2"), label=False
        )
        write_extxyz(train_file, train)
        write_extxyz(pool_file, pool)
        typer.echo(
            f"wrote {len(train)} EMT-labelled training and {len(pool)} pool structures to "
            f"{out / DEMO_INPUTS}"
        )
        with torch_threads(threads):
            run_job([str(pool_file)], [str(train_file)], out, options)
    typer.echo(f"open {out / 'report.html'} to see what was picked and why")
