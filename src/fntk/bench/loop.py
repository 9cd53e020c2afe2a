"""The active-learning loop of the benchmark, resumable from the last finished round.

For every round ``r = 0 .. R``, seed and method: fine-tune the pretrained model on the labelled
set (initial structures + pool picks so far), evaluate it on every test split, then, unless
``r = R``, let the method pick the next batch from the unlabelled candidates. Round 0 holds the
initial set only, so its model is fitted once per seed and shared by all methods.

Resuming. ``results.csv`` holds a row per finished (round, method, seed, split) and
``state.json`` (written atomically after the rows) the picks of every run, round by round, with
their costs. A rerun in the same directory keeps the rows of the finished rounds (their
``finished_at`` does not change) and continues; it may ask for more rounds, seeds or methods.
When a finished last round must now select (more rounds asked for), its model is fitted again
(bit-identical on the CPU), but not evaluated again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from fntk.bench.checks import reference_energy_notes
from fntk.bench.estimates import RoundErrorEstimator, RoundEstimates
from fntk.bench.learner import FinetuneLearner, FittedModel, Learner, RidgeLearner
from fntk.bench.methods import (
    Acquisition,
    AcquisitionMethod,
    BenchPool,
    SelectionContext,
    build_method,
)
from fntk.bench.options import MIN_TAIL_STRUCTURES, BenchOptions
from fntk.bench.plots import plot_learning_curves
from fntk.bench.results import (
    PoolProfile,
    ResultRow,
    read_results,
    summary_markdown,
    tail_split_name,
    write_results,
)
from fntk.bench.shift import apply_pool_shifts
from fntk.errors import InputError
from fntk.io import atomic_write_text, iter_frames
from fntk.learn import LabelledSet

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
RESULTS_FILE = "results.csv"
PROXY_RESULTS_FILE = "proxy_results.csv"
SUMMARY_FILE = "summary.md"
PLOT_FILE = "learning_curves.png"
FEATURES_DIR = "features"
_STATE_VERSION = 1


@dataclass(frozen=True)
class BenchData:
    """Labelled inputs of a benchmark.

    Attributes
    ----------
    init : LabelledSet
        Labelled from the start.
    pool : LabelledSet
        Candidates; a label is read only once its structure is picked.
    tests : dict of str to LabelledSet
        Test splits by name.
    e0_reference : LabelledSet or None
        Reference structures of the per-element E0 fit.
    target : list of Atoms
        Unlabelled structures like those the user will simulate; the covering feature
        methods cover them instead of the pool (``fntk bench --target``). Empty: the pool.
    """

    init: LabelledSet
    pool: LabelledSet
    tests: dict[str, LabelledSet]
    e0_reference: LabelledSet | None = None
    target: list[Atoms] = field(default_factory=list)


@dataclass(frozen=True)
class BenchRun:
    """What a benchmark run produced.

    Attributes
    ----------
    rows : list of ResultRow
        Every row of ``results.csv``.
    summary : str
        Markdown of ``summary.md``.
    paths : dict of str to Path
        ``results``, ``state``, ``summary``, ``plot``.
    n_evaluated : int
        (round, method, seed) units evaluated by this call (0 when everything was done).
    """

    rows: list[ResultRow]
    summary: str
    paths: dict[str, Path]
    n_evaluated: int


@dataclass
class _RunState:
    """Progress of one (method, seed) run, as stored in ``state.json``."""

    evaluated: int = 0
    batches: list[list[int]] = field(default_factory=list)
    costs: list[dict[str, float]] = field(default_factory=list)


def load_bench_data(
    init: Sequence[str],
    pool: Sequence[str],
    tests: Mapping[str, Sequence[str]],
    *,
    e0_reference: Sequence[str] = (),
    options: BenchOptions | None = None,
    target: Sequence[str] = (),
) -> BenchData:
    """Read the labelled files of a benchmark (any format ASE reads), and the unlabelled
    ``target`` files.

    Raises
    ------
    InputError
        A file is missing or unreadable, a frame lacks labels, a target file holds no
        structure, or no test split is given.
    """
    options = options or BenchOptions()
    if not tests:
        raise InputError("no test split given", hint="pass --test NAME=FILE at least once")
    keys: dict[str, Any] = {"energy_key": options.energy_key, "forces_key": options.forces_key}
    return BenchData(
        init=LabelledSet.from_files(list(init), **keys),
        pool=LabelledSet.from_files(list(pool), **keys),
        tests={name: _test_set(name, paths, keys) for name, paths in tests.items()},
        e0_reference=LabelledSet.from_files(list(e0_reference)) if e0_reference else None,
        target=read_target(target),
    )


def read_target(files: Sequence[str]) -> list[Atoms]:
    """The validated structures of the target ``files`` (none for no files).

    Raises
    ------
    InputError
        A file is missing or unreadable, a frame is bad, or the files hold no structure.
    """
    if not files:
        return []
    structures = [atoms for _, _, atoms in iter_frames(list(files))]
    if not structures:
        raise InputError(
            "the target files hold no structure",
            file=", ".join(files),
            hint="pass files with structures like those you will simulate",
        )
    return structures


def _test_set(name: str, paths: Sequence[str], keys: dict[str, str | None]) -> LabelledSet:
    """A test split; energy-only files (RGD1) are admitted, their force metrics omitted."""
    split = LabelledSet.from_files(list(paths), require_forces=False, **keys)
    if not split.has_forces:
        logger.warning(
            "test split %s: some structures have no reference forces (energy only); "
            "force metrics count the others, and are NaN (omitted) when none has forces",
            name,
        )
    return split


def run_benchmark_files(
    init: Sequence[str],
    pool: Sequence[str],
    tests: Mapping[str, Sequence[str]],
    out_dir: str | os.PathLike,
    options: BenchOptions,
    *,
    e0_reference: Sequence[str] = (),
    target: Sequence[str] = (),
) -> BenchRun:
    """Read the files, load ``options.model`` and :func:`run_benchmark` with
    ``options.learner`` (and ``options.proxy_learner``); ``target``: see
    :attr:`BenchData.target`."""
    data = load_bench_data(
        init, pool, tests, e0_reference=e0_reference, options=options, target=target
    )
    for note in reference_energy_notes(data.init, data.pool, data.tests, data.e0_reference):
        logger.warning("%s", note)
    learner = _make_learner(options.learner, options, data, out_dir)
    proxy = (
        None
        if options.proxy_learner is None
        else _make_learner(options.proxy_learner, options, data, out_dir)
    )
    estimator = (
        RoundErrorEstimator(learner, options, data.init.structures)
        if options.calibration_fraction > 0
        else None
    )
    return run_benchmark(data, options, out_dir, learner, proxy=proxy, estimator=estimator)


def _make_learner(
    name: str, options: BenchOptions, data: BenchData, out_dir: str | os.PathLike
) -> Learner:
    """A learner on its own freshly loaded backend (a fine-tuning learner changes the weights
    of its backend, which a ridge learner's designs must not see)."""
    from fntk.models import load_backend

    backend = load_backend(options.model, device=options.device)
    if name == "ridge":
        return RidgeLearner(
            backend,
            options.finetune,
            options.features.dim,
            seed=options.features.seed,
            e0_reference=data.e0_reference,
            cache_dir=Path(out_dir) / FEATURES_DIR,
        )
    return FinetuneLearner(backend, options.finetune, data.e0_reference)


def with_tail_splits(tests: Mapping[str, LabelledSet], fraction: float) -> dict[str, LabelledSet]:
    """``tests`` and, after each split with forces, its tail split: the ``ceil(fraction * n)``
    structures with the largest atomic reference force norm (in split order), when that is at
    least :data:`~fntk.bench.options.MIN_TAIL_STRUCTURES`."""
    out: dict[str, LabelledSet] = {}
    for name, split in tests.items():
        out[name] = split
        n_tail = math.ceil(fraction * len(split))
        if not split.has_forces or n_tail < MIN_TAIL_STRUCTURES:
            continue
        largest = np.array([float(np.linalg.norm(f, axis=1).max()) for f in split.forces])
        tail = np.sort(np.argsort(-largest, kind="stable")[:n_tail])
        out[tail_split_name(name, fraction)] = split.subset(tail)
    return out


def select_candidates(pool: LabelledSet, options: BenchOptions) -> np.ndarray:
    """Pool indices in the run: those passing ``options.pool_shift``, then at most
    ``options.max_pool`` of them drawn with a fixed seed (the same for every run seed)."""
    candidates = apply_pool_shifts(
        pool.structures,
        options.pool_shift,
        file=pool.source_files[0] if pool.source_files else "<pool>",
        frame_indices=pool.frame_indices,
    )
    if options.max_pool is not None and len(candidates) > options.max_pool:
        rng = np.random.default_rng(np.random.SeedSequence(0))
        candidates = np.sort(rng.choice(candidates, size=options.max_pool, replace=False))
    return candidates


def run_benchmark(
    data: BenchData,
    options: BenchOptions,
    out_dir: str | os.PathLike,
    learner: Learner,
    *,
    methods: Mapping[str, AcquisitionMethod] | None = None,
    proxy: Learner | None = None,
    estimator: RoundErrorEstimator | None = None,
) -> BenchRun:
    """Run (or resume) the benchmark and write its files to ``out_dir``.

    Parameters
    ----------
    data : BenchData
    options : BenchOptions
    out_dir : path
        Created if missing. ``state.json`` there is resumed when it belongs to a run with the
        same :meth:`BenchOptions.resume_key` and the same structures.
    learner : Learner
        Fine-tunes, evaluates and predicts (:class:`FinetuneLearner` for real runs).
    methods : mapping of str to AcquisitionMethod or None
        Methods by name; default :func:`build_method` for each of ``options.methods``.
    proxy : Learner or None
        Fitted and evaluated on the same labelled sets as ``learner`` (rows in
        ``proxy_results.csv``; the summary compares the two judges' rankings).
    estimator : RoundErrorEstimator or None
        Predicts each evaluated model's test force RMSE (results.csv
        ``predicted_force_rmse_mev_per_ang``, ``force_rmse_spearman``); ``None``: NaN.

    Returns
    -------
    BenchRun

    Raises
    ------
    InputError
        The pool is too small for all picks, or ``out_dir`` holds a state of another run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    candidates = select_candidates(data.pool, options)
    n_picks = sum(options.batch_sizes)
    if n_picks > len(candidates):
        raise InputError(
            f"{options.n_rounds} rounds picking {n_picks} structures in all need {n_picks} "
            f"pool structures but only {len(candidates)} take part",
            hint="lower --rounds, --batch or --budgets, or loosen --pool-shift / --max-pool",
        )
    data = replace(data, tests=with_tail_splits(data.tests, options.tail_fraction))
    view = BenchPool(
        init=[a.copy() for a in data.init.structures],
        pool=[a.copy() for a in data.pool.structures],  # Atoms.copy drops the labels
        candidates=candidates,
        target=[a.copy() for a in data.target],
    )
    methods = dict(methods or {name: build_method(name, options) for name in options.methods})
    paths = {
        "results": out / RESULTS_FILE,
        "state": out / STATE_FILE,
        "summary": out / SUMMARY_FILE,
        "plot": out / PLOT_FILE,
    }
    if proxy is not None:
        paths["proxy_results"] = out / PROXY_RESULTS_FILE
    runner = _Runner(data, options, learner, methods, view, paths, proxy, estimator)
    n_evaluated = runner.run()
    rows = runner.rows
    e0_notes = reference_energy_notes(data.init, data.pool, data.tests, data.e0_reference)
    summary = summary_markdown(
        rows,
        notes=[*e0_notes, *runner.notes()],
        profile=pool_profile(data.pool, candidates, options.pick_tags),
        picks=runner.picks(),
        proxy_rows=runner.proxy_rows if proxy is not None else None,
        proxy_name=options.proxy_learner or "proxy",
    )
    atomic_write_text(paths["summary"], summary)
    plot_learning_curves(rows, paths["plot"])
    return BenchRun(rows=rows, summary=summary, paths=paths, n_evaluated=n_evaluated)


class _Runner:
    """Loop state of one call: stored progress, result rows and in-memory shared fits."""

    def __init__(
        self,
        data: BenchData,
        options: BenchOptions,
        learner: Learner,
        methods: dict[str, AcquisitionMethod],
        view: BenchPool,
        paths: dict[str, Path],
        proxy: Learner | None = None,
        estimator: RoundErrorEstimator | None = None,
    ) -> None:
        self.data = data
        self.proxy = proxy
        self.estimator = estimator
        self.round0_estimates: dict[int, RoundEstimates] = {}
        self.options = options
        self.learner = learner
        self.methods = methods
        self.view = view
        self.paths = paths
        self.fingerprint = view.fingerprint()
        self.runs, self.rows, self.proxy_rows = self._load()
        self.prepared: dict[str, float] = {}
        self.round0_models: dict[int, FittedModel] = {}
        self.round0_metrics: dict[int, tuple[dict, float]] = {}
        self.round0_proxy: dict[int, tuple[FittedModel, dict, float]] = {}
        self.status: list[str] = []

    def run(self) -> int:
        n_evaluated = 0
        for round_index in range(self.options.n_rounds + 1):
            for seed in range(self.options.n_seeds):
                for name, method in self.methods.items():
                    n_evaluated += self._unit(name, method, seed, round_index)
        return n_evaluated

    def picks(self) -> dict[str, list[int]]:
        """Pool indices picked by each method, over its seeds and rounds."""
        picks: dict[str, list[int]] = {name: [] for name in self.methods}
        for key, run in self.runs.items():
            name = key.rsplit("/", 1)[0]
            if name in picks:
                picks[name] += [i for batch in run.batches for i in batch]
        return picks

    def notes(self) -> list[str]:
        notes = []
        if self.options.pool_shift:
            notes.append(
                f"pool shift {' and '.join(self.options.pool_shift)}: {len(self.view.candidates)}"
                f" of {len(self.view.pool)} pool structures take part; compare the seed spread"
            )
        elif len(self.view.candidates) < len(self.view.pool):
            notes.append(f"{len(self.view.candidates)} of {len(self.view.pool)} pool structures")
        return notes + list(dict.fromkeys(self.status))

    def _unit(self, name: str, method: AcquisitionMethod, seed: int, round_index: int) -> int:
        """Fit, evaluate and select for one (method, seed, round); 1 if it evaluated."""
        run = self.runs.setdefault(_run_key(name, seed), _RunState())
        need_eval = round_index >= run.evaluated
        need_select = round_index < self.options.n_rounds and len(run.batches) <= round_index
        if not (need_eval or need_select):
            return 0
        labelled_pool = np.array(
            [i for batch in run.batches[:round_index] for i in batch], dtype=np.int64
        )
        labelled = _concat(self.data.init, self.data.pool.subset(labelled_pool))
        model = self._fit(seed, round_index, labelled)
        if need_eval:
            metrics, seconds_eval = self._evaluate(seed, round_index, model)
            estimates = self._estimate(seed, round_index, model, labelled)
            logger.info("round %d, %s, seed %d: evaluated", round_index, name, seed)
            costs = run.costs[round_index - 1] if round_index else {}
            self.rows.extend(
                _rows(
                    round_index,
                    len(labelled),
                    name,
                    seed,
                    model,
                    metrics,
                    seconds_eval,
                    costs,
                    estimates,
                )
            )
            if self.proxy is not None:
                proxy_model, proxy_metrics, proxy_eval = self._proxy(seed, round_index, labelled)
                self.proxy_rows.extend(
                    _rows(
                        round_index,
                        len(labelled),
                        name,
                        seed,
                        proxy_model,
                        proxy_metrics,
                        proxy_eval,
                        costs,
                    )
                )
            run.evaluated = round_index + 1
        if need_select:
            acquisition, seconds_prepare = self._acquire(
                name, method, seed, round_index, model, labelled, labelled_pool
            )
            run.batches.append([int(i) for i in acquisition.indices])
            run.costs.append(
                {
                    "seconds_features": acquisition.seconds_features + seconds_prepare,
                    "seconds_training": acquisition.seconds_training,
                    "seconds_select": acquisition.seconds_select,
                }
            )
            self.status.extend(f"{name}: {s}" for s in acquisition.status)
        write_results(self.paths["results"], self.rows)
        if self.proxy is not None:
            write_results(self.paths["proxy_results"], self.proxy_rows)
        self._save_state()
        return int(need_eval)

    def _fit(self, seed: int, round_index: int, labelled: LabelledSet) -> FittedModel:
        """The round's model; round 0 (initial set only) is fitted once per seed."""
        if round_index == 0 and seed in self.round0_models:
            return self.round0_models[seed]
        model = self.learner.fit(labelled, seed)
        if round_index == 0:
            self.round0_models[seed] = model
        return model

    def _proxy(
        self, seed: int, round_index: int, labelled: LabelledSet
    ) -> tuple[FittedModel, dict, float]:
        """The proxy learner's model of the same labelled set, its metrics and evaluation time;
        round 0 once per seed."""
        if round_index == 0 and seed in self.round0_proxy:
            return self.round0_proxy[seed]
        assert self.proxy is not None
        model = self.proxy.fit(labelled, seed)
        start = time.perf_counter()
        metrics = self.proxy.evaluate(model, self.data.tests)
        result = model, metrics, time.perf_counter() - start
        if round_index == 0:
            self.round0_proxy[seed] = result
        return result

    def _evaluate(self, seed: int, round_index: int, model: FittedModel) -> tuple[dict, float]:
        """Metrics of every split and the evaluation time (s); round 0 once per seed."""
        if round_index == 0 and seed in self.round0_metrics:
            return self.round0_metrics[seed]
        start = time.perf_counter()
        result = self.learner.evaluate(model, self.data.tests), time.perf_counter() - start
        if round_index == 0:
            self.round0_metrics[seed] = result
        return result

    def _estimate(
        self, seed: int, round_index: int, model: FittedModel, labelled: LabelledSet
    ) -> RoundEstimates | None:
        """Predicted test errors of the round's model (:mod:`fntk.bench.estimates`); round 0
        once per seed; ``None`` without an estimator."""
        if self.estimator is None:
            return None
        if round_index == 0 and seed in self.round0_estimates:
            return self.round0_estimates[seed]
        estimates = self.estimator.estimate(model, labelled, self.data.tests, seed)
        if estimates.note:
            self.status.append(estimates.note)
        if round_index == 0:
            self.round0_estimates[seed] = estimates
        return estimates

    def _acquire(
        self,
        name: str,
        method: AcquisitionMethod,
        seed: int,
        round_index: int,
        model: FittedModel,
        labelled: LabelledSet,
        labelled_pool: np.ndarray,
    ) -> tuple[Acquisition, float]:
        """The method's next batch and the one-off preparation cost charged to it.

        Preparation (pool features) is done once per call and charged to each seed's first
        acquisition, which is what a run with that seed alone would pay.
        """
        if name not in self.prepared:
            cache = self.paths["state"].parent / FEATURES_DIR
            self.prepared[name] = method.prepare(self.view, self.learner, cache)
        seconds_prepare = self.prepared[name] if round_index == 0 else 0.0
        taken = set(labelled_pool.tolist())
        unlabelled = np.array([i for i in self.view.candidates if i not in taken], dtype=np.int64)
        context = SelectionContext(
            learner=self.learner,
            model=model,
            labelled=labelled,
            labelled_pool=labelled_pool,
            candidates=unlabelled,
            seed=seed,
            round=round_index,
        )
        batch = self.options.batch_sizes[round_index]
        acquisition = method.acquire(context, batch)
        picks = set(acquisition.indices.tolist())
        if (
            len(acquisition.indices) != batch
            or len(picks) != len(acquisition.indices)
            or not picks <= set(unlabelled.tolist())
        ):
            raise RuntimeError(
                f"method {name} returned an invalid batch {acquisition.indices.tolist()}"
            )
        return acquisition, seconds_prepare

    def _load(self) -> tuple[dict[str, _RunState], list[ResultRow], list[ResultRow]]:
        """Stored progress, rows and proxy rows, consistent with each other; fresh when nothing
        is stored."""
        path = self.paths["state"]
        if not path.is_file():
            return {}, [], []
        stored = json.loads(path.read_text())
        expected = {
            "version": _STATE_VERSION,
            "options": self.options.resume_key(),
            "data": self.fingerprint,
            "tests": self._test_sizes(),
        }
        found = {k: stored.get(k) for k in expected}
        found["options"] = BenchOptions.stored_resume_key(found["options"])
        if found != expected:
            differ = ", ".join(k for k in expected if found[k] != expected[k])
            raise InputError(
                f"the output directory holds a benchmark with other {differ}",
                file=str(path),
                hint="choose another -o, or pass --overwrite to start over",
            )
        runs = {key: _RunState(**value) for key, value in stored["runs"].items()}
        rows = [r for r in read_results(self.paths["results"]) if _finished(r, runs)]
        for key, run in runs.items():
            done = {r.round for r in rows if _run_key(r.method, r.seed) == key}
            run.evaluated = next(r for r in range(len(done) + 1) if r not in done)
        rows = [r for r in rows if _finished(r, runs)]
        proxy_rows = []
        if "proxy_results" in self.paths:
            proxy_rows = [
                r for r in read_results(self.paths["proxy_results"]) if _finished(r, runs)
            ]
        logger.info("resuming %s: %d result rows kept", path.parent, len(rows))
        return runs, rows, proxy_rows

    def _test_sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.data.tests.items()}

    def _save_state(self) -> None:
        state = {
            "version": _STATE_VERSION,
            "options": self.options.resume_key(),
            "run_options": self.options.model_dump(mode="json"),
            "data": self.fingerprint,
            "tests": self._test_sizes(),
            "candidates": [int(i) for i in self.view.candidates],
            "runs": {
                key: {"evaluated": run.evaluated, "batches": run.batches, "costs": run.costs}
                for key, run in self.runs.items()
            },
        }
        atomic_write_text(self.paths["state"], json.dumps(state, indent=1) + "\n")


def pool_profile(pool: LabelledSet, candidates: np.ndarray, tags: Sequence[str]) -> PoolProfile:
    """Atom counts, largest atomic reference force and named ``info`` tags of the pool."""
    return PoolProfile(
        n_atoms=np.asarray(pool.n_atoms, dtype=np.int64),
        max_force=np.array(
            [float(np.linalg.norm(f, axis=1).max(initial=0.0)) for f in pool.forces]
        ),
        tags={t: [str(a.info.get(t, "-")) for a in pool.structures] for t in tags},
        candidates=np.asarray(candidates, dtype=np.int64),
    )


def _run_key(method: str, seed: int) -> str:
    return f"{method}/{seed}"


def _finished(row: ResultRow, runs: Mapping[str, _RunState]) -> bool:
    run = runs.get(_run_key(row.method, row.seed))
    return run is not None and row.round < run.evaluated


def _concat(first: LabelledSet, second: LabelledSet) -> LabelledSet:
    """Structures of ``first`` followed by those of ``second``."""
    return LabelledSet(
        structures=[*first.structures, *second.structures],
        energies=np.concatenate([first.energies, second.energies]),
        forces=[*first.forces, *second.forces],
        source_files=[*first.source_files, *second.source_files],
        frame_indices=[*first.frame_indices, *second.frame_indices],
    )


def _rows(
    round_index: int,
    n_labels: int,
    method: str,
    seed: int,
    model: FittedModel,
    metrics: dict,
    seconds_evaluate: float,
    costs: Mapping[str, float],
    estimates: RoundEstimates | None = None,
) -> list[ResultRow]:
    finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return [
        ResultRow(
            round=round_index,
            n_labels=n_labels,
            method=method,
            seed=seed,
            split=split,
            n_structures=m.n_structures,
            energy_mae_mev_per_atom=m.energy_mae_mev_per_atom,
            energy_rmse_mev_per_atom=m.energy_rmse_mev_per_atom,
            force_mae_mev_per_ang=m.force_mae_mev_per_ang,
            force_rmse_mev_per_ang=m.force_rmse_mev_per_ang,
            seconds_finetune=model.seconds,
            seconds_evaluate=seconds_evaluate,
            seconds_features=costs.get("seconds_features", 0.0),
            seconds_training=costs.get("seconds_training", 0.0),
            seconds_select=costs.get("seconds_select", 0.0),
            n_steps_run=model.n_steps_run,
            finished_at=finished_at,
            n_steps_kept=model.n_steps_run if model.n_steps_kept is None else model.n_steps_kept,
            **_estimate_columns(estimates, split),
        )
        for split, m in metrics.items()
    ]


def _estimate_columns(estimates: RoundEstimates | None, split: str) -> dict[str, float]:
    """The predicted-error columns of a split's row (NaN and no cost without estimates)."""
    if estimates is None:
        return {}
    found = estimates.splits.get(split)
    return {
        "predicted_force_rmse_mev_per_ang": np.nan
        if found is None
        else found.predicted_force_rmse_mev_per_ang,
        "force_rmse_spearman": np.nan if found is None else found.force_rmse_spearman,
        "seconds_estimates": estimates.seconds,
    }
