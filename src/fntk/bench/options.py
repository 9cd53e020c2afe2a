"""Options of the active-learning benchmark: one validated pydantic model, defaults with units.

:class:`BenchOptions` holds every knob of a benchmark run (rounds, batch, methods, seeds,
fine-tuning, selection, committee, pool shift). The method names are written once, in
:data:`MethodName`; the method registry in :mod:`fntk.bench.methods` and the CLI choices use it.
:func:`build_bench_options` adds the ``--quick`` preset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fntk.features.options import JointNTKOptions
from fntk.learn import FinetuneOptions
from fntk.select import SelectOptions, SelectorName

_SELECT_DEFAULTS = SelectOptions()

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
        regression in the ``feature_dim``-wide readout move of the joint map
        (:class:`fntk.bench.learner.RidgeLearner`; SevenNet models); each structure costs one
        design computation and every fit is then a small linear solve, so a 3-seed benchmark
        runs in under an hour on a laptop CPU. ``finetune``: Adam steps on ``finetune.scope``
        through the network (:func:`fntk.learn.finetune`), any model; about 4 s per step on a
        CPU, the choice on a GPU.
    finetune : FinetuneOptions
        One fine-tuning round (scope, steps, loss weights, early stopping); the ridge learner
        uses the loss weights and the E0 refit.
    selector : SelectorName
        Batch selector of the feature methods (:class:`fntk.select.Selector`); the default is
        :class:`~fntk.select.SelectOptions`'s (``coverage``), the one ``fntk select`` ships.
    shortlist_size : int or None
        Posterior-variance shortlist of the feature methods; ``None``: the selector's default.
    relative_noise : float
        Noise variance of the feature methods' posterior relative to the feature scale
        (:class:`fntk.select.SelectOptions`; the ``sigma`` knob). Default 1e-6.
    feature_dim : int
        Sketch width ``d`` of the maps with force rows (``force-ntk``, ``joint``) and of the
        ridge learner's readout move. Every column costs one backward pass per structure
        (about 2.7 s per 14-atom periodic slab at the default 32 on one CPU thread, 0.09 s
        per small molecule); with the ridge learner, ``joint`` and ``force-ntk`` features are
        the learner's design rows, computed once. ``embedding`` and ``energy-ntk`` keep their
        map defaults (exact readout coordinates). 128 makes the readout exact for SevenNet-0:
        a learner with more capacity (on xtb-reactions with 300 labels: test force RMSE 387
        meV/A at 128, 511 at 32, 637 at 16), at 4x the cost of 32.
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
    selector: SelectorName = _SELECT_DEFAULTS.method
    shortlist_size: int | None = Field(None, ge=1)
    relative_noise: float = Field(_SELECT_DEFAULTS.relative_noise, gt=0.0)
    feature_dim: int = Field(JointNTKOptions.model_fields["dim"].default, ge=1)
    joint_force_weight: float | None = Field(None, gt=0.0)
    committee_size: int = Field(4, ge=2)
    committee_aggregation: Aggregation = "mean"
    pool_shift: tuple[str, ...] = ()
    max_pool: int | None = Field(None, ge=1)
    energy_key: str | None = None
    forces_key: str | None = None
    pick_tags: tuple[str, ...] = ()
    calibration_fraction: float = Field(0.2, ge=0.0, lt=1.0)

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
                "methods",
                "n_seeds",
                "rounds",
                "device",
                "pick_tags",
                "calibration_fraction",
            },
        )


MIN_TAIL_STRUCTURES = 5
"""Fewest structures a tail split (``tail_fraction``) may hold; smaller tails are not made."""

QUICK_PRESET: dict[str, object] = {
    "n_seeds": 1,
    "rounds": 1,
    "batch": 2,
    "max_pool": 8,
    "committee_size": 3,
    "feature_dim": 8,
    "finetune": {"n_steps": 3, "batch_size": 4, "eval_every": 3},
}
"""What ``--quick`` changes: one seed, 1 round of 2 picks from at most 8 pool structures,
sketch width 8, 3 fine-tuning steps of 4 structures, 3 committee members."""


def build_bench_options(
    *, quick: bool = False, finetune: Mapping[str, object] | None = None, **overrides: object
) -> BenchOptions:
    """Options from defaults (or :data:`QUICK_PRESET`), then ``overrides`` (validated).

    Parameters
    ----------
    quick : bool
        Start from :data:`QUICK_PRESET`: a run of a few CPU minutes.
    finetune : mapping or None
        Fields of :class:`~fntk.learn.FinetuneOptions` changed on top of the preset's.
    **overrides
        Other :class:`BenchOptions` fields.

    Raises
    ------
    pydantic.ValidationError
        Unknown field or invalid value.
    """
    values: dict[str, object] = dict(QUICK_PRESET) if quick else {}
    preset: Any = values.pop("finetune", {})
    tuning = {**dict(preset), **dict(finetune or {})}
    values.update(overrides)
    values["finetune"] = FinetuneOptions(**tuning)
    return BenchOptions(**values)
