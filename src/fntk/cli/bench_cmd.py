"""``fntk bench``: compare acquisition methods in a resumable active-learning loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fntk.cli.types import (
    DEFAULT_SELECTOR,
    AggregationChoice,
    BatchSize,
    Config,
    CostAware,
    Device,
    Dim,
    EnergyKey,
    ForcesKey,
    LearnerChoice,
    ModelSpec,
    OutDir,
    Overwrite,
    ParameterGroupName,
    ProxyLearnerChoice,
    RelativeNoise,
    ScopeChoice,
    SelectorChoice,
    Shortlist,
    given_flags,
)

_SHARED_FLAGS = (
    "dim",
    "group",
    "batch_size",
    "selector",
    "shortlist",
    "relative_noise",
    "cost_aware",
)
"""Flags of the feature and selection options, mapped by :func:`fntk.pipeline.component_flags`
as for ``fntk select`` (``--device`` is the whole run's here: features and fine-tuning)."""

METHODS_HELP = "random, committee, embedding, energy-ntk, force-ntk, joint, fps"
_OUTPUT_FILES = (
    "results.csv",
    "proxy_results.csv",
    "state.json",
    "summary.md",
    "learning_curves.png",
)


def bench(
    ctx: typer.Context,
    init: Annotated[
        list[str], typer.Option("--init", help="Labelled initial structures (repeatable).")
    ],
    pool: Annotated[
        list[str], typer.Option("--pool", help="Labelled pool; labels stay hidden until picked.")
    ],
    test: Annotated[
        list[str],
        typer.Option("--test", help="Test split as NAME=FILE (or FILE: named by its stem)."),
    ],
    output: OutDir,
    rounds: Annotated[
        int | None, typer.Option(min=0, help="Selection rounds R.", show_default="6")
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="Structures picked per round.", show_default="10")
    ] = None,
    budgets: Annotated[
        str | None,
        typer.Option(
            help="Cumulative pool picks after each round, e.g. 16,32,64,128,256 (replaces "
            "--rounds and --batch).",
            show_default="--rounds of --batch",
        ),
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated methods: {METHODS_HELP}.", show_default="all"),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(min=1, help="Seeds 0..S-1 per method.", show_default="3")
    ] = None,
    model: ModelSpec = "sevennet-0",
    energy_key: EnergyKey = None,
    forces_key: ForcesKey = None,
    e0_reference: Annotated[
        list[str] | None,
        typer.Option(
            "--e0-reference",
            help="Reference structures of the per-element E0 fit.",
            show_default="the labelled set",
        ),
    ] = None,
    learner: Annotated[
        LearnerChoice | None,
        typer.Option(
            help="ridge: exact readout fine-tuning as ridge regression, fast on CPUs (SevenNet); "
            "finetune: Adam steps on --scope, any model, for GPUs.",
            show_default="ridge",
        ),
    ] = None,
    proxy_learner: Annotated[
        ProxyLearnerChoice | None,
        typer.Option(
            "--proxy-learner",
            help="Also fit this cheaper learner on the same labelled sets (proxy_results.csv) "
            "and report how well it ranks the methods like --learner.",
            show_default="none",
        ),
    ] = None,
    dim: Dim = None,
    group: ParameterGroupName = "readout",
    batch_size: BatchSize = 8,
    scope: ScopeChoice = None,
    steps: Annotated[
        int | None,
        typer.Option(min=0, help="Fine-tuning steps per round.", show_default="100"),
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="At least this many passes over the labelled set per round (more steps as "
            "the labels grow; --steps is the floor).",
            show_default="0",
        ),
    ] = None,
    selector: SelectorChoice = DEFAULT_SELECTOR,
    shortlist: Shortlist = None,
    relative_noise: RelativeNoise = 1e-6,  # = SelectOptions().relative_noise (a test checks)
    cost_aware: CostAware = False,
    joint_lambda: Annotated[
        float | None,
        typer.Option(
            "--joint-lambda",
            min=0.0,
            help="lambda of the joint map, A.",
            show_default="from the loss weights",
        ),
    ] = None,
    committee_size: Annotated[
        int | None, typer.Option(min=2, help="Committee members K.", show_default="4")
    ] = None,
    aggregation: Annotated[
        AggregationChoice | None,
        typer.Option(
            "--committee-aggregation",
            help="How per-atom force disagreements make a structure's score.",
            show_default="mean",
        ),
    ] = None,
    pool_shift: Annotated[
        list[str] | None,
        typer.Option(
            "--pool-shift",
            help="Pool filter, repeatable: element:Pt, element:!Pt, info:metal=Cu,Ag, "
            "info:temperature_K<=600.",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="Unlabelled structures like those the user will simulate (repeatable): the "
            "covering selectors of the feature methods cover them instead of the pool.",
            show_default="none: cover the pool",
        ),
    ] = None,
    max_pool: Annotated[
        int | None,
        typer.Option(
            min=1, help="Use a fixed random subset of the pool.", show_default="whole pool"
        ),
    ] = None,
    pick_tag: Annotated[
        list[str] | None,
        typer.Option("--pick-tag", help="info key compared in summary.md's picks vs pool."),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Preset of a few CPU minutes (1 seed, 1 round of 2 picks from at most 8 pool "
            "structures, --dim 8, 3 steps, 3 committee members); flags override it.",
        ),
    ] = False,
    device: Device = "auto",
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Torch CPU threads for this command (1 is often fastest on busy CPUs).",
            show_default="torch's",
        ),
    ] = None,
    config: Config = None,
    overwrite: Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress log.")] = False,
) -> None:
    """Run (or resume) the active-learning benchmark; write results.csv, summary.md, curves.

    A rerun with the same -o continues from the last finished round (it may ask for more
    rounds, seeds or methods); --overwrite starts over.
    """
    import logging

    from pydantic import ValidationError

    from fntk.bench import build_bench_options, run_benchmark_files
    from fntk.bench.checks import check_labelled_files
    from fntk.errors import FntkError, invalid_options
    from fntk.io import expand_paths
    from fntk.io.lock import folder_lock
    from fntk.models import check_model_spec, torch_threads
    from fntk.pipeline.options import FLAG_NAMES, component_flags, read_config

    # the feature and selection flags map onto the options as for `fntk select`
    overrides: dict[str, object] = {**component_flags(given_flags(ctx, _SHARED_FLAGS, locals()))}
    given = given_flags(ctx, ("model", "device"), {"model": model, "device": device})
    overrides.update(given if config is not None else {"model": model, "device": device})
    named = {
        "rounds": rounds,
        "batch": batch,
        "n_seeds": seeds,
        "committee_size": committee_size,
        "committee_aggregation": aggregation,
        "max_pool": max_pool,
        "learner": learner,
        "proxy_learner": proxy_learner,
        "joint_force_weight": joint_lambda,
        "energy_key": energy_key,
        "forces_key": forces_key,
    }
    overrides.update({k: v for k, v in named.items() if v is not None})
    if budgets is not None:
        if rounds is not None or batch is not None:
            raise typer.BadParameter(
                "replaces --rounds and --batch: give one or the other", param_hint="--budgets"
            )
        overrides["budgets"] = _parse_budgets(budgets)
    if methods is not None:
        overrides["methods"] = _parse_methods(methods)
    if pool_shift:
        overrides["pool_shift"] = tuple(pool_shift)
    tuning = {"scope": scope, "n_steps": steps, "min_epochs": epochs}
    tuning = {k: v for k, v in tuning.items() if v is not None}
    if tuning:
        overrides["finetune"] = tuning
    if pick_tag:
        overrides["pick_tags"] = tuple(pick_tag)
    settings = read_config(config) if config is not None else None
    try:
        options = build_bench_options(quick=quick, config=settings, **overrides)
    except (ValueError, ValidationError) as exc:
        raise invalid_options(exc, "benchmark option", names=FLAG_NAMES) from None
    _check_output(output, overwrite)
    tests = _parse_tests(test)
    check_model_spec(options.model)
    for files in (init, pool, *tests.values(), e0_reference or [], target or []):
        if files:
            expand_paths(files)  # a missing file is an error before the folder is created
    keys = options.energy_key, options.forces_key
    check_labelled_files([*init, *pool], *keys)  # first frames: unlabelled is refused now
    check_labelled_files([f for t in tests.values() for f in t], *keys, require_forces=False)
    created = not output.exists()
    out = _prepare(output, overwrite)
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("fntk.bench").setLevel(logging.INFO)
    try:
        with folder_lock(out), torch_threads(threads):  # one benchmark per folder at a time
            run = run_benchmark_files(
                init,
                pool,
                tests,
                out,
                options,
                e0_reference=e0_reference or (),
                target=target or (),
            )
    except FntkError:
        if created:
            _remove_if_empty(out)
        raise
    typer.echo(run.summary)
    for name, path in run.paths.items():
        typer.echo(f"{name:>8}: {path}")


def _remove_if_empty(out: Path) -> None:
    """Remove ``out`` (created by this run) when it holds nothing but empty folders."""
    import shutil

    if all(p.is_dir() for p in out.rglob("*")):
        shutil.rmtree(out, ignore_errors=True)


def _parse_budgets(text: str) -> tuple[int, ...]:
    """``16,32,64`` -> ``(16, 32, 64)``; anything else is a usage error (exit 2)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of whole numbers", param_hint="--budgets"
        )
    return tuple(int(p) for p in parts)


def _parse_methods(value: str) -> tuple[str, ...]:
    """``--methods a,b``; an unknown name is a usage error (exit 2) naming the valid ones."""
    from fntk.bench.options import METHOD_NAMES

    names = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in names if m not in METHOD_NAMES]
    if unknown or not names:
        given = ", ".join(repr(m) for m in unknown) or repr(value)
        raise typer.BadParameter(
            f"{given} is not one of {', '.join(repr(m) for m in METHOD_NAMES)}",
            param_hint="--methods",
        )
    return names


def _parse_tests(specs: list[str]) -> dict[str, list[str]]:
    tests: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).stem, spec
        if not name or not path:
            raise typer.BadParameter(f"{spec!r} is not NAME=FILE", param_hint="--test")
        tests.setdefault(name, []).append(path)
    return tests


def _check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output directory (changing nothing) unless it is new, empty, holds a benchmark
    state (or only the ``features`` cache of a run killed before its first round), or holds
    nothing but the benchmark's own files and ``--overwrite`` was passed."""
    from fntk.errors import InputError

    if output.exists() and not output.is_dir():
        raise InputError("output path exists and is not a directory", file=str(output))
    from fntk.io.lock import LOCK_NAME

    own = {"features", LOCK_NAME, *_OUTPUT_FILES} if overwrite else {"features", LOCK_NAME}
    resumable = (output / "state.json").is_file() and not overwrite
    if output.is_dir() and any(p.name not in own for p in output.iterdir()) and not resumable:
        raise InputError(
            "output directory is not empty and holds no benchmark state",
            file=str(output),
            hint="--overwrite clears only fntk's own files: move the others or choose another -o"
            if overwrite
            else "choose another -o or pass --overwrite",
        )


def _prepare(output: Path, overwrite: bool) -> Path:
    """Output directory after :func:`_check_output`; ``--overwrite`` removes only the
    benchmark's own files."""
    import shutil

    _check_output(output, overwrite)
    if overwrite and output.is_dir():
        for name in _OUTPUT_FILES:
            (output / name).unlink(missing_ok=True)
        shutil.rmtree(output / "features", ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)
    return output
