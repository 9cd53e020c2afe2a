"""Option types shared by commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

ModelSpec = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model spec: sevennet-0 (embedded default), sevennet:PATH, mace:PATH, "
        "mace:PATH@HEAD (a head of a multi-head MACE model), mace-mp:small|medium, "
        "mace-off:small.",
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")]
StructureFiles = Annotated[
    list[str], typer.Argument(help="Structure files in any format ASE reads (globs allowed).")
]
OutDir = Annotated[Path, typer.Option("--output", "-o", help="Output directory.")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output directory's files.")
]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, help="Structures per model forward pass.")
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same result.")]
Dtype = Annotated[
    Literal["float32", "float64"],
    typer.Option("--dtype", help="Floating-point type the model runs in (recorded in outputs)."),
]
EnergyKey = Annotated[
    str | None,
    typer.Option(
        "--energy-key",
        help="atoms.info key of the reference energy (MACE's default: REF_energy); "
        "default: the calculator ASE attached (extended XYZ energy=).",
    ),
]
ForcesKey = Annotated[
    str | None,
    typer.Option(
        "--forces-key",
        help="atoms.arrays key of the reference forces (MACE's default: REF_forces); "
        "default: the attached calculator's forces.",
    ),
]
SkipUnsupported = Annotated[
    bool,
    typer.Option(
        "--skip-unsupported",
        help="Skip structures with elements the model does not know (listed in run.json) "
        "instead of stopping at the first one.",
    ),
]
