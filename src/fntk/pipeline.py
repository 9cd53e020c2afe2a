"""The main job: pool (and training set) in, batch to label out (``fntk select``).

Wiring only: structures are streamed from files (:mod:`fntk.io`), turned into feature blocks by
one pretrained model (:mod:`fntk.features`), scored and selected (:mod:`fntk.select`), and the
picks are written with their scores (:mod:`fntk.report`). Each stage is a function over chunks
(DESIGN.md section 1). Memory stays flat in the pool size: the pool is read twice (features,
then the picked geometries), and only per-structure bookkeeping of a few numbers is kept.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from fntk import __version__
from fntk.errors import InputError
from fntk.features import (
    FeatureChunk,
    FeatureMapOptions,
    build_feature_map,
    compute_features,
    default_options,
)
from fntk.features.pipeline import load_backend_for
from fntk.io import (
    atomic_write_text,
    expand_paths,
    iter_chunks,
    structure_fingerprint,
    write_extxyz,
)
from fntk.io.read import StructureChunk
from fntk.models import ModelBackend
from fntk.report.plots import structure_summaries
from fntk.select import SelectionResult, SelectOptions, Selector

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, advance, total)``: called as work finishes; the CLI draws bars from it."""


class RunOptions(BaseModel):
    """Everything a selection run depends on, besides its input files (stored in run.json)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(100, ge=0, description="Number of structures to pick.")
    model: str = Field("sevennet-0", description="Model spec (see fntk.models.load_backend).")
    features: FeatureMapOptions = Field(default_factory=lambda: default_options("joint"))
    select: SelectOptions = Field(default_factory=SelectOptions)
    chunk_size: int = Field(256, ge=1, description="Structures read and featurised at a time.")
    seed: int = Field(0, ge=0, description="Seed of the random choices in selection.")


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
    options: RunOptions
    model_spec: str
    files: dict[str, list[str]] = field(default_factory=dict)
    plot_data: PlotData | None = None
    feature_status: list[str] = field(default_factory=list)

    def run_record(self) -> dict[str, object]:
        """The content of run.json: options, model, versions, timings, counts, status."""
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
            "timings_s": self.timings_s,
            "status": self.feature_status + list(self.result.status),
            "kernel": self.result.kernel,
            "mode": self.result.mode,
            "sigma": self.result.sigma,
        }


@dataclass
class PlotData:
    """What the report plots need, in memory independent of the pool size.

    ``*_summaries`` are :func:`fntk.report.plots.structure_summaries` of the training set, of a
    deterministic subsample of at most ``PLOT_SAMPLE`` pool structures, and of the picks.
    """

    train_summaries: np.ndarray
    pool_summaries: np.ndarray
    picked_summaries: np.ndarray
    pool_element_counts: Counter[int]
    pool_sizes: np.ndarray


PLOT_SAMPLE = 2000


@dataclass
class _PoolBook:
    """Per-structure bookkeeping of the pool: a few numbers each, never the geometry."""

    files: list[str] = field(default_factory=list)
    file_of: list[int] = field(default_factory=list)
    frame_of: list[int] = field(default_factory=list)
    n_atoms: list[int] = field(default_factory=list)
    element_counts: Counter[int] = field(default_factory=Counter)
    sample_summaries: list[np.ndarray] = field(default_factory=list)


def run_selection(
    pool: Sequence[str],
    train: Sequence[str] = (),
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    backend: ModelBackend | None = None,
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
    """
    options = options or RunOptions()
    report = progress or (lambda stage, advance, total: None)
    timings: dict[str, float] = {}
    pool_files = expand_paths(pool)
    train_files = expand_paths(train) if train else []

    start = time.perf_counter()
    backend = backend or load_backend_for(options.model, options.features)
    timings["load_model"] = time.perf_counter() - start

    from fntk.io import count_frames

    n_pool_frames = count_frames(pool_files)
    if options.n > n_pool_frames:
        raise InputError(
            f"asked for n={options.n} but the pool holds only {n_pool_frames} structures",
            file=", ".join(pool_files),
            hint="lower -n or add pool files",
        )

    start = time.perf_counter()
    train_fingerprints: set[str] = set()
    train_chunks: list[FeatureChunk] = []
    n_train = 0
    if train_files:
        report("train features", 0, count_frames(train_files))
        for chunk in iter_chunks(train_files, options.chunk_size, species=backend.species):
            train_fingerprints.update(structure_fingerprint(a) for a in chunk.structures)
            train_chunks.append(_featurise(backend, chunk, options.features))
            n_train += len(chunk)
            report("train features", len(chunk), None)
    selector = Selector.from_options(options.select).fit(train_chunks)
    timings["train_features_and_precision"] = time.perf_counter() - start

    book = _PoolBook()
    excluded: list[dict[str, object]] = []
    feature_seconds = [0.0]
    sample_stride = max(1, n_pool_frames // PLOT_SAMPLE)
    report("pool features + scoring", 0, n_pool_frames)

    def pool_chunks() -> Iterator[FeatureChunk]:
        for chunk in iter_chunks(pool_files, options.chunk_size, species=backend.species):
            keep = []
            for j, atoms in enumerate(chunk.structures):
                file, frame = chunk.source_files[j], chunk.frame_indices[j]
                if structure_fingerprint(atoms) in train_fingerprints:
                    excluded.append({"source_file": file, "source_index": frame})
                else:
                    keep.append(j)
                _record(book, file, frame, atoms)
            tick = time.perf_counter()
            if keep:
                features = _featurise(backend, _subset(chunk, keep), options.features)
                sampled = np.flatnonzero(features.source_index % sample_stride == 0)
                book.sample_summaries.append(structure_summaries(features.subset(sampled)))
                yield features
            feature_seconds[0] += time.perf_counter() - tick
            report("pool features + scoring", len(chunk), None)

    start = time.perf_counter()
    result = selector.select(pool_chunks(), n=options.n, random_state=options.seed)
    total = time.perf_counter() - start
    timings["pool_features"] = feature_seconds[0]
    timings["scoring_and_selection"] = total - feature_seconds[0]

    start = time.perf_counter()
    picked = _collect_picked(pool_files, options.chunk_size, result)
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
        pool_sizes=np.asarray(book.n_atoms, dtype=np.int64),
    )
    return SelectRun(
        picked=picked,
        result=result,
        shortlist=_shortlist_rows(book, result),
        timings_s=timings,
        n_pool=len(book.n_atoms),
        n_train=n_train,
        excluded_duplicates=excluded,
        options=options,
        model_spec=backend.spec,
        files={"pool": pool_files, "train": train_files},
        plot_data=plot_data,
        feature_status=[build_feature_map(options.features).describe(backend)],
    )


def write_outputs(run: SelectRun, out_dir: str | Path, *, report: bool = True) -> dict[str, Path]:
    """Write selected.xyz, scores.csv, run.json and (optionally) report.html with its PNGs."""
    out = Path(out_dir)
    protected = run.files.get("pool", []) + run.files.get("train", [])
    paths = {
        "selected": out / "selected.xyz",
        "scores": out / "scores.csv",
        "run": out / "run.json",
    }
    write_extxyz(paths["selected"], run.picked, protected=protected)
    buffer = io.StringIO()
    columns = ["rank", "source_file", "source_index", "pool_index", "n_atoms"]
    columns += ["posterior_variance", "picked", "score"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.shortlist)
    atomic_write_text(paths["scores"], buffer.getvalue())
    atomic_write_text(paths["run"], json.dumps(run.run_record(), indent=2, default=str) + "\n")
    if report:
        from fntk.report.selection import write_selection_report

        paths.update(write_selection_report(run, out))
    return paths


def _featurise(
    backend: ModelBackend, chunk: StructureChunk, options: FeatureMapOptions
) -> FeatureChunk:
    return compute_features(backend, chunk.structures, options, chunk.global_indices)


def _subset(chunk: StructureChunk, keep: list[int]) -> StructureChunk:
    return StructureChunk(
        structures=[chunk.structures[j] for j in keep],
        source_files=[chunk.source_files[j] for j in keep],
        frame_indices=[chunk.frame_indices[j] for j in keep],
        global_indices=chunk.global_indices[keep],
    )


def _record(book: _PoolBook, file: str, frame: int, atoms: Atoms) -> None:
    if not book.files or book.files[-1] != file:
        book.files.append(file)
    book.file_of.append(len(book.files) - 1)
    book.frame_of.append(frame)
    book.n_atoms.append(len(atoms))
    book.element_counts.update(set(atoms.numbers.tolist()))


def _stack(summaries: list[np.ndarray]) -> np.ndarray:
    nonempty = [s for s in summaries if len(s)]
    return np.concatenate(nonempty) if nonempty else np.zeros((0, 0))


def _collect_picked(
    pool_files: Sequence[str], chunk_size: int, result: SelectionResult
) -> list[Atoms]:
    """Second pass over the pool files: copies of the picked structures, in pick order.

    The running index of :func:`fntk.io.iter_chunks` over the same files is the source index the
    features carried, so no per-structure lookup table is needed.
    """
    rank_of = {int(index): rank for rank, index in enumerate(result.indices)}
    pv_of = dict(
        zip(result.shortlist.source_index.tolist(), result.shortlist.posterior_variance.tolist())
    )
    picked: list[Atoms | None] = [None] * len(rank_of)
    for chunk in iter_chunks(pool_files, chunk_size, min_distance=0.0):
        for j, index in enumerate(chunk.global_indices.tolist()):
            rank = rank_of.get(index)
            if rank is None:
                continue
            atoms = chunk.structures[j]
            copy = atoms.copy()
            copy.calc = atoms.calc
            copy.info.update(
                fntk_rank=rank,
                fntk_score=float(result.scores[rank]),
                fntk_posterior_variance=float(pv_of.get(index, np.nan)),
                fntk_source_file=chunk.source_files[j],
                fntk_source_index=chunk.frame_indices[j],
            )
            picked[rank] = copy
    return [a for a in picked if a is not None]


def _shortlist_rows(book: _PoolBook, result: SelectionResult) -> list[dict[str, object]]:
    rank_of = {int(index): rank for rank, index in enumerate(result.indices)}
    rows = []
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
                "n_atoms": book.n_atoms[index],
                "posterior_variance": f"{result.shortlist.posterior_variance[position]:.8g}",
                "picked": "yes" if rank is not None else "no",
                "score": "" if rank is None else f"{result.scores[rank]:.8g}",
            }
        )
    return rows


def run_and_write(
    pool: Sequence[str],
    train: Sequence[str],
    out_dir: str | Path,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    report: bool = True,
) -> tuple[SelectRun, dict[str, Path]]:
    """Run the selection and write every output to ``out_dir`` (``fntk select``'s body)."""
    run = run_selection(pool, train, options, progress=progress)
    return run, write_outputs(run, out_dir, report=report)


def build_run_options(
    *,
    n: int = 100,
    features: str = "joint",
    selector: str = "lcmd",
    model: str = "sevennet-0",
    group: str = "readout",
    dim: int | None = None,
    shortlist: int | None = None,
    chunk_size: int = 256,
    batch_size: int = 8,
    cost_aware: bool = False,
    seed: int = 0,
    device: str = "auto",
) -> RunOptions:
    """Validated options from command-line style arguments (errors name the bad argument).

    ``group``, ``dim`` (``None``: the map's default) and ``seed`` configure the NTK maps;
    ``cost_aware`` turns on the labelling-cost exponent 3 (DFT-like) of
    :class:`~fntk.select.SelectOptions`.
    """
    from pydantic import ValidationError

    from fntk.select.options import DEFAULT_COST_EXPONENT

    common: dict[str, object] = {"batch_size": batch_size, "device": device}
    if features != "embedding":
        common.update(group=group, seed=seed)
        if dim is not None:
            common["dim"] = dim
    try:
        return RunOptions(
            n=n,
            model=model,
            features=default_options(features, **common),
            select=SelectOptions(
                method=selector,
                shortlist_size=shortlist,
                cost_exponent=DEFAULT_COST_EXPONENT if cost_aware else None,
            ),
            chunk_size=chunk_size,
            seed=seed,
        )
    except (ValueError, ValidationError) as exc:
        raise InputError(_one_line(exc)) from None


def select_files(
    pool: str | Path | Sequence[str | Path],
    train: str | Path | Sequence[str | Path] = (),
    *,
    output: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    **options: object,
) -> SelectRun:
    """Python mirror of ``fntk select``: ``fntk.select("pool.xyz", "train.xyz", n=50)``.

    ``options`` are the keyword arguments of :func:`build_run_options` (``n``, ``features``,
    ``selector``, ``model``, ...). With ``output``, the files of ``fntk select -o`` are written.
    """
    pool_files = [str(p) for p in ([pool] if isinstance(pool, str | Path) else pool)]
    train_files = [str(t) for t in ([train] if isinstance(train, str | Path) else train)]
    run_options = build_run_options(**options)
    if output is None:
        return run_selection(pool_files, train_files, run_options, progress=progress)
    from fntk.io import prepare_output_dir

    out = prepare_output_dir(output, overwrite=overwrite)
    return run_and_write(pool_files, train_files, out, run_options, progress=progress)[0]


def _one_line(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        ]
        return "invalid option: " + "; ".join(problems)
    return str(exc)
