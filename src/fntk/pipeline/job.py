"""The main job: pool (and training set) in, batch to label out (``fntk select``).

Structures are streamed from files (:mod:`fntk.io`), turned into feature blocks by one
pretrained model (:mod:`fntk.features`), scored and selected (:mod:`fntk.select`). Each stage is
a function over chunks (DESIGN.md section 1). With ``store``, features go through a feature
store (:mod:`fntk.pipeline.featurize`): finished chunks are reused, so a killed run resumes and
the next round computes only new files. With ``workers`` or ``scheduler`` the features and the
scoring run on a Dask cluster (:mod:`fntk.parallel`, stages in :mod:`fntk.pipeline.stages`),
with the same picks. The pool files are read twice and a half: a count pass that validates
every frame (so a bad frame fails before any featurisation; it also sets the progress total and
checks ``n``), the features, and the picked geometries (only the files holding a pick, each up
to its last picked frame). Memory stays flat in the pool size: only per-structure bookkeeping
of a few numbers is kept. Writing the outputs is :mod:`fntk.pipeline.outputs`.
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from ase import Atoms

from fntk import __version__
from fntk.chunk import FeatureChunk
from fntk.engine import Engine, InProcess, ModelSource
from fntk.errors import InputError
from fntk.features.options import force_row_weight
from fntk.features.registry import build_feature_map, compute_features, load_backend_for
from fntk.io import StructureChunk, expand_paths, iter_frames, structure_fingerprint
from fntk.models import ModelBackend
from fntk.pipeline.featurize import ChunkFeaturizer, open_store, subset_structures
from fntk.pipeline.options import RunOptions
from fntk.pipeline.stages import FeatureTask, PoolTask, feature_stage, pool_stage
from fntk.report.plots import structure_summaries
from fntk.report.profile import StructureProfile
from fntk.report.selection import PlotData
from fntk.select import SelectionResult, Selector, ShortlistMerge

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
        }


PLOT_SAMPLE = 2000
"""Most pool structures whose summaries are kept for the projection plot."""


@dataclass
class _PoolBook:
    """Per-structure bookkeeping of the pool: a few numbers each, never the geometry."""

    files: list[str] = field(default_factory=list)
    file_of: list[int] = field(default_factory=list)
    frame_of: list[int] = field(default_factory=list)
    profile: StructureProfile = field(default_factory=StructureProfile)
    """Atom counts, largest reference forces and tags (the report's picks-vs-pool table)."""
    element_counts: Counter[int] = field(default_factory=Counter)
    sample_summaries: list[np.ndarray] = field(default_factory=list)


def run_selection(
    pool: Sequence[str],
    train: Sequence[str] = (),
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    backend: ModelBackend | None = None,
    store: str | Path | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    engine: Engine | None = None,
) -> SelectRun:
    """Pick ``options.n`` structures of the ``pool`` files to label next.

    Parameters
    ----------
    pool, train : sequence of str
        Structure files (any ASE format, globs allowed). ``train`` may be empty (P mode).
    options : RunOptions
        Model, feature map, selector, chunking and seed.
    progress : callable, optional
        ``progress(stage, advance, total)`` callback for progress bars.
    backend : ModelBackend, optional
        An already loaded model (must match ``options.model``); loaded from the spec otherwise.
    store : path, optional
        Feature store directory (created if absent): pool and training features are read from
        it where present and intact, computed into it otherwise.
    workers : int
        Run the features and the scoring on a local Dask cluster of this many worker
        processes (one torch thread each; :mod:`fntk.parallel`). 0: in this process.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead; its workers
        need fntk and load ``options.model`` themselves, and ``store`` (if any) must be on a
        file system they share. Picks are the same as in one process, for any worker count.
    engine : Engine, optional
        Runs the stages of the pool pass (:mod:`fntk.engine`) instead of this process or Dask;
        the job does not close it.

    Raises
    ------
    InputError
        Bad input, ``n`` larger than the pool, or a ``store`` made with another model, weights,
        feature options or chunk size (the message lists the differences).
    """
    options = options or RunOptions()
    report = progress or (lambda stage, advance, total: None)
    timings: dict[str, float] = {}
    pool_files = expand_paths(pool)
    train_files = expand_paths(train) if train else []
    # The pool, not the growing training set, fixes N: lambda (and so a feature store) stays the
    # same from one active-learning round to the next.
    options = with_loss_weights(options, pool_files)

    start = time.perf_counter()
    backend = backend or load_backend_for(options.model, options.features)
    feature_store = (
        None if store is None else open_store(store, backend, options.features, options.chunk_size)
    )
    featurizer = ChunkFeaturizer(
        backend,
        options.features,
        options.chunk_size,
        feature_store,
        skip_unsupported=options.skip_unsupported,
    )
    timings["load_model"] = time.perf_counter() - start

    # The count pass validates every frame (cheap next to the model), so a bad frame late in
    # the pool stops the job before any featurisation.
    species = None if options.skip_unsupported else backend.species
    n_pool_frames = validated_count(pool_files, species)
    if options.n > n_pool_frames:
        raise InputError(
            f"asked for n={options.n} but the pool holds only {n_pool_frames} structures",
            file=", ".join(pool_files),
            hint="lower -n or add pool files",
        )
    n_train_frames = validated_count(train_files, species) if train_files else 0

    start = time.perf_counter()
    own_engine = engine is None
    engine = engine or open_engine(backend, options, workers, scheduler)
    if workers or scheduler:
        timings["start_cluster"] = time.perf_counter() - start
    try:
        start = time.perf_counter()
        train_fingerprints: set[str] = set()
        train_chunks: list[FeatureChunk] = []
        n_train = 0
        if train_files:
            report("train features", 0, n_train_frames)
            for chunk, features in _train_features(engine, featurizer, train_files):
                train_fingerprints.update(structure_fingerprint(a) for a in chunk.structures)
                train_chunks.append(features)
                n_train += len(chunk)
                report("train features", len(chunk), None)
        selector = Selector.from_options(options.select).fit(train_chunks)
        timings["train_features_and_precision"] = time.perf_counter() - start

        book = _PoolBook()
        admit = _PoolAdmission(book, train_fingerprints, n_pool_frames)
        report("pool features + scoring", 0, n_pool_frames)
        result = _select_pool(
            engine, featurizer, pool_files, selector, admit, options, timings, report
        )
    finally:
        if own_engine:
            engine.close()

    start = time.perf_counter()
    picked = _collect_picked(book, result)
    timings["collect_picked"] = time.perf_counter() - start
    plot_data = PlotData(
        train_summaries=_stack([structure_summaries(c) for c in train_chunks]),
        pool_summaries=_stack(book.sample_summaries),
        picked_summaries=structure_summaries(
            compute_features(backend, picked, options.features, np.arange(len(picked)))
        )
        if picked
        else np.zeros((0, 0)),
        pool_element_counts=book.element_counts,
        pool_sizes=np.asarray(book.profile.n_atoms, dtype=np.int64),
        pool_profile=book.profile,
    )
    return SelectRun(
        picked=picked,
        result=result,
        shortlist=_shortlist_rows(book, result),
        timings_s=timings,
        n_pool=len(book.profile.n_atoms),
        n_train=n_train,
        excluded_duplicates=admit.excluded,
        pool_duplicates=admit.pool_duplicates,
        options=options,
        model_spec=backend.spec,
        files={"pool": pool_files, "train": train_files},
        plot_data=plot_data,
        skipped_unsupported=featurizer.skipped,
        feature_status=[build_feature_map(options.features).describe(backend)],
        store=None
        if feature_store is None
        else {
            "directory": str(feature_store.directory),
            "computed_chunks": featurizer.computed_chunks,
            "reused_chunks": featurizer.reused_chunks,
        },
    )


def _record(book: _PoolBook, file: str, frame: int, atoms: Atoms) -> None:
    if not book.files or book.files[-1] != file:
        book.files.append(file)
    book.file_of.append(len(book.files) - 1)
    book.frame_of.append(frame)
    book.profile.add(atoms)
    book.element_counts.update(set(atoms.numbers.tolist()))


class _PoolAdmission:
    """Client-side bookkeeping of each pool chunk as it is read: which structures are scored.

    Structures that repeat a training structure or an earlier pool structure are excluded (and
    listed); every structure's provenance and profile go into the book; every ``stride``-th
    source index is sampled for the projection plot.
    """

    def __init__(self, book: _PoolBook, train_fingerprints: set[str], n_pool: int) -> None:
        self.book = book
        self.train_fingerprints = train_fingerprints
        self.stride = max(1, -(-n_pool // PLOT_SAMPLE))  # ceil: at most PLOT_SAMPLE kept
        self.excluded: list[dict[str, object]] = []
        self.pool_duplicates: list[dict[str, object]] = []
        self.first_of: dict[str, dict[str, object]] = {}  # fingerprint -> first occurrence

    def __call__(self, chunk: StructureChunk, supported: list[int]) -> tuple[list[int], list[int]]:
        """Positions in ``supported`` to score, and positions among those to sample."""
        position = {j: p for p, j in enumerate(supported)}
        keep = []
        for j, atoms in enumerate(chunk.structures):
            file, frame = chunk.source_files[j], chunk.frame_indices[j]
            if j not in position:
                pass  # skipped (unsupported elements), listed by the featurizer
            elif (fingerprint := structure_fingerprint(atoms)) in self.train_fingerprints:
                self.excluded.append({"source_file": file, "source_index": frame})
            elif fingerprint in self.first_of:
                self.pool_duplicates.append(
                    {
                        "source_file": file,
                        "source_index": frame,
                        "copy_of": self.first_of[fingerprint],
                    }
                )
            else:
                self.first_of[fingerprint] = {"source_file": file, "source_index": frame}
                keep.append(position[j])
            _record(self.book, file, frame, atoms)
        indices = chunk.global_indices[supported][keep] if keep else np.zeros(0, dtype=np.int64)
        sampled = np.flatnonzero(indices % self.stride == 0).tolist()
        return keep, sampled


def open_engine(
    backend: ModelBackend, options: RunOptions, workers: int, scheduler: str | None
) -> Engine:
    """The engine of the pool pass: this process, or a Dask cluster (``workers`` local worker
    processes, or the running ``scheduler``) whose workers load ``backend``'s weights."""
    if not (workers or scheduler):
        return InProcess(backend)
    from fntk.parallel import DaskEngine

    source = ModelSource.of(backend, options.features)
    return DaskEngine(source, workers=workers, scheduler=scheduler)


def _train_features(
    engine: Engine, featurizer: ChunkFeaturizer, files: Sequence[str]
) -> Iterator[tuple[StructureChunk, FeatureChunk]]:
    """Each training chunk (supported structures) and its features, made by ``engine``."""
    chunks: list[StructureChunk] = []

    def tasks() -> Iterator[FeatureTask]:
        for read, supported, where in featurizer.stored_chunks(files, "train"):
            chunks.append(subset_structures(read, supported))
            yield FeatureTask(chunks[-1], where)

    stage = partial(feature_stage, options=featurizer.options, store=featurizer.store)
    for featured in engine.map_chunks(stage, tasks()):
        featurizer.count(featured.computed)
        yield chunks.pop(0), featured.features
    featurizer.finish_sources()


def _select_pool(
    engine: Engine,
    featurizer: ChunkFeaturizer,
    pool_files: list[str],
    selector: Selector,
    admit: _PoolAdmission,
    options: RunOptions,
    timings: dict[str, float],
    report: Progress,
) -> SelectionResult:
    """The pool pass (read -> features -> score on ``engine``, merge here), then the batch
    selector on the merged shortlist. Adds the stage timings (seconds on this process;
    feature and scoring seconds summed over workers) to ``timings``."""
    if options.n == 0:
        return selector.select(iter(()), n=0, random_state=options.seed)
    n_features = build_feature_map(featurizer.options).n_features(featurizer.backend)
    scorer = selector.scorer(n_features, selector.shortlist_key(options.seed))
    merge = ShortlistMerge(selector.options.resolved_shortlist_size(options.n))

    def tasks() -> Iterator[PoolTask]:
        for read, supported, where in featurizer.stored_chunks(pool_files, "pool"):
            keep, sampled = admit(read, supported)
            chunk = subset_structures(read, supported)
            yield PoolTask(chunk, where, keep, sampled, merge.bar(), len(read))

    stage = partial(pool_stage, options=featurizer.options, store=featurizer.store, scorer=scorer)
    start = time.perf_counter()
    feature_s = scoring_s = merge_s = 0.0
    for scored in engine.map_chunks(stage, tasks()):
        tick = time.perf_counter()
        featurizer.count(scored.computed)
        feature_s, scoring_s = feature_s + scored.feature_s, scoring_s + scored.scoring_s
        if scored.summaries.size:
            admit.book.sample_summaries.append(scored.summaries)
        merge.offer(scored.scores)
        merge_s += time.perf_counter() - tick
        report("pool features + scoring", scored.n_read, None)
    featurizer.finish_sources()
    timings["pool_features_and_scoring"] = time.perf_counter() - start
    timings["pool_features"] = feature_s
    timings["pool_scoring"] = scoring_s
    timings["shortlist_merge"] = merge_s
    start = time.perf_counter()
    shortlist = merge.shortlist(n_features)
    result = selector.select_shortlist(shortlist, scorer.precision, options.n, options.seed)
    timings["selection"] = time.perf_counter() - start
    return result


def validated_count(files: Sequence[str], species: frozenset[int] | None) -> int:
    """Number of frames of ``files``, each read and validated (:func:`fntk.io.iter_frames`).

    Raises
    ------
    InputError
        At the first bad frame (or, with ``species``, an element the model lacks).
    """
    return sum(1 for _ in iter_frames(files, species=species))


def _stack(summaries: list[np.ndarray]) -> np.ndarray:
    nonempty = [s for s in summaries if len(s)]
    return np.concatenate(nonempty) if nonempty else np.zeros((0, 0))


def _collect_picked(book: _PoolBook, result: SelectionResult) -> list[Atoms]:
    """Copies of the picked structures, in pick order, fetched by file and frame index.

    Only the files that hold a pick are read, each up to its last picked frame (validation is
    not repeated: these frames passed it while being featurised).
    """
    pv_of = dict(
        zip(result.shortlist.source_index.tolist(), result.shortlist.posterior_variance.tolist())
    )
    wanted: dict[int, dict[int, int]] = {}
    for rank, index in enumerate(result.indices.tolist()):
        wanted.setdefault(book.file_of[index], {})[book.frame_of[index]] = rank
    picked: list[Atoms | None] = [None] * len(result.indices)
    for file_id in sorted(wanted):
        frames = wanted[file_id]
        last = max(frames)
        file = book.files[file_id]
        for _, frame, atoms in iter_frames([file], index=f":{last + 1}", min_distance=0.0):
            if frame not in frames:
                continue
            rank = frames[frame]
            index = int(result.indices[rank])
            copy = atoms.copy()
            copy.calc = atoms.calc
            copy.info.update(
                fntk_rank=rank,
                fntk_score=float(result.scores[rank]),
                fntk_posterior_variance=float(pv_of.get(index, np.nan)),
                fntk_source_file=file,
                fntk_source_index=frame,
            )
            picked[rank] = copy
    return [a for a in picked if a is not None]


def _shortlist_rows(book: _PoolBook, result: SelectionResult) -> list[dict[str, object]]:
    rank_of = {int(index): rank for rank, index in enumerate(result.indices)}
    rows: list[dict[str, object]] = []
    order = np.argsort(-result.shortlist.posterior_variance, kind="stable")
    for position in order:
        index = int(result.shortlist.source_index[position])
        rank = rank_of.get(index)
        rows.append(
            {
                "rank": "" if rank is None else rank,
                "source_file": book.files[book.file_of[index]],
                "source_index": book.frame_of[index],
                "pool_index": index,
                "n_atoms": book.profile.n_atoms[index],
                "posterior_variance": f"{result.shortlist.posterior_variance[position]:.8g}",
                "picked": "yes" if rank is not None else "no",
                "score": "" if rank is None else f"{result.scores[rank]:.8g}",
            }
        )
    return rows


REFERENCE_SAMPLE = 1000
"""Most structures :func:`reference_atom_count` reads (the first ones, in file order)."""


def reference_atom_count(files: Sequence[str]) -> float:
    """Mean atom count of the first :data:`REFERENCE_SAMPLE` structures of ``files``."""
    from itertools import islice

    from fntk.io import iter_frames

    counts = [len(atoms) for _, _, atoms in islice(iter_frames(files), REFERENCE_SAMPLE)]
    return float(np.mean(counts)) if counts else 1.0


def with_loss_weights(options: RunOptions, reference_files: Sequence[str]) -> RunOptions:
    """``options`` whose joint map's lambda is derived from the loss weights.

    lambda = :func:`~fntk.features.options.force_row_weight` of ``options.energy_weight`` and
    ``options.forces_weight`` at the mean atom count of ``reference_files`` (``fntk select``: the
    pool); other maps are returned unchanged.
    """
    if options.features.name != "joint":
        return options
    n_atoms = reference_atom_count(reference_files)
    weight = force_row_weight(options.energy_weight, options.forces_weight, n_atoms)
    features = options.features.model_copy(update={"force_weight": weight})
    return options.model_copy(update={"features": features})
