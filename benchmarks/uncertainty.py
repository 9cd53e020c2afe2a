"""Calibrated single-model error estimates vs a K=4 committee, in the same run.

For each data set (reduced sizes of ``fntk data make``), the benchmark's learner (ridge readout
fine-tuning of SevenNet-0, ``fntk bench``'s default, joint features d=32) is fitted on the first
20 and the first 80 (or ``labels=``) structures of a seeded permutation of the pool; the rest of
the pool (or its first ``--calibrate``) is the calibration set. Estimators, all calibrated the
same way (maximum likelihood scale and noise on the calibration set's force-component errors,
``fntk.select.calibration.fit_calibration``):

- ``posterior``: the posterior variance of the joint features (``fntk uncertainty``);
- ``posterior-r8``: its 8 directions of largest posterior variance (``fntk.Calculator``);
- ``committee``: the variance over K=4 members of each force component (member 0 the evaluated
  model, members 1..3 the learner's ``fit_member``, as ``fntk bench``'s committee).

Scores on test_id and the out-of-distribution split: Spearman of predicted vs actual
per-structure force RMSE, coverage of the 68%/95% intervals of force components, miscalibration
area, NLL. Cost per structure: the features (design rows, measured when computed) plus the
estimate, vs the committee's K fits (amortised over the evaluated structures) and K
predictions (the ridge committee predicts from the same design rows, so it pays for them too).
``benchmarks/calculator_cost.py`` measures the calculator against one energy+force evaluation.

Run: ``python benchmarks/uncertainty.py --data xtb=DIR --data emt=DIR@pool=64,labels=20/40 -o
OUT.md``
(DIR from ``fntk data make ... -o DIR``; design rows are cached under DIR/features).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from fntk.bench.learner import FittedModel, RidgeLearner
from fntk.bench.methods import member_seed
from fntk.bench.options import BenchOptions
from fntk.features import default_options, force_row_weight
from fntk.learn import LabelledSet
from fntk.learn.evaluate import masked_force_errors
from fntk.models import load_backend
from fntk.select.calibration import calibration_scores, fit_calibration, spearman
from fntk.select.errorbars import ErrorModel

OOD = {"xtb": "test_ood", "emt": "test_ood-both"}
COMMITTEE = 4
RANK = 8


def component_errors(
    learner: RidgeLearner, model: FittedModel, split: LabelledSet
) -> list[np.ndarray]:
    """Predicted minus reference forces per structure, NaN on fixed atoms."""
    return masked_force_errors(learner.predict_forces(model, split.structures), split)


def structure_rmse(errors: list[np.ndarray]) -> np.ndarray:
    return np.array([np.sqrt(np.nanmean(e**2)) for e in errors])


def committee_variances(
    learner: RidgeLearner, members: list[FittedModel], structures: list[Atoms]
) -> list[np.ndarray]:
    """Per structure, the variance over members of each force component (ddof=1)."""
    forces = [learner.predict_forces(m, structures) for m in members]
    return [np.stack([f[s] for f in forces]).var(axis=0, ddof=1) for s in range(len(structures))]


def scores(
    predicted_rmse: np.ndarray, variances: list[np.ndarray], errors: list[np.ndarray]
) -> dict[str, float]:
    flat_e = np.concatenate([e.ravel() for e in errors])
    flat_v = np.concatenate([v.ravel() for v in variances])
    out = {"spearman": spearman(predicted_rmse, structure_rmse(errors))}
    out.update(calibration_scores(flat_e, flat_v))
    return out


def _head(labelled: LabelledSet, n: int | None) -> LabelledSet:
    return labelled if n is None else labelled.subset(np.arange(min(n, len(labelled))))


def run_dataset(
    name: str,
    root: Path,
    limits: dict[str, str],
    n_calibrate: int,
    seed: int,
    rows: list[dict],
) -> None:
    """Rows of the table for one data set; ``limits``: ``pool``, ``test``, ``ood`` (first N
    structures of each file; ``ood`` defaults to ``test``) and ``labels`` (sizes, ``20/80``)."""
    options = BenchOptions()
    backend = load_backend(options.model, device="cpu")
    n_pool = int(limits["pool"]) if "pool" in limits else None
    n_test = int(limits["test"]) if "test" in limits else None
    n_ood = int(limits["ood"]) if "ood" in limits else n_test
    sizes = tuple(int(x) for x in limits.get("labels", "20/80").split("/"))
    pool = _head(LabelledSet.from_files([str(root / "pool.xyz")]), n_pool)
    tests = {
        "id": _head(LabelledSet.from_files([str(root / "test_id.xyz")]), n_test),
        "ood": _head(LabelledSet.from_files([str(root / f"{OOD[name]}.xyz")]), n_ood),
    }
    reference = root / "e0_reference.xyz"
    learner = RidgeLearner(
        backend,
        options.finetune,
        options.features.dim,
        e0_reference=LabelledSet.from_files([str(reference)]) if reference.exists() else None,
        cache_dir=root / "features",
    )
    order = np.random.default_rng(seed).permutation(len(pool))
    # The calibration set is the rest of the pool (or its first n_calibrate structures).
    rest = order[max(sizes) :]
    calibration = pool.subset(rest[:n_calibrate] if n_calibrate else rest)
    weight = force_row_weight(
        options.finetune.energy_weight,
        options.finetune.force_weight,
        [len(a) for a in pool.structures],
    )
    features = default_options("joint", dim=options.features.dim, force_weight=weight)

    def chunk(split: LabelledSet):
        found = learner.feature_chunk(features, split.structures, np.arange(len(split)))
        assert found is not None, "the joint features must be the learner's design rows"
        return found

    cal_chunk, _ = chunk(calibration)
    for size in sizes:
        train = pool.subset(order[:size])
        model = learner.fit(train, seed)
        start = time.perf_counter()
        members = [model] + [
            learner.fit_member(train, member_seed(seed, k)) for k in range(1, COMMITTEE)
        ]
        seconds_fit = time.perf_counter() - start
        cal_errors = component_errors(learner, model, calibration)
        train_chunk, _ = chunk(train)
        estimators = {}
        for label, rank in (("posterior", None), (f"posterior-r{RANK}", RANK)):
            start = time.perf_counter()
            em = ErrorModel(force_row_scale=weight, rank=rank).fit(train_chunk)
            em.calibrate(cal_chunk, cal_errors, None)
            estimators[label] = (em, time.perf_counter() - start)
        cal_comm = committee_variances(learner, members, calibration.structures)
        comm_cal = fit_calibration(
            np.concatenate([v.ravel() for v in cal_comm]),
            np.concatenate([e.ravel() for e in cal_errors]),
        )
        for split_name, split in tests.items():
            errors = component_errors(learner, model, split)
            split_chunk, seconds_features = chunk(split)
            n = len(split)
            for label, (em, seconds_setup) in estimators.items():
                start = time.perf_counter()
                est = em.estimate(split_chunk)
                seconds = time.perf_counter() - start
                offsets = em.variances(split_chunk).force_offsets
                variances = [
                    est.component_variance[a:b].reshape(-1, 3)
                    for a, b in itertools.pairwise(offsets)
                ]
                row = {"data": name, "labels": size, "split": split_name, "method": label}
                row.update(scores(est.force_sigma, variances, errors))
                row["s_per_structure"] = (seconds_features + seconds_setup + seconds) / n
                row["relative_noise"] = em.relative_noise
                rows.append(row)
            start = time.perf_counter()
            comm = committee_variances(learner, members, split.structures)
            seconds_predict = time.perf_counter() - start
            calibrated = [comm_cal.variance(v) for v in comm]
            predicted = np.array([np.sqrt(v.mean()) for v in calibrated])
            row = {"data": name, "labels": size, "split": split_name, "method": "committee"}
            row.update(scores(predicted, calibrated, errors))
            # The ridge committee predicts from the same design rows: it pays the features too.
            row["s_per_structure"] = (seconds_features + seconds_fit + seconds_predict) / n
            row["relative_noise"] = float("nan")
            rows.append(row)
            print(rows[-3:], flush=True)


def table(rows: list[dict]) -> str:
    keys = [
        "data", "labels", "split", "method", "spearman", "coverage_68", "coverage_95",
        "miscalibration_area", "nll", "s_per_structure", "relative_noise",
    ]  # fmt: skip
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        help="NAME=DIR[@pool=N,test=N,ood=N,labels=20/80] (NAME: xtb or emt)",
    )
    parser.add_argument(
        "--calibrate", type=int, default=0, help="calibration structures (0: rest of the pool)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    rows: list[dict] = []
    for spec in args.data:
        name, _, rest = spec.partition("=")
        root, _, extra = rest.partition("@")
        limits = dict(item.split("=") for item in extra.split(",") if item)
        run_dataset(name, Path(root), limits, args.calibrate, args.seed, rows)
    text = ["# Calibrated error estimates vs a K=4 committee", "", table(rows), ""]
    Path(args.output).write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
