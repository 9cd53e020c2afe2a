"""``fntk data make``: write a generated benchmark data set (init / pool / test splits)."""

from __future__ import annotations

from typing import Annotated

import typer

from fntk.cli.types import OutDir, Overwrite, Seed

data_app = typer.Typer(
    help="Generated benchmark data sets.", no_args_is_help=True, rich_markup_mode=None
)
"""The ``fntk data`` group; ``cli/main.py`` registers :func:`make` on it as ``make``."""


def _check_sizes(values: list[str] | None) -> list[str] | None:
    """Each ``--size`` is ``SPLIT=N`` with N a whole number; anything else is a usage error."""
    for spec in values or []:
        split, sep, value = spec.partition("=")
        if not sep or not split.strip() or not value.strip().isdigit():
            raise typer.BadParameter(f"{spec!r} is not SPLIT=N (N a whole number, 0 or more)")
    return values


def make(
    name: Annotated[str, typer.Argument(help="Data set: emt-adsorbates, xtb-md or xtb-reactions.")],
    output: OutDir,
    seed: Seed = 0,
    size: Annotated[
        list[str] | None,
        typer.Option(
            "--size",
            callback=_check_sizes,
            help="Structures of a split as SPLIT=N (repeatable; 0 skips it).",
            show_default="the data set's own",
        ),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Generate data set NAME and write one extended XYZ per split plus README.md to OUTDIR.

    OUTDIR must be new or empty unless --overwrite (which replaces files of the same names).
    """
    from fntk.data import make_dataset

    sizes = {s.partition("=")[0].strip(): int(s.partition("=")[2]) for s in size or []}
    files = make_dataset(name, output, sizes=sizes, seed=seed, overwrite=overwrite)
    for split, path in files.splits.items():
        typer.echo(f"{split:>14}: {path}")
    typer.echo(f"{'e0_reference':>14}: {files.e0_reference}")
    typer.echo(f"{'README':>14}: {files.readme}")
