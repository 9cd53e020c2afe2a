"""Benchmark results: the ``results.csv`` rows, mean learning curves and the summary table.

One :class:`ResultRow` per (round, method, seed, test split). :func:`mean_curves` averages
over seeds, :func:`labels_to_reach` interpolates a mean curve, and :func:`summarize` /
:func:`summary_markdown` make the table of final errors, labels needed to reach random's final
force RMSE, the seed-to-seed spread and the cost of each method.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from fntk.io import atomic_write_text

METRICS = (
    "energy_mae_mev_per_atom",
    "energy_rmse_mev_per_atom",
    "force_mae_mev_per_ang",
    "force_rmse_mev_per_ang",
)
"""Error columns: per-atom energy errors in meV/atom, force-component errors in meV/Angstrom."""

METRIC_LABELS = {
    "energy_mae_mev_per_atom": "energy MAE (meV/atom)",
    "energy_rmse_mev_per_atom": "energy RMSE (meV/atom)",
    "force_mae_mev_per_ang": "force MAE (meV/Å)",
    "force_rmse_mev_per_ang": "force RMSE (meV/Å)",
}


@dataclass(frozen=True)
class ResultRow:
    """One line of ``results.csv``.

    Attributes
    ----------
    round : int
        0 = initial set only; round ``r`` adds the ``r``-th batch.
    n_labels : int
        Labelled structures the round's model was trained on (initial + picked).
    method : str
    seed : int
    split : str
        Test split name.
    n_structures : int
        Structures in the split.
    energy_mae_mev_per_atom, energy_rmse_mev_per_atom : float
        meV/atom.
    force_mae_mev_per_ang, force_rmse_mev_per_ang : float
        meV/Angstrom.
    seconds_finetune : float
        Fine-tuning of the round's model, s (round 0 is shared by all methods of a seed and
        reported for each).
    seconds_evaluate : float
        Evaluation on all splits, s.
    seconds_features, seconds_training, seconds_select : float
        Cost of acquiring this round's new batch (zero in round 0): pool features or committee
        predictions, extra fine-tuning (committee members) and selection, s.
    n_steps_run : int
        Gradient steps of the round's fine-tuning.
    finished_at : str
        UTC time the round's row was written (ISO 8601); unchanged when a run resumes.
    n_steps_kept : int
        Step whose weights the round's model has after early stopping: 0 means the
        fine-tuning kept the pretrained weights (only the E0 refit moved the model). -1 in
        rows written before this column existed.
    """

    round: int
    n_labels: int
    method: str
    seed: int
    split: str
    n_structures: int
    energy_mae_mev_per_atom: float
    energy_rmse_mev_per_atom: float
    force_mae_mev_per_ang: float
    force_rmse_mev_per_ang: float
    seconds_finetune: float
    seconds_evaluate: float
    seconds_features: float
    seconds_training: float
    seconds_select: float
    n_steps_run: int
    finished_at: str
    n_steps_kept: int = -1

    @property
    def seconds_acquisition(self) -> float:
        """Features + extra training + selection, s."""
        return self.seconds_features + self.seconds_training + self.seconds_select


RESULT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
_LEGACY_COLUMNS = RESULT_COLUMNS[:-1]  # results.csv before n_steps_kept (read as -1)
_TYPES = {f.name: {"int": int, "float": float, "str": str}[str(f.type)] for f in fields(ResultRow)}


def format_results(rows: Iterable[ResultRow]) -> str:
    """CSV text with a header of :data:`RESULT_COLUMNS`; floats in shortest round-trip form, so
    :func:`read_results` gives back equal rows (a resumed run sums the same numbers)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    for row in rows:
        values = asdict(row)
        writer.writerow(
            repr(v) if isinstance(v, float) else v for v in (values[c] for c in RESULT_COLUMNS)
        )
    return buffer.getvalue()


def write_results(path: str | os.PathLike, rows: Iterable[ResultRow]) -> None:
    """Write ``results.csv`` atomically."""
    atomic_write_text(path, format_results(rows))


def read_results(path: str | os.PathLike) -> list[ResultRow]:
    """Rows of a ``results.csv``; an absent file gives no rows.

    Raises
    ------
    ValueError
        The header is not :data:`RESULT_COLUMNS`.
    """
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = tuple(reader.fieldnames or ())
        if columns not in (RESULT_COLUMNS, _LEGACY_COLUMNS):
            raise ValueError(f"{path}: unexpected columns {reader.fieldnames}")
        return [ResultRow(**{k: _TYPES[k](v) for k, v in line.items()}) for line in reader]


@dataclass(frozen=True)
class MeanCurve:
    """Mean and standard deviation over seeds of one metric of one method on one split.

    Only rounds that every seed of the method finished are included.

    Attributes
    ----------
    method, split, metric : str
    n_labels : ndarray, shape (n_rounds,), float64
        Mean labelled-set size of each round.
    mean, std : ndarray, shape (n_rounds,), float64
        Over seeds; ``std`` is the sample standard deviation (0 for one seed).
    n_seeds : int
    """

    method: str
    split: str
    metric: str
    n_labels: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n_seeds: int


def mean_curves(rows: Sequence[ResultRow], metric: str) -> dict[tuple[str, str], MeanCurve]:
    """Mean curve of ``metric`` for every (method, split) in ``rows``."""
    values: dict[tuple[str, str], dict[int, dict[int, ResultRow]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for row in rows:
        values[(row.method, row.split)][row.round][row.seed] = row
    curves = {}
    for (method, split), by_round in values.items():
        seeds = set().union(*(set(by_seed) for by_seed in by_round.values()))
        complete = sorted(r for r, by_seed in by_round.items() if set(by_seed) == seeds)
        table = np.array(
            [[getattr(by_round[r][s], metric) for s in sorted(seeds)] for r in complete]
        ).reshape(len(complete), len(seeds))
        n_labels = [np.mean([by_round[r][s].n_labels for s in seeds]) for r in complete]
        curves[(method, split)] = MeanCurve(
            method=method,
            split=split,
            metric=metric,
            n_labels=np.asarray(n_labels, dtype=np.float64),
            mean=table.mean(axis=1),
            std=table.std(axis=1, ddof=1) if len(seeds) > 1 else np.zeros(len(complete)),
            n_seeds=len(seeds),
        )
    return curves


def labels_to_reach(n_labels: np.ndarray, errors: np.ndarray, target: float) -> float | None:
    """Labels at which a mean curve first reaches ``target`` (linear interpolation).

    Parameters
    ----------
    n_labels : ndarray, shape (n,)
        Increasing labelled-set sizes.
    errors : ndarray, shape (n,)
        Mean error at each size.
    target : float
        Error to reach (same unit).

    Returns
    -------
    float or None
        ``n_labels[0]`` when the first point is already at or below ``target``; otherwise the
        interpolated size between the last point above and the first point at or below it;
        ``None`` when the curve never reaches ``target``.
    """
    below = np.flatnonzero(np.asarray(errors) <= target)
    if below.size == 0:
        return None
    j = int(below[0])
    if j == 0:
        return float(n_labels[0])
    x0, x1, y0, y1 = n_labels[j - 1], n_labels[j], errors[j - 1], errors[j]
    return float(x0 + (x1 - x0) * (y0 - target) / (y0 - y1))


@dataclass(frozen=True)
class MethodSummary:
    """Final state of one method on one split.

    Attributes
    ----------
    method, split : str
    n_labels : float
        Labelled-set size of the final complete round.
    n_seeds : int
    energy_rmse_mev_per_atom, force_rmse_mev_per_ang : float
        Mean over seeds at the final round.
    energy_rmse_std, force_rmse_std : float
        Sample standard deviation over seeds at the final round (the seed-to-seed spread).
    labels_to_reach_random : float or None
        Labels needed to reach random's final mean force RMSE on this split (``None``: never
        reached, or no random run).
    seconds_acquisition, seconds_total : float
        Per run (mean over seeds), summed over rounds: acquisition cost, and acquisition plus
        fine-tuning, s.
    """

    method: str
    split: str
    n_labels: float
    n_seeds: int
    energy_rmse_mev_per_atom: float
    energy_rmse_std: float
    force_rmse_mev_per_ang: float
    force_rmse_std: float
    labels_to_reach_random: float | None
    seconds_acquisition: float
    seconds_total: float


REFERENCE_METHOD = "random"


def summarize(rows: Sequence[ResultRow]) -> list[MethodSummary]:
    """One :class:`MethodSummary` per (split, method), splits and methods in first-seen order."""
    energy = mean_curves(rows, "energy_rmse_mev_per_atom")
    force = mean_curves(rows, "force_rmse_mev_per_ang")
    costs = _costs_per_run(rows)
    summaries = []
    for method, split in _ordered_keys(rows):
        e, f = energy[(method, split)], force[(method, split)]
        if not len(f.n_labels):
            continue
        reference = force.get((REFERENCE_METHOD, split))
        reach = None
        if reference is not None and len(reference.mean):
            reach = labels_to_reach(f.n_labels, f.mean, float(reference.mean[-1]))
        acquisition, total = costs[method]
        summaries.append(
            MethodSummary(
                method=method,
                split=split,
                n_labels=float(f.n_labels[-1]),
                n_seeds=f.n_seeds,
                energy_rmse_mev_per_atom=float(e.mean[-1]),
                energy_rmse_std=float(e.std[-1]),
                force_rmse_mev_per_ang=float(f.mean[-1]),
                force_rmse_std=float(f.std[-1]),
                labels_to_reach_random=reach,
                seconds_acquisition=acquisition,
                seconds_total=total,
            )
        )
    return summaries


def summary_markdown(
    rows: Sequence[ResultRow],
    *,
    notes: Sequence[str] = (),
    profile: PoolProfile | None = None,
    picks: dict[str, list[int]] | None = None,
) -> str:
    """Markdown summary: one table per split (see :func:`summarize`), the picks-vs-pool table
    (:func:`picks_markdown`, given a ``profile`` and the ``picks`` of each method), then
    ``notes``."""
    summaries = summarize(rows)
    has_reference = any(s.method == REFERENCE_METHOD for s in summaries)
    lines = ["# Active-learning benchmark", ""]
    for split in dict.fromkeys(s.split for s in summaries):
        energy_only = all(np.isnan(r.force_rmse_mev_per_ang) for r in rows if r.split == split)
        lines += [f"## {split}", ""]
        if energy_only:
            lines += [
                "Energy-only split (no reference forces, e.g. RGD1): force metrics omitted.",
                "",
            ]
        lines += [
            "| method | labels | energy RMSE (meV/atom) | force RMSE (meV/Å) "
            "| force RMSE std over seeds | labels to reach random's final force RMSE "
            "| acquisition s/run | total s/run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in (s for s in summaries if s.split == split):
            reach = (
                "-"
                if energy_only
                else "no random run"
                if not has_reference
                else "not reached"
                if s.labels_to_reach_random is None
                else f"{s.labels_to_reach_random:.1f}"
            )
            lines.append(
                f"| {s.method} | {s.n_labels:g} | {s.energy_rmse_mev_per_atom:.2f} "
                f"± {s.energy_rmse_std:.2f} | {s.force_rmse_mev_per_ang:.2f} "
                f"| {s.force_rmse_std:.2f} | {reach} "
                f"| {s.seconds_acquisition:.1f} | {s.seconds_total:.1f} |"
            )
        lines += ["", *([] if energy_only else _curve_table(rows, split)), ""]
    seeds = max((s.n_seeds for s in summaries), default=0)
    lines += [
        f"Final round, mean ± sample std over {seeds} seed(s). Labels to reach: the labelled-set "
        "size at which the method's mean force-RMSE curve first reaches random's final mean "
        "force RMSE (linear interpolation). Seconds per run, summed over rounds: acquisition "
        "= pool features or committee predictions + extra fine-tuning + selection; total adds "
        "the fine-tuning of the evaluated models.",
        "",
    ]
    if profile is not None and picks:
        lines += picks_markdown(profile, picks)
    lines += [f"- {note}" for note in [*_pretrained_notes(rows), *notes]]
    return "\n".join(lines).rstrip() + "\n"


def _pretrained_notes(rows: Sequence[ResultRow]) -> list[str]:
    """A warning when early stopping kept step 0: that round's model is the pretrained one."""
    runs = {(r.method, r.seed, r.round) for r in rows}
    kept_pretrained = sorted(
        {(r.method, r.seed, r.round) for r in rows if r.n_steps_run > 0 and r.n_steps_kept == 0}
    )
    if not kept_pretrained:
        return []
    listed = ", ".join(f"{m} seed {s} round {k}" for m, s, k in kept_pretrained[:8])
    more = f" and {len(kept_pretrained) - 8} more" if len(kept_pretrained) > 8 else ""
    return [
        f"WARNING: in {len(kept_pretrained)} of {len(runs)} evaluated rounds, early stopping kept "
        "step 0: no fine-tuning step beat the pretrained weights on the held-out slice, so the "
        f"evaluated model is the pretrained one with refitted E0s ({listed}{more}); lower the "
        "learning rate or raise the steps (results.csv: n_steps_kept)"
    ]


def _curve_table(rows: Sequence[ResultRow], split: str) -> list[str]:
    """Markdown rows: mean force RMSE over seeds of each method at each labelled-set size."""
    mine = [r for r in rows if r.split == split]
    sizes = sorted({r.n_labels for r in mine})
    lines = [
        "Force RMSE (meV/Å, mean over seeds) by labelled structures:",
        "",
        "| method | " + " | ".join(f"{n:g}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method in dict.fromkeys(r.method for r in mine):
        cells = []
        for n in sizes:
            values = [
                r.force_rmse_mev_per_ang for r in mine if r.method == method and r.n_labels == n
            ]
            cells.append(f"{np.mean(values):.0f}" if values else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _ordered_keys(rows: Sequence[ResultRow]) -> list[tuple[str, str]]:
    splits = list(dict.fromkeys(r.split for r in rows))
    methods = list(dict.fromkeys(r.method for r in rows))
    present = {(r.method, r.split) for r in rows}
    return [(m, s) for s in splits for m in methods if (m, s) in present]


def _costs_per_run(rows: Sequence[ResultRow]) -> dict[str, tuple[float, float]]:
    """(acquisition, total) seconds per run of each method, mean over seeds.

    Timings repeat on every split of a round, so one split's rows are counted.
    """
    first_split = rows[0].split if rows else ""
    per_run: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        if row.split != first_split:
            continue
        run = per_run[row.method][row.seed]
        run[0] += row.seconds_acquisition
        run[1] += row.seconds_acquisition + row.seconds_finetune
    return {
        method: (
            float(np.mean([v[0] for v in seeds.values()])),
            float(np.mean([v[1] for v in seeds.values()])),
        )
        for method, seeds in per_run.items()
    }


TOP_FORCE_QUANTILE = 0.95
"""Picks whose largest atomic force is above this quantile of the pool's count as high-force."""


@dataclass(frozen=True)
class PoolProfile:
    """What the picks-vs-pool table compares, for every pool structure.

    Attributes
    ----------
    n_atoms : ndarray of int64, shape (n_pool,)
    max_force : ndarray of float64, shape (n_pool,) or None
        Largest atomic force norm of each structure's reference labels, eV/Angstrom.
    tags : dict of str to list of str
        Values of user-named ``info`` keys (``"-"`` where a structure lacks the key).
    candidates : ndarray of int64
        Pool indices taking part in the run.
    """

    n_atoms: np.ndarray
    max_force: np.ndarray | None
    tags: dict[str, list[str]]
    candidates: np.ndarray


def picks_markdown(profile: PoolProfile, picks: dict[str, list[int]]) -> list[str]:
    """Markdown table of picks (all seeds and rounds of each method) against the pool.

    Shows the median atom count, the median largest atomic force, the share of picks among the
    pool's top 5% by largest force and, per named tag, each value's share of picks and of the
    pool: outlier chasing (high-force, tiny or rare structures) is seen at a glance.
    """
    pool = np.asarray(profile.candidates, dtype=np.int64)
    if not picks or not len(pool):
        return []
    header = (
        "| method | picks | median atoms | median max abs F (eV/Å) | in pool's top 5% max abs F |"
    )
    rule = "|---|---|---|---|---|"
    for tag in profile.tags:
        header += f" `{tag}`: picks % / pool % |"
        rule += "---|"
    threshold = (
        None
        if profile.max_force is None
        else float(np.quantile(profile.max_force[pool], TOP_FORCE_QUANTILE))
    )

    def row(name: str, indices: np.ndarray) -> str:
        max_force = profile.max_force
        force = "-" if max_force is None else f"{np.median(max_force[indices]):.2f}"
        top = (
            "-"
            if threshold is None or max_force is None
            else f"{100 * np.mean(max_force[indices] > threshold):.0f}%"
        )
        cells = [name, str(len(indices)), f"{np.median(profile.n_atoms[indices]):g}", force, top]
        for values in profile.tags.values():
            tagged = np.asarray(values, dtype=object)
            kinds = sorted(set(tagged[pool]), key=lambda v: -np.sum(tagged[pool] == v))
            shares = [
                f"{v}: {100 * np.mean(tagged[indices] == v):.0f} / "
                f"{100 * np.mean(tagged[pool] == v):.0f}"
                for v in kinds[:8]
            ]
            cells.append(", ".join(shares))
        return "| " + " | ".join(cells) + " |"

    lines = ["## Picks vs pool", "", header, rule, row("pool", pool)]
    for name, indices in picks.items():
        if indices:
            lines.append(row(name, np.asarray(indices, dtype=np.int64)))
    lines += [
        "",
        "Every pick of every seed and round. `pool`: the structures taking part. Top 5%: "
        "picks whose largest atomic force exceeds the pool's 95th percentile (5% of the pool).",
        "",
    ]
    return lines
