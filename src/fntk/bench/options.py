"""Options of the active-learning benchmark: one validated pydantic model, defaults with units.

:class:`BenchOptions` holds every knob of a benchmark run (rounds, batch, methods, seeds,
fine-tuning, selection, committee, pool shift). The method names are written once, in
:data:`MethodName`; the method registry in :mod:`fntk.bench.methods` and the CLI choices use it.
:func:`build_bench_options` adds the ``--quick`` preset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fntk.features.options import JointNTKOptions
from fntk.learn import FinetuneOptions
from fntk.select import SelectOptions

MethodName = Literal["random", "committee", "embedding", "energy-ntk", "force-ntk", "joint", "fps"]
"""Acquisition methods: ``random``, a fine-tuned ``committee``, the four feature maps and
farthest-point sampling on the pretrained embedding (``fps``, the field's common baseline)."""

METHOD_NAMES: tuple[str, ...] = get_args(MethodName)

Aggregation = Literal["mean", "max"]
LearnerName = Literal["ridge", "finetune"]


class BenchOptions(BaseModel):
    """Options of one benchmark run (see :func:`fntk.bench.run_benchmark`).

    Attributes
    ----------
    methods : tuple of MethodName
        Acquisition methods compared, each run with every seed. Default: all seven.
    n_seeds : int
        Seeds ``0 .. n_seeds - 1``. A seed fixes the fine-tuning split and mini-batch order,
        random picks, randomised selectors and committee members. Default 3.
    rounds : int
        Selection rounds ``R``; the model is fine-tuned and evaluated after rounds
        ``0 .. R`` (round 0: initial set only), so a run labels ``R * batch`` pool structures.
        Default 6.
    batch : int
        Structures labelled per round (the same budget for every method). Default 10.
    budgets : tuple of int
        Cumulative pool picks after each round, e.g. ``(16, 32, 64, 128, 256)``: a learning
        curve with rounds of growing size (round ``r`` picks ``budgets[r] - budgets[r-1]``).
        When given, it replaces ``rounds`` and ``batch``. Default ``()`` (``rounds`` of
        ``batch``).
    model : str
        Model spec of the pretrained MLIP (``fntk models``). Default ``sevennet-0``.
    device : str
        Torch device of fine-tuning and features (``auto``: CUDA when present). Default ``auto``.
    proxy_learner : {"ridge"} or None
        A second, cheaper learner fitted and evaluated on the same labelled sets as
        ``learner`` (its rows go to ``proxy_results.csv``); the summary then says how well
        the proxy ranks the methods like the real learner. Default ``None``.
    tail_fraction : float
        Each test split with forces also gets a split of its ``tail_fraction`` structures with
        the largest atomic reference force (``"<split> top-5%-F"``: the tail a simulation
        crashes on), when that is at least :data:`MIN_TAIL_STRUCTURES` structures. Default
        0.05; 0 turns it off.
    learner : {"ridge", "finetune"}
        How a round fine-tunes. ``ridge`` (default): the readout, solved exactly as ridge
        regression in the ``features.dim``-wide readout move of the joint map
        (:class:`fntk.bench.learner.RidgeLearner`; SevenNet models); each structure costs one
        design computation and every fit is then a small linear solve, so a 3-seed benchmark
        runs in under an hour on a laptop CPU. ``finetune``: Adam steps on ``finetune.scope``
        through the network (:func:`fntk.learn.finetune`), any model; about 4 s per step on a
        CPU, the choice on a GPU.
    finetune : FinetuneOptions
        One fine-tuning round (scope, steps, loss weights, early stopping); the ridge learner
        uses the loss weights and the E0 refit.
    features : JointNTKOptions
        The NTK settings of the feature methods, as ``fntk select`` nests them
        (:class:`fntk.features.JointNTKOptions`; ``--dim``, ``--group``, ``--batch-size``;
        ``basis``, ``reference`` and the others through ``--config``). The maps with force
        rows (``force-ntk``, ``joint``) take every field their options have, ``dim``
        included: every column costs one backward pass per structure (about 0.08 s per 14-atom
        periodic slab and 0.003 s per small molecule on one CPU thread; the default joint map
        has 16, :data:`fntk.features.options.DEFAULT_JOINT_MAP`).
        ``embedding`` and ``energy-ntk`` take only how the model runs (``batch_size``,
        ``max_batch_atoms``) and keep their map defaults otherwise (exact readout
        coordinates). ``dim`` and ``seed`` are also the ridge learner's readout move: with it,
        ``joint`` and ``force-ntk`` features are the learner's design rows, computed once. 128
        makes the readout exact for SevenNet-0: a learner with more capacity (on xtb-reactions
        with 300 labels: test force RMSE 387 meV/A at 128, 511 at 32, 637 at 16), at 4x the
        cost of 32. The run's ``device`` replaces ``features.device`` (which must stay
        ``auto`` or equal it; the models run in float32, so ``dtype`` must stay ``float32``)
        and ``joint_force_weight`` (or the loss weights) ``features.force_weight``, as
        ``fntk select``'s loss weights do.
    select : SelectOptions
        Precision, shortlist and batch selector of the feature methods
        (:class:`fntk.select.SelectOptions`, ``--selector``, ``--shortlist``,
        ``--relative-noise``, ``--cost-aware``); the defaults are ``fntk select``'s
        (``coverage``).
    joint_force_weight : float or None
        ``lambda`` of the joint map, Angstrom. ``None`` (default) matches the fine-tuning loss:
        ``lambda = sqrt(w_F / (3 N w_E))`` with ``N`` the median atom count of the initial set
        (``FinetuneOptions`` documents this correspondence).
    committee_size : int
        Members ``K`` of the committee; member 0 is the evaluated model of the round, members
        ``1 .. K-1`` are fine-tuned with other seeds (held-out slice and data order). Default 4.
    committee_aggregation : {"mean", "max"}
        How per-atom force disagreements make one score per structure: ``mean`` (default) over
        atoms is comparable across structure sizes; ``max`` finds single bad atoms.
    pool_shift : tuple of str
        Filters applied to the pool before the run (all must hold; :mod:`fntk.bench.shift`),
        e.g. ``element:Pt``, ``info:metal=Cu,Ag``, ``info:temperature_K<=600``. Default none.
    max_pool : int or None
        Keep a seeded random subset of at most this many pool structures (after the shift),
        the same for every seed. Default ``None`` (whole pool).
    energy_key, forces_key : str or None
        ``info``/``arrays`` keys of the reference labels; ``None``: the attached calculator.
    pick_tags : tuple of str
        ``info`` keys whose values the summary's picks-vs-pool table compares (e.g. ``kind``,
        ``adsorbate``). Default none (atom counts and forces are always compared).
    calibration_fraction : float
        Share of each round's labelled set held out to calibrate the predicted test force
        RMSE (:mod:`fntk.bench.estimates`; results.csv ``predicted_force_rmse_mev_per_ang``,
        ``force_rmse_spearman``) when the learner held none out itself (the ridge learner;
        the fine-tuning learner's early-stopping slice is used as it is). Default 0.2; 0
        turns the estimates off. Not part of the resume key: it changes no error of a round.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: tuple[MethodName, ...] = METHOD_NAMES  # type: ignore[assignment]
    n_seeds: int = Field(3, ge=1)
    rounds: int = Field(6, ge=0)
    batch: int = Field(10, ge=1)
    budgets: tuple[int, ...] = ()
    model: str = "sevennet-0"
    device: str = "auto"
    learner: LearnerName = "ridge"
    proxy_learner: Literal["ridge"] | None = None
    tail_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    finetune: FinetuneOptions = FinetuneOptions()
    features: JointNTKOptions = Field(default_factory=JointNTKOptions)
    select: SelectOptions = Field(default_factory=SelectOptions)
    joint_force_weight: float | None = Field(None, gt=0.0)
    committee_size: int = Field(4, ge=2)
    committee_aggregation: Aggregation = "mean"
    pool_shift: tuple[str, ...] = ()
    max_pool: int | None = Field(None, ge=1)
    energy_key: str | None = None
    forces_key: str | None = None
    pick_tags: tuple[str, ...] = ()
    calibration_fraction: float = Field(0.2, ge=0.0, lt=1.0)

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, data: Any) -> Any:
        return nest_flat_keys(data) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _run_settings(self) -> BenchOptions:
        if self.features.device not in ("auto", self.device):
            raise ValueError(
                f"features.device {self.features.device!r} differs from device {self.device!r}: "
                "set the device of the run (--device) only"
            )
        if self.features.dtype != "float32":
            raise ValueError("features.dtype: the benchmark's models run in float32")
        return self

    @field_validator("methods")
    @classmethod
    def _unique_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        if not methods:
            raise ValueError("at least one method is needed")
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods repeat: {', '.join(methods)}")
        return methods

    @field_validator("budgets")
    @classmethod
    def _increasing_budgets(cls, budgets: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= a for a, b in zip((0, *budgets), budgets)):
            raise ValueError(
                f"budgets must be positive and increasing (cumulative picks), got {budgets}"
            )
        return budgets

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Pool picks of each selection round: the steps of ``budgets``, or ``rounds`` x
        ``batch``."""
        if self.budgets:
            return tuple(b - a for a, b in zip((0, *self.budgets), self.budgets))
        return (self.batch,) * self.rounds

    @property
    def n_rounds(self) -> int:
        """Selection rounds (``len(budgets)`` or ``rounds``)."""
        return len(self.batch_sizes)

    @field_validator("pool_shift")
    @classmethod
    def _parse_shifts(cls, specs: tuple[str, ...]) -> tuple[str, ...]:
        from fntk.bench.shift import parse_pool_shift

        for spec in specs:
            parse_pool_shift(spec)
        return specs

    def resume_key(self) -> dict:
        """Options a resumed run must share with the run it continues (all but the extent).

        ``methods``, ``n_seeds`` and ``rounds`` may grow between runs; everything else changes
        what a finished round means (``budgets`` and ``proxy_learner`` included).
        """
        return self.model_dump(
            mode="json",
            exclude={
                "methods": True,
                "n_seeds": True,
                "rounds": True,
                "device": True,
                "pick_tags": True,
                "calibration_fraction": True,
                # replaced by the run's device and lambda (see the class docstring)
                "features": {"device", "force_weight"},
            },
        )

    @classmethod
    def stored_resume_key(cls, stored: object) -> object:
        """The :meth:`resume_key` of the options a ``state.json`` stored (``stored``), in
        today's shape: a key written before the feature and selection options were nested
        (``feature_dim``, ``selector``, ``shortlist_size``, ``relative_noise``) maps to the
        nested fields, with the defaults of the fields it did not record as they were then
        (:data:`FLAT_ERA_FEATURES`: the d = 32 sketch, whatever today's default map is).
        Anything that is not a valid key is returned as it is (it then differs)."""
        if not isinstance(stored, Mapping):
            return stored
        given = stored
        if "feature_dim" in stored:  # the flat shape: the joint map's default then was the sketch
            features = {**FLAT_ERA_FEATURES, **dict(stored.get("features") or {})}
            given = {**stored, "features": features}
        try:
            return cls.model_validate(given).resume_key()
        except ValueError:  # pydantic's ValidationError included
            return stored


FLAT_KEYS: dict[str, tuple[str, str]] = {
    "feature_dim": ("features", "dim"),
    "selector": ("select", "method"),
    "shortlist_size": ("select", "shortlist_size"),
    "relative_noise": ("select", "relative_noise"),
}
"""Fields of :class:`BenchOptions` before it nested ``features`` and ``select``, and where
each went: configs and ``state.json`` files written then still load."""
FLAT_ERA_FEATURES: dict[str, Any] = {"basis": "sketch", "reference": "builtin-v1"}
"""The joint map's basis and reference set while :data:`FLAT_KEYS` were written (the default
before the PCA basis): a ``state.json`` of that time resumes only as what it ran."""


def nest_flat_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the :data:`FLAT_KEYS` moved into ``features`` and ``select``.

    Raises
    ------
    ValueError
        A flat key and its nested field are both given.
    """
    out = dict(data)
    for flat, (group, field) in FLAT_KEYS.items():
        if flat not in out:
            continue
        nested = dict(out.get(group) or {})
        if field in nested:
            raise ValueError(f"{flat} and {group}.{field} are the same option: give one")
        nested[field] = out.pop(flat)
        out[group] = nested
    return out


MIN_TAIL_STRUCTURES = 5
"""Fewest structures a tail split (``tail_fraction``) may hold; smaller tails are not made."""

QUICK_PRESET: dict[str, object] = {
    "n_seeds": 1,
    "rounds": 1,
    "batch": 2,
    "max_pool": 8,
    "committee_size": 3,
    "features": {"dim": 8},
    "finetune": {"n_steps": 3, "batch_size": 4, "eval_every": 3},
}
"""What ``--quick`` changes: one seed, 1 round of 2 picks from at most 8 pool structures,
sketch width 8, 3 fine-tuning steps of 4 structures, 3 committee members."""


def build_bench_options(
    *, quick: bool = False, config: Mapping[str, Any] | None = None, **overrides: Any
) -> BenchOptions:
    """Options from defaults (or :data:`QUICK_PRESET`), then ``config``, then ``overrides``.

    Each layer changes only the fields it gives, inside ``features``, ``select`` and
    ``finetune`` too (``finetune={"scope": "all"}`` keeps the preset's steps).

    Parameters
    ----------
    quick : bool
        Start from :data:`QUICK_PRESET`: a run of a few CPU minutes.
    config : mapping or None
        Options read from a file (:func:`fntk.pipeline.read_config`).
    **overrides
        :class:`BenchOptions` fields; ``features``, ``select`` and ``finetune`` as mappings
        of the fields they change.

    Raises
    ------
    pydantic.ValidationError
        Unknown field or invalid value.
    """
    values: dict[str, Any] = {}
    for layer in (QUICK_PRESET if quick else {}, config or {}, overrides):
        for key, value in nest_flat_keys(layer).items():
            if key in _NESTED and isinstance(value, Mapping):
                value = {**_fields(values.get(key)), **value}
            values[key] = value
    return BenchOptions.model_validate(values)


_NESTED = ("features", "select", "finetune")
"""Fields of :class:`BenchOptions` that are options objects, merged field by field."""


def _fields(value: object) -> dict[str, Any]:
    """The fields of an options object, or of a mapping of them (``None``: none)."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    return dict(value) if isinstance(value, Mapping) else {}
