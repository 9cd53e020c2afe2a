"""``fntk uncertainty``: calibrated error estimates of a model for every structure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fntk.cli.types import Device, Dim, Dtype, ModelSpec, StructureFiles


def uncertainty(
    files: StructureFiles,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .xyz file.")],
    train: Annotated[
        list[str],
        typer.Option(
            help="Structures the model was trained (fine-tuned) on; labels not needed "
            "(repeatable).",
        ),
    ],
    calibrate: Annotated[
        list[str] | None,
        typer.Option(
            help="Labelled structures the model was not trained on; they fit the scale and "
            "noise of the estimates (repeatable). Without it the numbers are uncalibrated.",
            show_default="none: uncalibrated",
        ),
    ] = None,
    model: ModelSpec = "sevennet-0",
    device: Device = "auto",
    dtype: Dtype = "float32",
    dim: Dim = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
) -> None:
    """Predict each structure's force RMSE (eV/A), energy error (eV/atom) and per-atom force
    error from the posterior variance of the model's own features given --train, calibrated on
    --calibrate.

    Writes OUTPUT (extended XYZ: fntk_energy, fntk_forces, fntk_force_sigma, fntk_energy_sigma
    in info, fntk_atom_force_sigma in arrays), OUTPUT with .csv, and OUTPUT's stem with
    .run.json (fitted scale and noise, coverage of the calibration set).
    """
    from fntk.pipeline import build_run_options
    from fntk.pipeline.uncertainty import UNCALIBRATED_WARNING, run_uncertainty

    # the flags map onto the options as for `fntk select`
    options = build_run_options(model=model, device=device, dtype=dtype, dim=dim)
    if not calibrate:
        typer.echo(f"warning: {UNCALIBRATED_WARNING}", err=True)
    run = run_uncertainty(files, train, calibrate or [], output, options, overwrite=overwrite)
    typer.echo(
        f"wrote {run['n_structures']} structures to {output} "
        f"(mean predicted force RMSE {run['mean_force_sigma']:.4g}"
        f"{' eV/A' if run['calibrated'] else ', uncalibrated'})"
    )
