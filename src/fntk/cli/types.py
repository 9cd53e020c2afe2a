"""Option types shared by commands, declared once; choices come from the registries.

The selector and feature-map registries are torch-free, so building these types keeps
``fntk --help`` fast. Model specs are listed by ``fntk models`` (loading the backend registry
imports torch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import typer

from fntk.features.registry import DEFAULT_FEATURE_MAP, FEATURE_MAPS
from fntk.options import PARAMETER_GROUPS, ComputeDtype
from fntk.select.options import SelectOptions
from fntk.select.registry import selectors

if TYPE_CHECKING:  # the choices are only known at run time; to a type checker they are strings
    _MapNames: TypeAlias = str
    _SelectorNames: TypeAlias = str
    _GroupNames: TypeAlias = str
else:
    _MapNames = Literal[FEATURE_MAPS.names()]
    _SelectorNames = Literal[selectors().names()]
    _GroupNames = Literal[PARAMETER_GROUPS]

LearnerChoice = Literal["ridge", "finetune"]
"""``fntk bench --learner`` (= ``fntk.bench.options.LearnerName``, which imports torch)."""
ProxyLearnerChoice = Literal["ridge"]
"""``fntk bench --proxy-learner``."""
AggregationChoice = Literal["mean", "max"]
"""``fntk bench --committee-aggregation`` (= ``fntk.bench.options.Aggregation``)."""

ModelSpec = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model spec, e.g. sevennet-0 (embedded default), sevennet:PATH, mace:PATH, "
        "mace:PATH@HEAD; `fntk models` lists every form.",
    ),
]


def _check_device(value: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; anything else is a usage error (exit 2)."""
    import re

    if value is not None and not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise typer.BadParameter(f"{value!r} is not one of auto, cpu, cuda, cuda:N")
    return value


Device = Annotated[
    str,
    typer.Option(
        "--device", callback=_check_device, help="auto (CUDA when present), cpu, cuda or cuda:N."
    ),
]
SOURCE_HELP = (
    "Structure files in any format ASE reads (globs allowed), or data sets as released "
    "(OC20 .extxyz.xz/.lmdb/.aselmdb, Transition1x and RGD1 .h5), by extension or written "
    "FORMAT[,KEY=VALUE...]:PATH, e.g. transition1x,split=test:transition1x.h5."
)
StructureFiles = Annotated[list[str], typer.Argument(help=SOURCE_HELP)]
OutDir = Annotated[Path, typer.Option("--output", "-o", help="Output directory.")]
OptionalOutDir = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Output directory.",
        show_default="execution.output of --config (required without it)",
    ),
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output directory's files.")
]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, help="Structures per model forward pass.")
]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Random seed; same seed, same result.")]


def finite_number(value: float | None) -> float | None:
    """Callback of float options: ``inf`` and ``nan`` are malformed values (exit 2)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value!r} is not a finite number")
    return value


Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Options file (YAML, TOML or JSON; a previous run.json works). Flags given on the "
        "command line override it.",
    ),
]
FeatureMapName = Annotated[
    _MapNames,
    typer.Option(
        "--features",
        help="Feature map (README, 'Feature maps').",
    ),
]
MapChoice = Annotated[
    _MapNames,
    typer.Option("--map", help="Feature map (README, 'Feature maps')."),
]
Dim = Annotated[
    int | None,
    typer.Option(
        "--dim",
        min=1,
        help="Width d of the NTK maps (fntk bench: of force-ntk, joint and the ridge "
        "learner; 128 is SevenNet-0's exact readout).",
        show_default="joint 16, energy-ntk and force-ntk 512 (bench: force-ntk 16)",
    ),
]
Shortlist = Annotated[
    int | None,
    typer.Option(
        "--shortlist",
        min=1,
        help="Posterior-variance shortlist size M.",
        show_default="max(1000, 10 n)",
    ),
]

DEFAULT_MAP: str = DEFAULT_FEATURE_MAP
"""Default feature map of every command (:data:`fntk.features.registry.DEFAULT_FEATURE_MAP`)."""

DEFAULT_SELECTOR: str = SelectOptions().method
"""Default batch selector of every command (:class:`~fntk.select.SelectOptions`'s)."""

_SELECTOR_LIST = ", ".join(selectors().names())
"""The selector names, listed in the help text (too many for a ``<a|b|...>`` metavar)."""

SelectorChoice = Annotated[
    _SelectorNames,
    typer.Option(
        "--selector",
        metavar="<name>",
        help=f"Batch selector: {_SELECTOR_LIST} (README, 'Selection').",
    ),
]
CostAware = Annotated[bool, typer.Option(help="Divide gains by the labelling cost N^3 (DFT-like).")]
RelativeNoise = Annotated[
    float,
    typer.Option(
        "--relative-noise",
        min=0.0,
        callback=finite_number,
        help="Posterior noise variance relative to the feature scale.",
    ),
]
ParameterGroupName = Annotated[
    _GroupNames,
    typer.Option(
        "--group",
        help="Parameter group of the NTK maps.",
    ),
]

ScopeChoice = Annotated[
    _GroupNames | None,
    typer.Option(
        "--scope", help="Fine-tuned parameters of --learner finetune.", show_default="readout"
    ),
]


def given_flags(
    ctx: typer.Context, names: Iterable[str], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The flags among ``names`` given on the command line (not defaults), with their values.

    A config file supplies everything else, so a flag that was not typed must not override it.
    """
    typed = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")
    given = {}
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name in typed:
            given[name] = values[name]
    return given


Dtype = Annotated[
    ComputeDtype,
    typer.Option("--dtype", help="Floating-point type the model runs in (recorded in outputs)."),
]
EnergyKey = Annotated[
    str | None,
    typer.Option(
        "--energy-key",
        help="atoms.info key of the reference energy (MACE's: REF_energy).",
        show_default="the energy of the calculator ASE attached (extended XYZ energy=)",
    ),
]
ForcesKey = Annotated[
    str | None,
    typer.Option(
        "--forces-key",
        help="atoms.arrays key of the reference forces (MACE's: REF_forces).",
        show_default="the forces of the attached calculator",
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
