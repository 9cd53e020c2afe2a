"""Options of the whole selection job (``fntk select``), parsed once.

:class:`RunOptions` nests the options of each component (feature map, selector) and is written
into ``run.json`` under ``"options"``, so a run can be repeated from its own record:
``fntk select ... --config old/run.json``. It is built from, in increasing priority, the
defaults of the component options classes (the only place defaults live), a YAML, TOML or JSON
file (:func:`read_config`), and command-line flags (:func:`apply_flags`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fntk.errors import InputError, invalid_options
from fntk.features.options import (
    DEFAULT_ENERGY_WEIGHT,
    DEFAULT_FORCES_WEIGHT,
    FeatureMapOptions,
    force_row_weight,
)
from fntk.features.registry import (
    DEFAULT_FEATURE_MAP,
    default_options,
    has_force_rows,
    option_names,
    weighs_force_rows,
)
from fntk.select.options import DEFAULT_COST_EXPONENT, SelectOptions


class ExecutionOptions(BaseModel):
    """How a selection run executes: where it writes, where features are kept and what
    computes them.

    The picks are the same whatever these are (any folder, store, worker count or scheduler),
    so they are recorded in run.json but are no part of what ``--resume`` compares.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: Path | None = Field(
        None,
        description="Output folder (fntk select -o; from --config when -o is not given, so "
        "`fntk select ... --config OUT/run.json --resume` continues a killed run in place).",
    )
    store: Path | None = Field(
        None,
        description="Feature store directory: reuse its intact chunks, compute the missing ones "
        "into it (with resume and no store: OUTDIR/feature-store).",
    )
    resume: bool = Field(False, description="Continue a killed run in the output folder.")
    workers: int = Field(
        0, ge=0, description="Worker processes of a local Dask cluster (0: this process)."
    )
    scheduler: str | None = Field(None, description="Address of a running Dask scheduler.")

    @model_validator(mode="after")
    def _one_engine(self) -> ExecutionOptions:
        if self.workers and self.scheduler:
            raise ValueError("--workers and --scheduler exclude each other: give one of them")
        return self


class RunOptions(BaseModel):
    """Everything a selection run depends on, besides its input files (stored in run.json)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(100, ge=0, description="Number of structures to pick.")
    model: str = Field("sevennet-0", description="Model spec (see fntk.models.load_backend).")
    features: FeatureMapOptions = Field(
        default_factory=lambda: default_options(DEFAULT_FEATURE_MAP)
    )
    select: SelectOptions = Field(default_factory=SelectOptions)
    chunk_size: int = Field(256, ge=1, description="Structures read and featurised at a time.")
    seed: int = Field(0, ge=0, description="Seed of the random choices in selection.")
    skip_unsupported: bool = Field(
        False,
        description="Skip (and list in run.json) structures with elements the model does not "
        "know, instead of stopping at the first one.",
    )
    energy_weight: float = Field(
        DEFAULT_ENERGY_WEIGHT,
        ge=0.0,
        allow_inf_nan=False,
        description="Fine-tuning loss weight w_E of per-atom energies, 1/(eV/atom)^2.",
    )
    forces_weight: float = Field(
        DEFAULT_FORCES_WEIGHT,
        ge=0.0,
        allow_inf_nan=False,
        description="Fine-tuning loss weight w_F of force components, 1/(eV/Angstrom)^2. With "
        "energy_weight it sets the joint map's lambda (fntk.features.force_row_weight at the "
        "mean atom count of the pool), overriding features.force_weight.",
    )
    calibrate: tuple[str, ...] = Field(
        (),
        description="Labelled structure files (not in the training set) whose force errors "
        "under the model calibrate the stopping signal into eV/Angstrom "
        "(fntk.pipeline.uncertainty.pool_error_signal); empty: the signal stays uncalibrated.",
    )
    target: tuple[str, ...] = Field(
        (),
        description="Unlabelled structure files (globs allowed) like those the simulations will "
        "visit: a covering selector (coverage, coverage-density) covers a uniform sample of "
        "them instead of the pool's (fntk.select.Selector.select); empty: cover the pool.",
    )
    execution: ExecutionOptions = Field(default_factory=ExecutionOptions)

    def executed_with(self, **fields: Any) -> RunOptions:
        """These options with the :class:`ExecutionOptions` ``fields`` replaced (validated)."""
        execution = ExecutionOptions.model_validate({**self.execution.model_dump(), **fields})
        return self.model_copy(update={"execution": execution})


FLAGS = (
    "n",
    "features",
    "selector",
    "model",
    "group",
    "dim",
    "shortlist",
    "chunk_size",
    "batch_size",
    "cost_aware",
    "seed",
    "device",
    "energy_weight",
    "forces_weight",
    "dtype",
    "skip_unsupported",
    "calibrate",
    "target",
    "output",
    "store",
    "resume",
    "workers",
    "scheduler",
)
"""Flat names of the command-line flags of ``fntk select`` that :func:`apply_flags` takes."""

EXECUTION_FLAGS = tuple(ExecutionOptions.model_fields)
"""The flags that set :class:`ExecutionOptions` fields (``store``, ``resume``, ...)."""

_NTK_ONLY = ("group", "dim")

FEATURE_FLAGS = ("group", "dim", "batch_size", "device", "dtype")
"""Flags that set the feature-map field of their own name (``--group``, ``--dim``, ...)."""

SELECT_FLAGS = {
    "selector": "method",
    "shortlist": "shortlist_size",
    "relative_noise": "relative_noise",
    "cost_aware": "cost_exponent",
}
"""Flags that set a :class:`~fntk.select.SelectOptions` field, and the field each sets."""


def component_flags(flags: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The feature-map and selection option fields that command-line style ``flags`` set.

    The one mapping of these flags for every command (``fntk select``, ``fntk features``,
    ``fntk bench``, ``fntk uncertainty``): :data:`FEATURE_FLAGS` go to ``"features"`` under
    their own names, :data:`SELECT_FLAGS` to ``"select"`` (``cost_aware`` turns the
    labelling-cost exponent :data:`~fntk.select.options.DEFAULT_COST_EXPONENT` on or off);
    other flags are left to the caller.

    Returns
    -------
    dict
        ``{"features": {field: value}, "select": {field: value}}``, only the fields given.
    """
    features = {k: flags[k] for k in FEATURE_FLAGS if k in flags}
    select = {field: flags[k] for k, field in SELECT_FLAGS.items() if k in flags}
    if "cost_aware" in flags:
        select["cost_exponent"] = DEFAULT_COST_EXPONENT if flags["cost_aware"] else None
    return {"features": features, "select": select}


def apply_flags(base: RunOptions, **flags: Any) -> RunOptions:
    """``base`` with the command-line style ``flags`` applied on top (validated).

    Parameters
    ----------
    base : RunOptions
        Defaults, or the options read from a config file.
    **flags
        Any of :data:`FLAGS`: ``n``, ``model``, ``chunk_size``, ``energy_weight``,
        ``forces_weight`` (loss weights of the joint map's lambda), ``skip_unsupported``,
        ``seed`` (also the sketch seed
        of NTK maps); ``features`` (a map name: a new map keeps ``batch_size``, ``device`` and
        ``dtype``), ``group``, ``dim``, ``batch_size``, ``device``, ``dtype`` (feature options);
        ``calibrate`` (labelled files calibrating the stopping signal); ``target`` (files a
        covering selector covers instead of the pool);
        ``selector``, ``shortlist`` and ``cost_aware`` (labelling-cost exponent
        :data:`~fntk.select.options.DEFAULT_COST_EXPONENT` on or off) (selection options);
        ``output``, ``store``, ``resume``, ``workers``, ``scheduler``
        (:class:`ExecutionOptions`).

    Raises
    ------
    InputError
        Unknown flag, invalid value, or a flag that does not apply to the chosen feature map
        (``--dim``/``--group`` with ``embedding``).
    """
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(unknown)}; valid: {', '.join(FLAGS)}")
    data = base.model_dump(mode="json")
    features: dict[str, Any] = data["features"]
    if "features" in flags and flags["features"] != features["name"]:
        kept = {k: features[k] for k in ("batch_size", "device", "dtype")}
        features = default_options(flags["features"], **kept).model_dump(mode="json")
    fields = option_names(features["name"])
    inapplicable = [f"--{k}" for k in _NTK_ONLY if k in flags and k not in fields]
    if inapplicable:
        raise InputError(
            f"{', '.join(inapplicable)} do(es) not apply to the {features['name']!r} feature map "
            "(it has no parameter group or sketch); drop the option or choose an NTK map"
        )
    updates = component_flags(flags)
    features.update(updates["features"])
    select: dict[str, Any] = {**data["select"], **updates["select"]}
    if "seed" in flags:
        data["seed"] = flags["seed"]
        if "seed" in fields:
            features["seed"] = flags["seed"]
    top = (
        "n",
        "model",
        "chunk_size",
        "energy_weight",
        "forces_weight",
        "skip_unsupported",
        "calibrate",
        "target",
    )
    data.update({k: flags[k] for k in top if k in flags})
    data["execution"].update({k: flags[k] for k in EXECUTION_FLAGS if k in flags})
    data["features"], data["select"] = features, select
    try:
        options = RunOptions.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise invalid_options(exc, names=FLAG_NAMES) from None
    _check_consistent(options)
    return options


FLAG_NAMES = {
    "select.method": "--selector",
    "select.shortlist_size": "--shortlist",
    "select.relative_noise": "--relative-noise",
    "features.dim": "--dim",
    "features.group": "--group",
    "features.batch_size": "--batch-size",
    "features.device": "--device",
    "chunk_size": "--chunk-size",
    "energy_weight": "--energy-weight",
    "forces_weight": "--forces-weight",
    "seed": "--seed",
    "n": "-n",
    "execution.workers": "--workers",
    "execution.scheduler": "--scheduler",
    "execution.store": "--store",
    "execution.output": "--output",
}
"""Option paths of :class:`RunOptions` and the flags that set them (for one-line errors)."""


def _check_consistent(options: RunOptions) -> None:
    """Options that are each valid but not together (checked before any compute)."""
    if options.energy_weight == 0 and options.forces_weight == 0:
        raise InputError(
            "--energy-weight and --forces-weight are both 0: the loss weighs nothing",
            hint="give at least one a positive weight",
        )
    shortlist = options.select.shortlist_size
    if shortlist is not None and shortlist < options.n:
        raise InputError(
            f"--shortlist {shortlist} is smaller than -n {options.n}",
            hint="pass --shortlist >= n, or leave it out for max(1000, 10 n)",
        )
    if options.calibrate and not has_force_rows(options.features.name):
        raise InputError(
            f"--calibrate calibrates the stopping signal, which the {options.features.name!r} "
            "feature map has none of (it needs force rows)",
            hint="use --features joint (the default) or force-ntk, or drop --calibrate",
        )


def joint_weight_at(options: RunOptions, n_atoms: float) -> RunOptions:
    """``options`` whose joint map's lambda is derived from the loss weights.

    lambda = :func:`~fntk.features.options.force_row_weight` of ``options.energy_weight`` and
    ``options.forces_weight`` at the mean atom count ``n_atoms`` (``fntk select``: of the
    pool); maps without both energy and force rows are returned unchanged.
    """
    if not weighs_force_rows(options.features.name):
        return options
    weight = force_row_weight(options.energy_weight, options.forces_weight, n_atoms)
    features = options.features.model_copy(update={"force_weight": weight})
    return options.model_copy(update={"features": features})


def build_run_options(**flags: Any) -> RunOptions:
    """Validated options from command-line style arguments on top of the defaults.

    ``None`` values mean "not given" (the default stays). See :func:`apply_flags`.
    """
    return apply_flags(RunOptions(), **{k: v for k, v in flags.items() if v is not None})


def read_config(path: str | Path) -> dict[str, Any]:
    """The options mapping in a YAML (``.yaml``/``.yml``), TOML or JSON file.

    A ``run.json`` written by ``fntk select`` holds its options under ``"options"`` and a
    ``state.json`` of ``fntk bench`` under ``"run_options"``; that key is used when present, so
    a run repeats from its own record.

    Raises
    ------
    InputError
        Missing file, unknown extension, or text that does not parse to a mapping.
    """
    file = Path(path)
    if not file.is_file():
        what = "is a directory, not a config file" if file.is_dir() else "config file not found"
        raise InputError(what, file=str(file), hint="--config takes a .yaml, .toml or .json file")
    text = file.read_text(encoding="utf-8")
    suffix = file.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise InputError(
                f"unknown config format {suffix!r}",
                file=str(file),
                hint="use .yaml, .yml, .toml or .json",
            )
    except InputError:
        raise
    except Exception as exc:  # each parser has its own error class
        raise InputError(f"config does not parse: {exc}".splitlines()[0], file=str(file)) from None
    for key in ("run_options", "options"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping):
        raise InputError("config must hold a mapping of options", file=str(file))
    return dict(data)


def load_run_options(config: str | Path | None = None, **flags: Any) -> RunOptions:
    """Options from the defaults, then ``config`` (a file, optional), then ``flags``."""
    base = RunOptions()
    if config is not None:
        try:
            base = RunOptions.model_validate(read_config(config))
        except ValidationError as exc:
            raise invalid_options(exc, f"option in {config}") from None
    return apply_flags(base, **{k: v for k, v in flags.items() if v is not None})
