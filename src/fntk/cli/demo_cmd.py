"""``fntk demo``: the main job on a generated adsorbate pool with the embedded default model."""

from __future__ import annotations

from typing import Annotated

import typer

from fntk.cli.types import Device, ModelSpec, OutDir, Overwrite, Seed

DEMO_TRAIN, DEMO_POOL, DEMO_PICKS = 16, 120, 12


def demo(
    output: OutDir = "demo-output",
    model: ModelSpec = "sevennet-0",
    features: Annotated[str, typer.Option(help="Feature map (see fntk select).")] = "joint",
    device: Device = "auto",
    overwrite: Overwrite = False,
    seed: Seed = 0,
) -> None:
    """Generate a small adsorbate pool and run ``fntk select`` on it, offline.

    Training set: EMT-labelled H, O, OH, CO on Cu, Pt, Ni (111)/(100) slabs. Pool: unlabelled
    slabs that add N and CH2 adsorbates, which the training set has never seen.
    """
    from fntk.cli.select_cmd import select
    from fntk.data import make_adsorbate_structures
    from fntk.io import prepare_output_dir, write_extxyz

    out = prepare_output_dir(output, overwrite=overwrite)
    train = make_adsorbate_structures(DEMO_TRAIN, seed=seed)
    pool = make_adsorbate_structures(
        DEMO_POOL, seed=seed + 1, adsorbates=("H", "O", "OH", "CO", "N", "CH2"), label=False
    )
    inputs = out / "inputs"
    write_extxyz(inputs / "train.xyz", train)
    write_extxyz(inputs / "pool.xyz", pool)
    typer.echo(
        f"wrote {len(train)} EMT-labelled training and {len(pool)} pool structures to {inputs}"
    )
    select(
        pool=[str(inputs / "pool.xyz")],
        output=out,
        train=[str(inputs / "train.xyz")],
        n=DEMO_PICKS,
        features=features,
        model=model,
        device=device,
        seed=seed,
        overwrite=True,
    )
    typer.echo(f"open {out / 'report.html'} to see what was picked and why")
