"""The main job: pool (and training set) in, batch to label out (``fntk select``).

Structures are streamed from files (:mod:`fntk.io`), turned into feature blocks by one
pretrained model (:mod:`fntk.features`), scored and selected (:mod:`fntk.select`). Each stage is
a function over chunks (DESIGN.md section 1). With a store (``options.execution``, like the
engine), features go through a feature store (:mod:`fntk.pipeline.featurize`): finished
chunks are reused, so a killed run resumes and the next round computes only new files. With
``workers`` or a ``scheduler`` the features and the
scoring run on a Dask cluster (:mod:`fntk.parallel`, stages in :mod:`fntk.pipeline.stages`),
with the same picks: both run the same stages (:mod:`fntk.pipeline.stages`) through the
engine protocol (:mod:`fntk.engine`). The input files are read twice: the scan of
:mod:`fntk.pipeline.preflight` (validation, counts, fingerprints, the reference atom count, the
picks-vs-pool profile, byte offsets) and the features; the picked geometries are then fetched
by byte offset (XYZ files) or, for other formats, by reading each file that holds a pick up to
its last picked frame; ``run.json`` says how many passes ran (``pool_passes``). Selectors that
use only a seeded uniform sample of the pool (``coverage``, ``random``), without a feature
store, featurise only that sample: the scan already knows which structures it holds
(:func:`~fntk.select.uniform_sample`), and the picks are those of the whole-pool pass. No pool
structure is featurised twice: the picks' blocks and the stopping signal's pool sample come
from the pass. Memory stays flat in the pool size: only per-structure bookkeeping of a few
numbers is kept. Writing the outputs is :mod:`fntk.pipeline.outputs`.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from ase import Atoms

from fntk import __version__
from fntk.chunk import FeatureChunk
from fntk.engine import Engine, InProcess, ModelSource
from fntk.errors import InputError
from fntk.features.registry import (
    build_feature_map,
    load_backend_for,
    weighs_force_rows,
)
from fntk.io import iter_frames, read_frame_at
from fntk.models import ModelBackend
from fntk.pipeline.featurize import ChunkFeaturizer, open_store, subset_structures
from fntk.pipeline.options import RunOptions, joint_weight_at
from fntk.pipeline.preflight import REFERENCE_SAMPLE, InputScan, scan_inputs
from fntk.pipeline.stages import FeatureTask, PoolTask, feature_stage, pool_stage
from fntk.pipeline.uncertainty import ERROR_SAMPLE, pool_error_signal
from fntk.report.plots import structure_summaries
from fntk.report.selection import PlotData
from fntk.select import SelectionResult, Selector, Shortlist, ShortlistMerge, uniform_sample

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, advance, total)``: called as work finishes; the CLI draws bars from it."""


@dataclass
class SelectRun:
    """Outcome of :func:`run_selection`.

    ``picked`` holds copies of the picked structures (unchanged geometry) with ``fntk_rank``,
    ``fntk_score``, ``fntk_posterior_variance``, ``fntk_source_file`` and ``fntk_source_index``
    in ``info``; ``shortlist`` one row per shortlisted candidate (what scores.csv holds).
    """

    picked: list[Atoms]
    result: SelectionResult
    shortlist: list[dict[str, object]]
    timings_s: dict[str, float]
    n_pool: int
    n_train: int
    excluded_duplicates: list[dict[str, object]]
    pool_duplicates: list[dict[str, object]]
    options: RunOptions
    model_spec: str
    files: dict[str, list[str]] = field(default_factory=dict)
    plot_data: PlotData | None = None
    skipped_unsupported: list[dict[str, object]] = field(default_factory=list)
    feature_status: list[str] = field(default_factory=list)
    store: dict[str, object] | None = None
    pool_passes: dict[str, int] = field(default_factory=dict)
    stopping_signal: dict[str, object] | None = None

    def with_picks_and_signal(
        self, picked_summaries: np.ndarray, stopping_signal: dict[str, object] | None
    ) -> SelectRun:
        """This record with the picks' plot summaries and the stopping signal added."""
        plot_data = (
            None
            if self.plot_data is None
            else replace(self.plot_data, picked_summaries=picked_summaries)
        )
        return replace(self, plot_data=plot_data, stopping_signal=stopping_signal)

    def run_record(self) -> dict[str, object]:
        """The content of run.json: options, model, versions, timings, counts, notes."""
        import torch

        return {
            "fntk_version": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "model": self.model_spec,
            "options": json.loads(self.options.model_dump_json()),
            "inputs": self.files,
            "n_pool": self.n_pool,
            "n_train": self.n_train,
            "n_picked": len(self.picked),
            "excluded_train_duplicates": self.excluded_duplicates,
            "excluded_pool_duplicates": self.pool_duplicates,
            "skipped_unsupported": self.skipped_unsupported,
            "timings_s": self.timings_s,
            "notes": self.feature_status + list(self.result.status),
            "kernel": self.result.kernel,
            "mode": self.result.mode,
            "sigma": self.result.sigma,
            "store": self.store,
            "pool_passes": self.pool_passes,
            "stopping_signal": self.stopping_signal,
        }


PLOT_SAMPLE = 2000
"""Most pool structures whose summaries are kept for the projection plot."""


def run_selection(
    pool: Sequence[str],
    train: Sequence[str] = (),
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    backend: ModelBackend | None = None,
    engine: Engine | None = None,
    scan: InputScan | None = None,
) -> SelectRun:
    """Pick ``options.n`` structures of the ``pool`` files to label next.

    Parameters
    ----------
    pool, train : sequence of str
        Structure files (any ASE format, globs allowed). ``train`` may be empty (P mode).
    options : RunOptions
        Model, feature map, selector, chunking, seed, ``target`` (files a covering selector
        covers instead of the pool; the whole pool is then featurised) and execution:
        ``options.execution.store``
        (feature store directory, created if absent: pool and training features are read from
        it where present and intact, computed into it otherwise); ``workers`` (run the
        features and the scoring on a local Dask cluster of this many worker processes, one
        torch thread each; :mod:`fntk.parallel`; 0: in this process); ``scheduler`` (address
        of a running Dask scheduler, ``tcp://host:8786``, to use instead: its workers need
        fntk and load ``options.model`` themselves, and the store, if any, must be on a file
        system they share). Picks are the same as in one process, for any worker count.
    progress : callable, optional
        ``progress(stage, advance, total)`` callback for progress bars.
    backend : ModelBackend, optional
        An already loaded model (must match ``options.model``); loaded from the spec otherwise.
    engine : Engine, optional
        Runs the stages of the pool pass (:mod:`fntk.engine`) instead of this process or Dask;
        the job does not close it.
    scan : InputScan, optional
        The first read of these inputs (:func:`~fntk.pipeline.preflight.scan_inputs`), when the
        caller has made it already (with the same options); made here otherwise.

    Raises
    ------
    InputError
        Bad input, ``n`` larger than the pool's new structures, a ``store`` made with another
        model, weights, feature options or chunk size (the message lists the differences), or
        ``options.target`` with a selector that does not cover a set.
    """
    options = options or RunOptions()
    report = progress or _no_progress
    timings: dict[str, float] = {}
    scan = scan or scan_inputs(pool, train, options)
    # The pool, not the growing training set, fixes N: lambda (and so a feature store) stays the
    # same from one active-learning round to the next.
    options = joint_weight_at(options, scan.reference_n_atoms)
    with _timed(timings, "load_model"):
        backend = backend or load_backend_for(options.model, options.features)
        featurizer = _featurizer(backend, options, options.execution.store)
    if not options.skip_unsupported:
        scan.check_species(backend.species)  # before any featurisation
    execution = options.execution
    with _timed(timings, "start_cluster", enabled=bool(execution.workers or execution.scheduler)):
        own_engine = engine is None
        engine = engine or open_engine(backend, options)
    try:
        with _timed(timings, "train_features_and_precision"):
            train_chunks = _features(engine, featurizer, scan.train_files, scan.n_train, report)
            selector = Selector.from_options(options.select).fit(train_chunks)
        target_sample = None
        if scan.target_files:
            with _timed(timings, "target_features"):
                target_sample = _target_sample(engine, featurizer, scan, selector, options, report)
        summaries: list[np.ndarray] = []
        outcome = _select_pool(
            engine, featurizer, scan, selector, options, summaries, timings, report, target_sample
        )
    finally:
        if own_engine:
            engine.close()
    result = outcome.result
    with _timed(timings, "collect_picked"):
        picked, passes = _collect_picked(scan, result)
    passes["pool_structures_featurised"] = outcome.n_featurised
    picked_features = outcome.blocks_of(result.indices) if picked else None
    with _timed(timings, "stopping_signal"):
        stopping = pool_error_signal(
            backend,
            options.features,
            train_chunks,
            picked_features,
            outcome.signal_sample,
            scan.calibration,
        )
        if stopping is not None:
            stopping["sample"] = outcome.signal_note
    picked_summaries = (
        np.zeros((0, 0)) if picked_features is None else structure_summaries(picked_features)
    )
    run = _selection_run(
        scan, featurizer, options, result, picked, train_chunks, summaries, timings, passes
    )
    run.feature_status.extend(outcome.notes)
    return run.with_picks_and_signal(picked_summaries, stopping)


def _no_progress(stage: str, advance: int, total: int | None) -> None:
    pass


@contextmanager
def _timed(timings: dict[str, float], stage: str, *, enabled: bool = True) -> Iterator[None]:
    """Add the wall seconds of the block to ``timings[stage]`` (when ``enabled``)."""
    start = time.perf_counter()
    yield
    if enabled:
        timings[stage] = time.perf_counter() - start


def _featurizer(
    backend: ModelBackend, options: RunOptions, store: str | Path | None
) -> ChunkFeaturizer:
    feature_store = (
        None if store is None else open_store(store, backend, options.features, options.chunk_size)
    )
    return ChunkFeaturizer(
        backend,
        options.features,
        options.chunk_size,
        feature_store,
        skip_unsupported=options.skip_unsupported,
    )


def open_engine(backend: ModelBackend, options: RunOptions) -> Engine:
    """The engine of the pool pass: this process, or a Dask cluster (``options.execution``:
    ``workers`` local worker processes, or the running ``scheduler``) whose workers load
    ``backend``'s weights."""
    workers, scheduler = options.execution.workers, options.execution.scheduler
    if not (workers or scheduler):
        return InProcess(backend)
    from fntk.parallel import DaskEngine

    source = ModelSource.of(backend, options.features)
    return DaskEngine(source, workers=workers, scheduler=scheduler)


def _features(
    engine: Engine,
    featurizer: ChunkFeaturizer,
    files: list[str],
    n_structures: int,
    report: Progress,
    split: str = "train",
) -> list[FeatureChunk]:
    """Features of the structures of ``files`` (training or target) the model supports, made
    by ``engine``."""
    if not files:
        return []
    stage_name = f"{split} features"
    report(stage_name, 0, n_structures)
    sizes: list[int] = []

    def tasks() -> Iterator[FeatureTask]:
        for read, supported, where in featurizer.stored_chunks(files, split):
            sizes.append(len(supported))
            yield FeatureTask(subset_structures(read, supported), where)

    stage = partial(feature_stage, options=featurizer.options, store=featurizer.store)
    chunks = []
    for featured in engine.map_chunks(stage, tasks()):
        featurizer.count(featured.computed)
        chunks.append(featured.features)
        report(stage_name, sizes.pop(0), None)  # tasks() runs a window ahead
    featurizer.finish_sources()
    return chunks


def _target_sample(
    engine: Engine,
    featurizer: ChunkFeaturizer,
    scan: InputScan,
    selector: Selector,
    options: RunOptions,
    report: Progress,
) -> Shortlist:
    """The uniform sample of ``M`` target structures a covering selector covers."""
    chunks = _features(engine, featurizer, scan.target_files, scan.n_target, report, "target")
    n_features = build_feature_map(featurizer.options).n_features(featurizer.backend)
    try:
        return selector.target_sample(chunks, n_features, options.n, options.seed)
    except ValueError as error:  # every target structure skipped as unsupported
        raise InputError(
            str(error), file=", ".join(scan.target_files), hint="pass structures the model knows"
        ) from None


@dataclass
class PoolPass:
    """What the pool pass leaves: the picks, the shortlists they came from, the stopping
    signal's pool sample (blocks computed in the pass) and notes for run.json.

    Attributes
    ----------
    result : SelectionResult
    shortlists : list of Shortlist
        One per ranking (:meth:`fntk.select.Selector.pool_scorers`); the picks are among them.
    signal_sample : FeatureChunk or None
        The stopping signal's pool sample (None: no new pool structure).
    signal_note : str
        Which sample that is.
    n_featurised : int
        Pool structures whose features the pass computed or read back.
    notes : list of str
    """

    result: SelectionResult
    shortlists: list[Shortlist]
    signal_sample: FeatureChunk | None
    signal_note: str
    n_featurised: int
    notes: list[str]

    def blocks_of(self, indices: np.ndarray) -> FeatureChunk:
        """The blocks of the shortlisted pool structures with source ``indices``, in order."""
        chunk = FeatureChunk.concatenate([s.chunk for s in self.shortlists])
        position = {int(i): p for p, i in enumerate(chunk.source_index)}
        return chunk.subset([position[int(i)] for i in indices])


def feature_sample(
    scan: InputScan, featurizer: ChunkFeaturizer, selector: Selector, options: RunOptions
) -> tuple[np.ndarray, int] | None:
    """Which pool structures the selector can use, when that is known before the pass: the
    uniform sample of ``M`` new, supported structures of a sample-only selector
    (:meth:`fntk.select.Selector.sample_only`), as a bool mask of shape (n_pool,), and the
    number of new, supported structures. None: the whole pool is featurised (other selectors,
    target structures, and a feature store, which keeps every chunk for later rounds)."""
    key = selector.shortlist_key(options.seed)
    if key is None or featurizer.store is not None:
        return None
    if not selector.sample_only(target=bool(scan.target_files)):
        return None
    species = featurizer.backend.species if featurizer.skip_unsupported else None
    admitted = np.flatnonzero(np.asarray(scan.new, dtype=bool) & scan.supported(species))
    size = selector.options.resolved_shortlist_size(options.n)
    mask = np.zeros(scan.n_pool, dtype=bool)
    mask[uniform_sample(admitted, key, size)] = True
    return mask, len(admitted)


def _select_pool(
    engine: Engine,
    featurizer: ChunkFeaturizer,
    scan: InputScan,
    selector: Selector,
    options: RunOptions,
    summaries: list[np.ndarray],
    timings: dict[str, float],
    report: Progress,
    target: Shortlist | None = None,
) -> PoolPass:
    """The pool pass (read -> features -> score on ``engine``, merge here), then the batch
    selector on the merged shortlists. Appends the sampled plot summaries to ``summaries``
    and the stage timings (seconds on this process; feature and scoring seconds summed over
    workers) to ``timings``."""
    n_features = build_feature_map(featurizer.options).n_features(featurizer.backend)
    scorers = selector.pool_scorers(n_features, options.seed, target)
    size = selector.options.resolved_shortlist_size(options.n)
    merges = [ShortlistMerge(size) for _ in scorers]
    planned = feature_sample(scan, featurizer, selector, options)
    # Selectors with a uniform sample take the stopping signal's sample from it; the others
    # keep the blocks of every signal_stride-th pool structure as they stream.
    uniform = scorers[0].random_key is not None
    tasks = _PoolTasks(featurizer, scan, None if planned is None else planned[0], uniform, merges)
    report("pool features + scoring", 0, scan.n_pool)
    stage = partial(pool_stage, options=featurizer.options, store=featurizer.store, scorers=scorers)
    seconds = dict.fromkeys(("pool_features", "pool_scoring", "shortlist_merge"), 0.0)
    kept: list[FeatureChunk] = []
    with _timed(timings, "pool_features_and_scoring"):
        for scored in engine.map_chunks(stage, tasks.iterate(report)):
            tick = time.perf_counter()
            featurizer.count(scored.computed)
            seconds["pool_features"] += scored.feature_s
            seconds["pool_scoring"] += scored.scoring_s
            if scored.summaries.size:
                summaries.append(scored.summaries)
            for merge, scores in zip(merges, scored.scores):
                merge.offer(scores)
            if scored.kept.n_structures:
                kept.append(scored.kept)
            seconds["shortlist_merge"] += time.perf_counter() - tick
            report("pool features + scoring", scored.n_read, None)
        featurizer.finish_sources()
    timings.update(seconds)
    with _timed(timings, "selection"):
        shortlists = [merge.shortlist(n_features) for merge in merges]
        result = selector.select_shortlists(
            shortlists, scorers[0].precision, options.n, options.seed, target
        )
    signal_sample, signal_note = _signal_sample(
        shortlists[0] if uniform else None, kept, tasks.signal_stride
    )
    notes = []
    if planned is not None:
        notes.append(
            f"featurised only the uniform sample of {tasks.n_featurised} of {planned[1]} new "
            f"pool structures: {selector.options.method} uses nothing else (with --store every "
            "structure is featurised, for later rounds)"
        )
    return PoolPass(result, shortlists, signal_sample, signal_note, tasks.n_featurised, notes)


class _PoolTasks:
    """The pool pass's tasks: each stored or read chunk of new, supported (and, with a
    ``sample`` mask, sampled) pool structures, with the rows to plot, to keep for the stopping
    signal (every ``signal_stride``-th structure, unless ``uniform``) and the merges' current
    bars. Counts the structures it hands out (``n_featurised``)."""

    def __init__(
        self,
        featurizer: ChunkFeaturizer,
        scan: InputScan,
        sample: np.ndarray | None,
        uniform: bool,
        merges: list[ShortlistMerge],
    ) -> None:
        self.featurizer, self.scan, self.sample, self.merges = featurizer, scan, sample, merges
        self.uniform = uniform
        self.plot_stride = max(1, -(-scan.n_pool // PLOT_SAMPLE))  # ceil: <= PLOT_SAMPLE kept
        self.signal_stride = max(1, -(-scan.n_pool // ERROR_SAMPLE))
        self.n_featurised = 0

    def iterate(self, report: Progress) -> Iterator[PoolTask]:
        """The tasks, lazily (a chunk is read when the engine asks for the next one)."""
        scan, sample = self.scan, self.sample
        for read, supported, where in self.featurizer.stored_chunks(scan.pool_files, "pool"):
            indices = read.global_indices[supported]
            keep = [p for p, index in enumerate(indices.tolist()) if scan.new[index]]
            if sample is None:
                chunk = subset_structures(read, supported)
            else:  # featurise only the sampled structures
                keep = [p for p in keep if sample[indices[p]]]
                if not keep:
                    report("pool features + scoring", len(read), None)
                    continue
                chunk = subset_structures(read, [supported[p] for p in keep])
                keep = list(range(len(keep)))
            self.n_featurised += len(chunk)
            kept_indices = chunk.global_indices[keep]
            if sample is None:
                plotted = kept_indices % self.plot_stride == 0
            else:
                plotted = np.ones(len(keep), bool)
            signal = []
            if not self.uniform:
                signal = np.flatnonzero(kept_indices % self.signal_stride == 0).tolist()
            bars = tuple(merge.bar() for merge in self.merges)
            yield PoolTask(
                chunk, where, keep, np.flatnonzero(plotted).tolist(), bars, len(read), signal
            )


def _signal_sample(
    uniform_shortlist: Shortlist | None, kept: list[FeatureChunk], signal_stride: int
) -> tuple[FeatureChunk | None, str]:
    """The stopping signal's pool sample and what it is: the head of the uniform-key shortlist
    (a uniform sample too) for selectors with a uniform sample, else the blocks the pass kept
    (every ``signal_stride``-th new structure). None when it holds no structure."""
    sample: FeatureChunk | None
    if uniform_shortlist is not None:
        first = uniform_shortlist.chunk  # in uniform-key order: its head is a uniform sample
        sample = first.subset(np.arange(min(ERROR_SAMPLE, first.n_structures)))
        note = (
            f"the first {sample.n_structures} structures of the selector's seeded "
            f"uniform pool sample (features from the pool pass)"
        )
    else:
        sample = FeatureChunk.concatenate(kept) if kept else None
        note = f"every {signal_stride}-th new pool structure (features kept in the pool pass)"
    if sample is not None and not sample.n_structures:
        sample = None
    return sample, note


def _selection_run(
    scan: InputScan,
    featurizer: ChunkFeaturizer,
    options: RunOptions,
    result: SelectionResult,
    picked: list[Atoms],
    train_chunks: list[FeatureChunk],
    summaries: list[np.ndarray],
    timings: dict[str, float],
    passes: dict[str, int],
) -> SelectRun:
    """The record of a finished run (structures the model skipped are not counted or listed)."""
    backend, store = featurizer.backend, featurizer.store
    skipped = {(s["source_file"], s["source_index"]) for s in featurizer.skipped}

    def kept(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [r for r in rows if (r["source_file"], r["source_index"]) not in skipped]

    n_skipped_pool = sum(s["split"] == "pool" for s in featurizer.skipped)
    plot_data = PlotData(
        train_summaries=_stack([structure_summaries(c) for c in train_chunks]),
        pool_summaries=_stack(summaries),
        picked_summaries=np.zeros((0, 0)),  # run_selection adds the picks' (computed once)
        pool_element_counts=scan.element_counts,
        pool_sizes=np.asarray(scan.profile.n_atoms, dtype=np.int64),
        pool_profile=scan.profile,
    )
    return SelectRun(
        picked=picked,
        result=result,
        shortlist=_shortlist_rows(scan, result),
        timings_s=timings,
        n_pool=scan.n_pool - n_skipped_pool,
        n_train=sum(c.n_structures for c in train_chunks),
        excluded_duplicates=kept(scan.train_copies),
        pool_duplicates=kept(scan.pool_repeats),
        options=options,
        model_spec=backend.spec,
        files={
            "pool": scan.pool_files,
            "train": scan.train_files,
            **({"target": scan.target_files} if scan.target_files else {}),
        },
        plot_data=plot_data,
        skipped_unsupported=featurizer.skipped,
        feature_status=[build_feature_map(options.features).describe(backend)],
        store=None
        if store is None
        else {
            "directory": str(store.directory),
            "computed_chunks": featurizer.computed_chunks,
            "reused_chunks": featurizer.reused_chunks,
        },
        pool_passes=passes,
    )


def _read_pool_structures(
    scan: InputScan, indices: list[int]
) -> tuple[list[Atoms], dict[str, dict[int, Atoms]]]:
    """The pool structures at ``indices``, in that order, and the files reread for them.

    A frame with a byte offset is read alone (:func:`fntk.io.read_frame_at`); for the other
    formats each file holding one is read up to its last wanted frame. Validation is not
    repeated: these frames passed it in the scan.
    """
    rereads: dict[str, dict[int, Atoms]] = {}
    for index in indices:
        file, frame = scan.source(index)
        if scan.offset_of[index] is None:
            rereads.setdefault(file, {})[frame] = Atoms()
    for file, frames in rereads.items():
        for _, frame, atoms in iter_frames([file], index=f":{max(frames) + 1}", min_distance=0.0):
            if frame in frames:
                frames[frame] = atoms
    structures = []
    for index in indices:
        file, frame = scan.source(index)
        offset = scan.offset_of[index]
        structures.append(rereads[file][frame] if offset is None else read_frame_at(file, offset))
    return structures, rereads


def _stack(summaries: list[np.ndarray]) -> np.ndarray:
    nonempty = [s for s in summaries if len(s)]
    return np.concatenate(nonempty) if nonempty else np.zeros((0, 0))


def _collect_picked(scan: InputScan, result: SelectionResult) -> tuple[list[Atoms], dict[str, int]]:
    """Copies of the picked structures, in pick order, and how they were read
    (:func:`_read_pool_structures`)."""
    pv_of = dict(
        zip(result.shortlist.source_index.tolist(), result.shortlist.posterior_variance.tolist())
    )
    indices = result.indices.tolist()
    structures, rereads = _read_pool_structures(scan, indices)
    picked: list[Atoms] = []
    for rank, (index, atoms) in enumerate(zip(indices, structures)):
        file, frame = scan.source(index)
        copy = atoms.copy()
        copy.calc = atoms.calc
        copy.info.update(
            fntk_rank=rank,
            fntk_score=float(result.scores[rank]),
            fntk_posterior_variance=float(pv_of.get(index, np.nan)),
            fntk_source_file=file,
            fntk_source_index=frame,
        )
        picked.append(copy)
    n_offsets = sum(scan.offset_of[i] is not None for i in indices)
    passes = {  # the scan and the feature pass each read every input file once
        "full_reads": 2,
        "picks_read_by_offset": n_offsets,
        "files_reread_for_picks": len(rereads),
    }
    return picked, passes


def _shortlist_rows(scan: InputScan, result: SelectionResult) -> list[dict[str, object]]:
    rank_of = {int(index): rank for rank, index in enumerate(result.indices)}
    rows: list[dict[str, object]] = []
    order = np.argsort(-result.shortlist.posterior_variance, kind="stable")
    for position in order:
        index = int(result.shortlist.source_index[position])
        rank = rank_of.get(index)
        file, frame = scan.source(index)
        rows.append(
            {
                "rank": "" if rank is None else rank,
                "source_file": file,
                "source_index": frame,
                "pool_index": index,
                "n_atoms": scan.profile.n_atoms[index],
                "posterior_variance": f"{result.shortlist.posterior_variance[position]:.8g}",
                "picked": "yes" if rank is not None else "no",
                "score": "" if rank is None else f"{result.scores[rank]:.8g}",
            }
        )
    return rows


def reference_atom_count(files: Sequence[str]) -> float:
    """Mean atom count of the first :data:`~fntk.pipeline.preflight.REFERENCE_SAMPLE`
    structures of ``files``."""
    from itertools import islice

    counts = [len(atoms) for _, _, atoms in islice(iter_frames(files), REFERENCE_SAMPLE)]
    return float(np.mean(counts)) if counts else 1.0


def with_loss_weights(options: RunOptions, reference_files: Sequence[str]) -> RunOptions:
    """``options`` whose joint map's lambda is derived from the loss weights at the mean atom
    count of ``reference_files`` (:func:`joint_weight_at`)."""
    if not _weighs_force_rows(options):
        return options
    return joint_weight_at(options, reference_atom_count(reference_files))


def _weighs_force_rows(options: RunOptions) -> bool:
    """Whether the feature map has energy and force rows (and so a force-row weight lambda)."""
    return weighs_force_rows(options.features.name)
