"""``fntk data make``: write a generated benchmark data set (init / pool / test splits)."""

from __future__ import annotations

from typing import Annotated

import typer

from fntk.cli.types import OutDir, Overwrite, Seed

data_app = typer.Typer(help="Generated benchmark data sets.", no_args_is_help=True)
"""The ``fntk data`` group; ``cli/main.py`` registers :func:`make` on it as ``make``."""


def make(
    name: Annotated[str, typer.Argument(help="Data set: emt-adsorbates or xtb-reactions.")],
    output: OutDir,
    seed: Seed = 0,
    size: Annotated[
        list[str] | None,
        typer.Option("--size", help="Structures of a split as SPLIT=N (repeatable; 0 skips it)."),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Generate data set NAME and write one extended XYZ per split plus README.md to OUTDIR.

    OUTDIR must be new or empty unless --overwrite (which replaces files of the same names).
    """
    from fntk.data import make_dataset
    from fntk.errors import InputError

    sizes: dict[str, int] = {}
    for spec in size or []:
        split, sep, value = spec.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise InputError(f"--size {spec!r} is not SPLIT=N")
        sizes[split.strip()] = int(value)
    try:
        files = make_dataset(name, output, sizes=sizes, seed=seed, overwrite=overwrite)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for split, path in files.splits.items():
        typer.echo(f"{split:>14}: {path}")
    typer.echo(f"{'e0_reference':>14}: {files.e0_reference}")
    typer.echo(f"{'README':>14}: {files.readme}")
