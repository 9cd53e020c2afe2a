"""Option types shared by commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelSpec = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model spec: sevennet-0 (embedded default), sevennet:PATH, mace:PATH, "
        "mace-mp:small|medium, mace-off:small.",
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")]
SOURCE_HELP = (
    "Structure files in any format ASE reads (globs allowed), or data sets as released "
    "(OC20 .extxyz.xz/.lmdb/.aselmdb, Transition1x and RGD1 .h5), by extension or written "
    "FORMAT[,KEY=VALUE...]:PATH, e.g. transition1x,split=test:transition1x.h5."
)
StructureFiles = Annotated[list[str], typer.Argument(help=SOURCE_HELP)]
OutDir = Annotated[Path, typer.Option("--output", "-o", help="Output directory.")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output directory's files.")
]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, help="Structures per model forward pass.")
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same result.")]
