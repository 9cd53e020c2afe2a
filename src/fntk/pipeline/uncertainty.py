"""Calibrated error estimates of a model for structure files (``fntk uncertainty``).

The model's own joint features (DESIGN.md section 2) of a training set give the precision; a
labelled calibration set gives the scale and noise (DESIGN.md section 7,
:class:`fntk.select.errorbars.ErrorModel`); every input structure then gets a predicted force
RMSE, energy error and per-atom force error next to the model's prediction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from fntk.errors import InputError
from fntk.features import (
    FeatureChunk,
    compute_features,
    default_options,
    force_row_weight,
    has_force_rows,
)
from fntk.features.options import (
    DEFAULT_ENERGY_WEIGHT,
    DEFAULT_FORCES_WEIGHT,
    FeatureMapOptions,
    JointNTKOptions,
)
from fntk.io import duplicate_key
from fntk.learn import LabelledSet
from fntk.learn.evaluate import masked_force_errors
from fntk.models import ModelBackend
from fntk.pipeline.options import RunOptions, joint_weight_at
from fntk.select.calibration import calibration_scores
from fntk.select.errorbars import ErrorEstimates, ErrorModel

logger = logging.getLogger(__name__)

FORCE_SIGMA_KEY = "fntk_force_sigma"
ENERGY_SIGMA_KEY = "fntk_energy_sigma"
ATOM_FORCE_SIGMA_KEY = "fntk_atom_force_sigma"
UNCALIBRATED_WARNING = (
    "no --calibrate set: the error estimates are the uncalibrated posterior standard deviation "
    "(prior variance 1 per feature), not eV/Angstrom; pass labelled structures with --calibrate"
)


def joint_options(train: Sequence[Atoms], **overrides: object) -> JointNTKOptions:
    """Joint-map options whose lambda follows the default loss weights at the training set's
    mean atom count (as ``fntk select``)."""
    weight = force_row_weight(
        DEFAULT_ENERGY_WEIGHT, DEFAULT_FORCES_WEIGHT, [len(a) for a in train] or [1]
    )
    options = default_options("joint", force_weight=weight, **overrides)
    assert isinstance(options, JointNTKOptions)
    return options


def prediction_errors(
    backend: ModelBackend, labelled: LabelledSet, batch_size: int = 8
) -> tuple[list[np.ndarray], np.ndarray]:
    """Model minus reference: forces (n_atoms, 3) per structure, NaN on fixed atoms, and
    energies per atom (eV/atom)."""
    predicted = backend.predict(labelled.structures, batch_size=batch_size)
    forces = masked_force_errors([f.numpy() for _, f in predicted], labelled)
    energies = np.array([e for e, _ in predicted]) - labelled.energies
    return forces, energies / labelled.n_atoms


@dataclass
class CalibrationRecord:
    """What ``run.json`` says about the calibration."""

    n_structures: int = 0
    dropped_overlap: list[int] = field(default_factory=list)
    force_scores: dict[str, float] = field(default_factory=dict)
    energy_scores: dict[str, float] = field(default_factory=dict)


def drop_overlap(
    train_keys: Collection[str], calibration: LabelledSet
) -> tuple[LabelledSet, list[int]]:
    """``calibration`` without the structures that are also in the training set (the same
    structure up to a rigid motion: :func:`fntk.io.duplicate_key`, the rule ``fntk select``
    excludes training copies from the pool by), and the positions dropped.

    Parameters
    ----------
    train_keys : collection of str
        :func:`~fntk.io.duplicate_key` of every training structure.
    calibration : LabelledSet

    Raises
    ------
    InputError
        Every calibration structure is in the training set.
    """
    keep = [i for i, a in enumerate(calibration.structures) if duplicate_key(a) not in train_keys]
    dropped = sorted(set(range(len(calibration))) - set(keep))
    if dropped and not keep:
        raise InputError(
            "every --calibrate structure is also in the --train set",
            hint="calibrate on labelled structures the model was not trained on",
        )
    if dropped:
        logger.warning(
            "dropped %d --calibrate structures that are also in --train (positions %s)",
            len(dropped),
            dropped[:10],
        )
    return (calibration.subset(keep) if dropped else calibration), dropped


def calibrate_error_model(
    model: ErrorModel,
    backend: ModelBackend,
    options: FeatureMapOptions,
    calibration: LabelledSet,
) -> CalibrationRecord:
    """Calibrate ``model`` (fitted on a training set) on the errors of ``backend`` on the
    labelled ``calibration`` structures (:meth:`ErrorModel.calibrate`); the record holds the
    coverage and NLL of the calibrated estimates on those same structures."""
    chunk = compute_features(backend, calibration.structures, options)
    force_errors, energy_errors = prediction_errors(backend, calibration)
    model.calibrate(chunk, force_errors, energy_errors)
    estimate = model.estimate(chunk)
    return CalibrationRecord(
        n_structures=len(calibration),
        force_scores=calibration_scores(
            np.concatenate([f.ravel() for f in force_errors]), estimate.component_variance
        ),
        energy_scores=calibration_scores(energy_errors, estimate.energy_variance),
    )


def fit_error_model(
    backend: ModelBackend,
    options: JointNTKOptions,
    train: Sequence[Atoms],
    calibration: LabelledSet | None,
    *,
    rank: int | None = None,
) -> tuple[ErrorModel, CalibrationRecord]:
    """The error model of ``backend`` given its training structures, calibrated on
    ``calibration`` when given (overlap with ``train`` dropped with a warning)."""
    model = ErrorModel(force_row_scale=options.force_weight, rank=rank)
    model.fit(compute_features(backend, list(train), options))
    if calibration is None:
        return model, CalibrationRecord()
    calibration, dropped = drop_overlap({duplicate_key(a) for a in train}, calibration)
    record = calibrate_error_model(model, backend, options, calibration)
    record.dropped_overlap = dropped
    return model, record


def annotate(structures: Sequence[Atoms], estimate: ErrorEstimates) -> None:
    """Write the estimates into ``info`` and ``arrays`` of ``structures`` (in place)."""
    for j, atoms in enumerate(structures):
        atoms.info[FORCE_SIGMA_KEY] = float(estimate.force_sigma[j])
        atoms.info[ENERGY_SIGMA_KEY] = float(estimate.energy_sigma[j])
        atoms.arrays[ATOM_FORCE_SIGMA_KEY] = np.asarray(estimate.atom_force_sigma[j], np.float64)


def check_labelled(paths: Sequence[str | os.PathLike], what: str) -> LabelledSet:
    """Labelled structures of ``paths``; an unlabelled frame is one error line naming ``what``."""
    try:
        return LabelledSet.from_files([str(p) for p in paths])
    except InputError as error:
        raise InputError(
            f"{what} needs reference energies and forces: {error}",
            hint="label these structures (or pass them with --train, which needs no labels)",
        ) from None


def default_paths(output: str | os.PathLike) -> dict[str, Path]:
    """The three files of a run: the extended XYZ, the CSV and the run record."""
    out = Path(output)
    return {
        "xyz": out,
        "csv": out.with_suffix(".csv"),
        "run": out.with_name(out.stem + ".run.json"),
    }


def run_uncertainty(
    files: Sequence[str],
    train: Sequence[str],
    calibrate: Sequence[str],
    output: str | os.PathLike,
    options: RunOptions | None = None,
    *,
    chunk_size: int = 64,
    overwrite: bool = False,
) -> dict[str, object]:
    """Estimate the errors of ``options.model`` on ``files``; write the XYZ, CSV and run record.

    ``options`` (default :class:`~fntk.pipeline.options.RunOptions`, built from the flags by
    :func:`~fntk.pipeline.options.build_run_options` as for ``fntk select``) give the model
    and the joint map, whose lambda follows the loss weights at the training set's mean atom
    count.

    Returns the run record (also written as ``<stem>.run.json``).

    Raises
    ------
    InputError
        Unreadable inputs, a calibration set without labels or inside the training set, an
        existing output without ``overwrite``, an output that is an input.
    """
    import json

    import torch

    from fntk.io import atomic_write_text, expand_paths, read_structures, write_extxyz
    from fntk.models import load_backend

    inputs = expand_paths(list(files))
    protected = (
        inputs + expand_paths(list(train)) + (expand_paths(list(calibrate)) if calibrate else [])
    )
    paths = default_paths(output)
    _check_outputs(paths, protected, overwrite)
    train_structures = read_structures(list(train)).structures
    if not train_structures:
        raise InputError("the --train files hold no structure", hint="pass the training set")
    calibration = check_labelled(calibrate, "--calibrate") if calibrate else None
    counts = [len(a) for a in train_structures]
    run_options = joint_weight_at(options or RunOptions(), float(sum(counts)) / len(counts))
    features = run_options.features
    if not isinstance(features, JointNTKOptions):
        raise InputError(
            f"error estimates need the joint feature map, not {features.name!r}",
            hint="leave the feature map at its default (joint)",
        )
    dtype = getattr(torch, features.dtype)
    backend = load_backend(run_options.model, device=features.device, dtype=dtype)
    error_model, record = fit_error_model(backend, features, train_structures, calibration)
    if calibration is None:
        logger.warning(UNCALIBRATED_WARNING)
    written = _estimate_files(backend, features, error_model, inputs, chunk_size)
    write_extxyz(paths["xyz"], written, protected=protected)
    atomic_write_text(paths["csv"], _sigma_table(written))
    run = {
        "status": "complete",
        "model": backend.spec,
        "features": json.loads(features.model_dump_json()),
        "inputs": inputs,
        "train": list(train),
        "calibrate": list(calibrate),
        **_error_record(error_model, record, calibration is not None, written),
        "outputs": {k: str(v) for k, v in paths.items()},
    }
    atomic_write_text(paths["run"], json.dumps(run, indent=2) + "\n")
    return run


def _error_record(
    error_model: ErrorModel, record: CalibrationRecord, calibrated: bool, written: Sequence[Atoms]
) -> dict[str, object]:
    """The run record's fields on the error model, its calibration and the estimates."""
    sigmas = np.array([a.info[FORCE_SIGMA_KEY] for a in written])
    return {
        "calibrated": calibrated,
        "warning": None if calibrated else UNCALIBRATED_WARNING,
        "error_model": error_model.summary(),
        "calibration": {
            "n_structures": record.n_structures,
            "dropped_overlap": record.dropped_overlap,
            "force_scores": record.force_scores,
            "energy_scores": record.energy_scores,
        },
        "n_structures": len(written),
        "mean_force_sigma": float(np.nanmean(sigmas)) if len(sigmas) else None,
    }


def _check_outputs(paths: dict[str, Path], protected: Sequence[str], overwrite: bool) -> None:
    """Refuse an output that is an input, cannot be written, or exists without ``overwrite``."""
    from fntk.io import check_not_input, check_writable_file

    for path in paths.values():
        check_not_input(path, protected)
        check_writable_file(path)
        if path.exists() and not overwrite:
            raise InputError(
                "output exists", file=str(path), hint="pass --overwrite or choose another -o"
            )


def _estimate_files(
    backend: ModelBackend,
    options: JointNTKOptions,
    error_model: ErrorModel,
    inputs: Sequence[str],
    chunk_size: int,
) -> list[Atoms]:
    """Every structure of ``inputs`` with the model's predictions and predicted errors."""
    from fntk.io import iter_chunks
    from fntk.predict import predict_chunk

    written: list[Atoms] = []
    for chunk in iter_chunks(inputs, chunk_size, species=backend.species):
        predicted = predict_chunk(backend, chunk)
        features = compute_features(backend, chunk.structures, options, chunk.global_indices)
        annotate(predicted, error_model.estimate(features))
        written.extend(predicted)
    return written


def _sigma_table(written: Sequence[Atoms]) -> str:
    """The CSV text: one row of predicted errors per structure."""
    import csv
    import io

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(
        ["index", "source_file", "source_index", "n_atoms", FORCE_SIGMA_KEY, ENERGY_SIGMA_KEY]
    )
    for i, atoms in enumerate(written):
        writer.writerow(
            [
                i,
                atoms.info["fntk_source_file"],
                atoms.info["fntk_source_index"],
                len(atoms),
                f"{atoms.info[FORCE_SIGMA_KEY]:.6g}",
                f"{atoms.info[ENERGY_SIGMA_KEY]:.6g}",
            ]
        )
    return table.getvalue()


ERROR_SAMPLE = 32
"""Pool structures (a uniform sample) whose predicted errors estimate the pool mean in
``fntk select``'s stopping signal. Their features come from the pool pass, never computed
again: the head of a uniform-sample selector's seeded sample (``coverage``, ``random``), else
every ``ceil(n_pool / ERROR_SAMPLE)``-th pool structure, kept as the pool streams
(:mod:`fntk.pipeline.job`); run.json's ``stopping_signal.sample`` says which."""

UNCALIBRATED_UNITS = "prior units (uncalibrated: pass --calibrate VALID... for eV/A)"


@dataclass(frozen=True)
class CalibrationSet:
    """The labelled structures that calibrate ``fntk select``'s stopping signal, read (and
    checked) with the other inputs before any features.

    Attributes
    ----------
    labelled : LabelledSet
        Calibration structures, training-set copies removed.
    files : list of str
        The ``--calibrate`` files, expanded.
    dropped_overlap : list of int
        Positions (over all files) of the structures dropped because the training set holds
        them.
    """

    labelled: LabelledSet
    files: list[str]
    dropped_overlap: list[int]


def read_calibration(paths: Sequence[str], train_keys: Collection[str]) -> CalibrationSet:
    """The labelled calibration set of ``paths`` without its training-set copies.

    Parameters
    ----------
    paths : sequence of str
        ``--calibrate`` files (globs allowed).
    train_keys : collection of str
        :func:`~fntk.io.duplicate_key` of every training structure.

    Raises
    ------
    InputError
        A file that cannot be read, a structure without reference energy or forces, or a set
        that lies entirely in the training set.
    """
    from fntk.io import expand_paths

    files = expand_paths(list(paths))
    labelled, dropped = drop_overlap(train_keys, check_labelled(files, "--calibrate"))
    return CalibrationSet(labelled=labelled, files=files, dropped_overlap=dropped)


def pool_error_signal(
    backend: ModelBackend,
    options: FeatureMapOptions,
    train: Sequence[FeatureChunk],
    picked: FeatureChunk | None,
    sample: FeatureChunk | None,
    calibration: CalibrationSet | None = None,
) -> dict[str, object] | None:
    """Stopping signal: mean predicted force RMSE of a pool sample (its feature blocks, from the
    pool pass) before and after labelling the picks (the posterior with their rows added).

    With ``calibration``, the error model of the training set is calibrated on the errors of
    ``backend`` on those labelled structures as ``fntk uncertainty --calibrate`` does (scale,
    noise and the precision's relative noise by likelihood; :meth:`ErrorModel.calibrate`), and
    the numbers are eV/Angstrom; without it they are in prior units (uncalibrated). The
    calibration describes the errors of ``backend`` itself: it fits when the model was
    fine-tuned on the training set (or when there is none).

    Returns ``None`` for maps without force rows or an empty sample.
    """
    if sample is None or not sample.n_structures or not has_force_rows(options.name):
        return None
    scale = float(getattr(options, "force_weight", 1.0))
    model = ErrorModel(force_row_scale=scale)
    chunks = [c for c in train if c.n_structures]
    model.fit(FeatureChunk.concatenate(chunks) if chunks else sample.subset([]))
    record = (
        None
        if calibration is None
        else calibrate_error_model(model, backend, options, calibration.labelled)
    )
    before = model.estimate(sample).force_sigma
    after = before if picked is None else model.add(picked).estimate(sample).force_sigma
    signal: dict[str, object] = {
        "pool_force_rmse_before": float(np.mean(before)),
        "pool_force_rmse_after": float(np.mean(after)),
        "relative_change": float(np.mean(after) / np.mean(before) - 1.0),
        "n_sample": sample.n_structures,
        "calibrated": record is not None,
        "units": UNCALIBRATED_UNITS if record is None else "eV/A",
        "before_per_structure": [float(x) for x in before],
        "after_per_structure": [float(x) for x in after],
    }
    if calibration is not None and record is not None:
        signal["calibration"] = {
            "files": calibration.files,
            "n_structures": record.n_structures,
            "dropped_overlap": calibration.dropped_overlap,
            "force_scores": record.force_scores,
            "energy_scores": record.energy_scores,
            "error_model": model.summary(),
        }
    return signal
