"""Calibrated error estimates of a model for structure files (``fntk uncertainty``).

The model's own joint features (DESIGN.md section 2) of a training set give the precision; a
labelled calibration set gives the scale and noise (DESIGN.md section 7,
:class:`fntk.select.errorbars.ErrorModel`); every input structure then gets a predicted force
RMSE, energy error and per-atom force error next to the model's prediction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
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
from fntk.io import structure_fingerprint
from fntk.learn import LabelledSet
from fntk.learn.evaluate import free_atoms
from fntk.models import ModelBackend
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
    forces = []
    for atoms, (_, f), ref in zip(labelled.structures, predicted, labelled.forces):
        error = f.numpy() - ref
        error[~free_atoms(atoms)] = np.nan
        forces.append(error)
    energies = np.array([e for e, _ in predicted]) - labelled.energies
    return forces, energies / labelled.n_atoms


@dataclass
class CalibrationRecord:
    """What ``run.json`` says about the calibration."""

    n_structures: int = 0
    dropped_overlap: list[int] = field(default_factory=list)
    force_scores: dict[str, float] = field(default_factory=dict)
    energy_scores: dict[str, float] = field(default_factory=dict)


def drop_overlap(train: Sequence[Atoms], calibration: LabelledSet) -> tuple[LabelledSet, list[int]]:
    """``calibration`` without the structures that are also in ``train`` (by fingerprint),
    and the positions dropped."""
    seen = {structure_fingerprint(a) for a in train}
    keep = [i for i, a in enumerate(calibration.structures) if structure_fingerprint(a) not in seen]
    dropped = sorted(set(range(len(calibration))) - set(keep))
    if dropped and not keep:
        raise InputError(
            "every --calibrate structure is also in the --train set",
            hint="calibrate on labelled structures the model was not trained on",
        )
    return (calibration.subset(keep) if dropped else calibration), dropped


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
    record = CalibrationRecord()
    if calibration is None:
        return model, record
    calibration, record.dropped_overlap = drop_overlap(train, calibration)
    if record.dropped_overlap:
        logger.warning(
            "dropped %d --calibrate structures that are also in --train (positions %s)",
            len(record.dropped_overlap),
            record.dropped_overlap[:10],
        )
    chunk = compute_features(backend, calibration.structures, options)
    force_errors, energy_errors = prediction_errors(backend, calibration)
    model.calibrate(chunk, force_errors, energy_errors)
    record.n_structures = len(calibration)
    estimate = model.estimate(chunk)
    record.force_scores = calibration_scores(
        np.concatenate([f.ravel() for f in force_errors]), estimate.component_variance
    )
    record.energy_scores = calibration_scores(energy_errors, estimate.energy_variance)
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
    *,
    model: str = "sevennet-0",
    device: str = "auto",
    dtype: str = "float32",
    dim: int | None = None,
    chunk_size: int = 64,
    overwrite: bool = False,
) -> dict[str, object]:
    """Estimate the errors of ``model`` on ``files``; write the XYZ, CSV and run record.

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
    options = joint_options(
        train_structures, **({"dim": dim} if dim else {}), dtype=dtype, device=device
    )
    backend = load_backend(model, device=device, dtype=getattr(torch, dtype))
    error_model, record = fit_error_model(backend, options, train_structures, calibration)
    if calibration is None:
        logger.warning(UNCALIBRATED_WARNING)
    written = _estimate_files(backend, options, error_model, inputs, chunk_size)
    write_extxyz(paths["xyz"], written, protected=protected)
    atomic_write_text(paths["csv"], _sigma_table(written))
    run = {
        "status": "complete",
        "model": backend.spec,
        "features": json.loads(options.model_dump_json()),
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
"""Pool structures (a uniform sample by pool index) whose predicted errors estimate the pool
mean in ``fntk select``'s stopping signal. Their features are computed again after the pool
pass (recorded as ``timings_s.stopping_signal``), which keeps the pass itself unchanged for
one process and for Dask workers; on the demo's 120-structure pool that is 30 structures."""


def pool_error_signal(
    backend: ModelBackend,
    options: FeatureMapOptions,
    train: Sequence[FeatureChunk],
    picked: FeatureChunk | None,
    sample: Sequence[Atoms],
) -> dict[str, object] | None:
    """Stopping signal: mean predicted force RMSE of a pool sample before and after labelling
    the picks (the posterior with their rows added), uncalibrated (prior units).

    Returns ``None`` for maps without force rows or an empty sample.
    """
    if not sample or not has_force_rows(options.name):
        return None
    features = compute_features(backend, list(sample), options)
    scale = float(getattr(options, "force_weight", 1.0))
    model = ErrorModel(force_row_scale=scale)
    chunks = [c for c in train if c.n_structures]
    model.fit(FeatureChunk.concatenate(chunks) if chunks else features.subset([]))
    before = model.estimate(features).force_sigma
    after = before if picked is None else model.add(picked).estimate(features).force_sigma
    return {
        "pool_force_rmse_before": float(np.mean(before)),
        "pool_force_rmse_after": float(np.mean(after)),
        "relative_change": float(np.mean(after) / np.mean(before) - 1.0),
        "n_sample": len(sample),
        "calibrated": False,
        "units": "prior units (uncalibrated: run fntk uncertainty --calibrate for eV/A)",
        "before_per_structure": [float(x) for x in before],
        "after_per_structure": [float(x) for x in after],
    }
