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

from fntk.bench.saving import SeedCurves, bootstrap_saving
from fntk.io import atomic_write_text
from fntk.report.profile import (
    SUMMARY_COLUMNS,
    common_values,
    force_threshold,
    set_summary,
    share,
)

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


@dataclass(frozen=True, eq=False)
class ResultRow:
    """One line of ``results.csv``; two rows are equal when every field is, NaN (a missing
    value, also when read back from the file) equal to NaN.

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
    predicted_force_rmse_mev_per_ang : float
        The calibrated error model's prediction of ``force_rmse_mev_per_ang``
        (:mod:`fntk.bench.estimates`), meV/Angstrom; NaN without an estimate (rows written
        before this column existed, ``calibration_fraction`` 0, too few labels).
    force_rmse_spearman : float
        Spearman correlation of predicted and measured per-structure force RMSE on the split.
    seconds_estimates : float
        Cost of the round's estimates on all splits, s (features, extra fit, calibration).
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
    predicted_force_rmse_mev_per_ang: float = float("nan")
    force_rmse_spearman: float = float("nan")
    seconds_estimates: float = 0.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResultRow):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]  # equal rows need not hash alike (NaN)

    @property
    def seconds_acquisition(self) -> float:
        """Features + extra training + selection, s."""
        return self.seconds_features + self.seconds_training + self.seconds_select


def _same(a: object, b: object) -> bool:
    """``a == b``, or both float NaN."""
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


RESULT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
_LEGACY_COLUMNS = (
    RESULT_COLUMNS[:-4],  # before n_steps_kept (read as -1)
    RESULT_COLUMNS[:-3],  # before the predicted errors (read as NaN, cost 0)
)
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
        if columns not in (RESULT_COLUMNS, *_LEGACY_COLUMNS):
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

_TAIL_MARK = "% max-F tail"


def tail_split_name(split: str, fraction: float) -> str:
    """Name of the split of ``split``'s ``fraction`` largest-force structures."""
    return f"{split}: top {100 * fraction:g}{_TAIL_MARK}"


def is_tail_split(split: str) -> bool:
    """Whether ``split`` is a tail split (:func:`tail_split_name`)."""
    return split.endswith(_TAIL_MARK)


def seed_curves(
    rows: Sequence[ResultRow], method: str, split: str, metric: str
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Per-seed curve of ``metric`` for (method, split).

    Returns
    -------
    seeds : list of int
        Sorted seeds.
    n_labels : ndarray, shape (n_rounds,)
        Labelled-set size of each round that every seed finished.
    table : ndarray, shape (n_seeds, n_rounds)
    """
    by_round: dict[int, dict[int, ResultRow]] = defaultdict(dict)
    for row in rows:
        if row.method == method and row.split == split:
            by_round[row.round][row.seed] = row
    seeds = sorted(set().union(*(set(v) for v in by_round.values()))) if by_round else []
    complete = sorted(r for r, v in by_round.items() if set(v) == set(seeds))
    table = np.array(
        [[getattr(by_round[r][s], metric) for r in complete] for s in seeds], dtype=np.float64
    ).reshape(len(seeds), len(complete))
    n_labels = np.array([by_round[r][seeds[0]].n_labels for r in complete], dtype=np.float64)
    return seeds, n_labels, table


def paired_curves(
    rows: Sequence[ResultRow], method: str, split: str, metric: str = "force_rmse_mev_per_ang"
) -> SeedCurves | None:
    """Random's and ``method``'s per-seed curves on ``split`` over their common seeds and
    rounds (:data:`~fntk.bench.saving.SeedCurves`); ``None`` without two shared rounds.

    Both curves are cut to the rounds both finished, so an unfinished run is compared at the
    budgets it reached (not charged as "never reaching" random's later errors).
    """
    ref_seeds, ref_n, ref_table = seed_curves(rows, REFERENCE_METHOD, split, metric)
    seeds, n, table = seed_curves(rows, method, split, metric)
    common = sorted(set(ref_seeds) & set(seeds))
    m = min(len(ref_n), len(n))
    if m < 2 or not common:
        return None
    ref_rows = [ref_seeds.index(s) for s in common]
    rows_ = [seeds.index(s) for s in common]
    return ref_n[:m], ref_table[ref_rows, :m], n[:m], table[rows_, :m]


@dataclass(frozen=True)
class Saving:
    """Label saving of one method against random (:mod:`fntk.bench.saving`).

    Attributes
    ----------
    method : str
    splits : tuple of str
        Splits averaged over.
    saving, low, high : float
        Mean saving over budgets and splits, and its bootstrap interval over seeds (95%).
    n_seeds : int
    """

    method: str
    splits: tuple[str, ...]
    saving: float
    low: float
    high: float
    n_seeds: int


def savings(
    rows: Sequence[ResultRow],
    splits: Sequence[str],
    metric: str = "force_rmse_mev_per_ang",
) -> list[Saving]:
    """:class:`Saving` of every method over ``splits`` (those where it and random have two
    shared rounds), in first-seen method order."""
    out = []
    for method in dict.fromkeys(r.method for r in rows):
        curves = {s: c for s in splits if (c := paired_curves(rows, method, s, metric))}
        if not curves:
            continue
        saving, low, high = bootstrap_saving(curves)
        n_seeds = next(iter(curves.values()))[1].shape[0]
        out.append(Saving(method, tuple(curves), saving, low, high, n_seeds))
    return out


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
    proxy_rows: Sequence[ResultRow] | None = None,
    proxy_name: str = "proxy",
) -> str:
    """Markdown summary: label savings against random (:func:`saving_markdown`), one table
    per split (see :func:`summarize`), the agreement of a proxy learner's ranking with the
    learner's (:func:`agreement_markdown`, given ``proxy_rows``), the picks-vs-pool table
    (:func:`picks_markdown`, given a ``profile`` and the ``picks`` of each method), the
    predicted against measured test errors (:func:`estimates_markdown`), then ``notes``."""
    summaries = summarize(rows)
    has_reference = any(s.method == REFERENCE_METHOD for s in summaries)
    lines = ["# Active-learning benchmark", "", *saving_markdown(rows)]
    if proxy_rows:
        lines += agreement_markdown(rows, proxy_rows, proxy_name)
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
    lines += estimates_markdown(rows)
    if profile is not None and picks:
        lines += picks_markdown(profile, picks)
    lines += [f"- {note}" for note in [*_pretrained_notes(rows), *notes]]
    return "\n".join(lines).rstrip() + "\n"


def estimates_markdown(rows: Sequence[ResultRow]) -> list[str]:
    """Markdown: per split, the calibrated prediction of the test force RMSE next to the
    measured one and the per-structure rank correlation, mean over seeds, by method and
    labelled-set size; then what the estimates cost against fine-tuning and evaluation
    (empty when no row has an estimate)."""
    estimated = [r for r in rows if np.isfinite(r.predicted_force_rmse_mev_per_ang)]
    if not estimated:
        return []
    lines = [
        "## Predicted vs measured test force RMSE",
        "",
        "Each cell: predicted / measured force RMSE (meV/Å), and ρ, the Spearman correlation "
        "of predicted and measured per-structure force RMSE; mean over seeds. The prediction "
        "is the posterior variance of the pretrained model's joint features given the "
        "labelled set, calibrated on a slice held out of it (fntk.bench.estimates).",
        "",
    ]
    for split in dict.fromkeys(r.split for r in estimated):
        mine = [r for r in estimated if r.split == split]
        sizes = sorted({r.n_labels for r in mine})
        lines += [
            f"{split}:",
            "",
            "| method | " + " | ".join(f"{n:g}" for n in sizes) + " |",
            "|---|" + "---|" * len(sizes),
        ]
        for method in dict.fromkeys(r.method for r in mine):
            cells = []
            for n in sizes:
                cell = [r for r in mine if r.method == method and r.n_labels == n]
                if not cell:
                    cells.append("")
                    continue
                predicted = np.mean([r.predicted_force_rmse_mev_per_ang for r in cell])
                measured = np.mean([r.force_rmse_mev_per_ang for r in cell])
                rhos = [r.force_rmse_spearman for r in cell if np.isfinite(r.force_rmse_spearman)]
                rho = f"{np.mean(rhos):.2f}" if rhos else "-"  # fewer than 3 structures
                cells.append(f"{predicted:.0f} / {measured:.0f} (ρ {rho})")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    # Timings repeat on every split of a round: one split's rows count each round once.
    first = [r for r in rows if r.split == rows[0].split]
    estimates = sum(r.seconds_estimates for r in first)
    model = sum(r.seconds_finetune + r.seconds_evaluate for r in first)
    ratio = estimates / model if model > 0 else float("nan")
    lines += [
        f"Cost of the estimates: {estimates:.1f} s against {model:.1f} s of fine-tuning and "
        f"evaluation of the same rounds (ratio {ratio:.3f}).",
        "",
    ]
    return lines


def _format_saving(saving: Saving) -> str:
    if not np.isfinite(saving.saving):
        return "-"
    return f"{100 * saving.saving:+.0f}% [{100 * saving.low:+.0f}, {100 * saving.high:+.0f}]"


def saving_markdown(rows: Sequence[ResultRow]) -> list[str]:
    """Markdown: each method's label saving against random on every split, and averaged over
    the main splits and over their max-force tails (empty without a random run)."""
    if not any(r.method == REFERENCE_METHOD for r in rows):
        return []
    splits = [
        s
        for s in dict.fromkeys(r.split for r in rows)
        if not all(np.isnan(r.force_rmse_mev_per_ang) for r in rows if r.split == s)
    ]
    main = [s for s in splits if not is_tail_split(s)]
    tails = [s for s in splits if is_tail_split(s)]
    columns: list[tuple[str, list[str]]] = [(s, [s]) for s in splits]
    columns.append((f"mean over {len(main)} splits", main))
    if tails:
        columns.append((f"mean over {len(tails)} tails", tails))
    table = {name: {m.method: m for m in savings(rows, members)} for name, members in columns}
    methods = [m for m in dict.fromkeys(r.method for r in rows) if m != REFERENCE_METHOD]
    if not any(table[name].get(m) for name, _ in columns for m in methods):
        return []
    lines = [
        "## Label saving against random (force RMSE)",
        "",
        "| saving of | " + " | ".join(name for name, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for method in methods:
        cells = [
            _format_saving(table[name][method]) if method in table[name] else "-"
            for name, _ in columns
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    n_seeds = max((m.n_seeds for by in table.values() for m in by.values()), default=0)
    lines += [
        "",
        "Saving = 1 - labels the method needs to reach random's mean force RMSE at a budget "
        "(its mean curve interpolated linearly in log-labels) / that budget, averaged over "
        "random's budgets after round 0; where the method never reaches it: labels random "
        "needs to reach the method's final error / the method's last budget - 1. Brackets: "
        f"95% bootstrap interval over {n_seeds} seed(s) (paired with random's). Tails: each "
        "split's structures with the largest atomic reference forces.",
        "",
    ]
    return lines


def agreement_markdown(
    rows: Sequence[ResultRow], proxy_rows: Sequence[ResultRow], proxy_name: str
) -> list[str]:
    """Markdown: how the proxy learner ranks the methods (on the same picks) against the
    learner: Kendall's tau and Spearman's rho over methods of the final force RMSE and of
    the label saving, per split."""
    from scipy.stats import kendalltau, spearmanr

    methods = list(dict.fromkeys(r.method for r in rows))
    splits = [s for s in dict.fromkeys(r.split for r in rows) if not is_tail_split(s)]
    if len(methods) < 2:
        return []
    lines = [
        f"## Does the {proxy_name} proxy rank the methods like the real learner?",
        "",
        "| split | final force RMSE: learner / proxy (meV/Å) | Kendall tau | Spearman rho "
        "| saving: learner / proxy | Kendall tau | Spearman rho |",
        "|---|---|---|---|---|---|---|",
    ]
    taus = []
    for split in splits:
        final = [_final_force(rows, m, split) for m in methods]
        final_proxy = [_final_force(proxy_rows, m, split) for m in methods]
        save = {x.method: x.saving for x in savings(rows, [split])}
        save_proxy = {x.method: x.saving for x in savings(proxy_rows, [split])}
        a = [save.get(m, np.nan) for m in methods]
        b = [save_proxy.get(m, np.nan) for m in methods]

        def corr(x: list[float], y: list[float]) -> tuple[float, float]:
            if np.isnan(x).any() or np.isnan(y).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
                return float("nan"), float("nan")
            return float(kendalltau(x, y)[0]), float(spearmanr(x, y)[0])

        tau_f, rho_f = corr(final, final_proxy)
        tau_s, rho_s = corr(a, b)
        taus.append(tau_f)
        pairs = ", ".join(f"{m} {x:.0f} / {y:.0f}" for m, x, y in zip(methods, final, final_proxy))
        save_pairs = ", ".join(
            f"{m} {100 * x:+.0f}% / {100 * y:+.0f}%"
            for m, x, y in zip(methods, a, b)
            if m != REFERENCE_METHOD
        )
        lines.append(
            f"| {split} | {pairs} | {tau_f:.2f} | {rho_f:.2f} | {save_pairs or '-'} "
            f"| {tau_s:.2f} | {rho_s:.2f} |"
        )
    lines += [
        "",
        f"The {proxy_name} learner is fitted on exactly the labelled sets the learner saw "
        "(same picks, same seeds); rank correlations over the methods, 1 = same order, "
        f"-1 = reversed, nan = a tie or too few points. Mean Kendall tau of final force RMSE "
        f"over splits: {np.nanmean(taus) if not np.isnan(taus).all() else float('nan'):.2f}.",
        "",
    ]
    return lines


def _final_force(rows: Sequence[ResultRow], method: str, split: str) -> float:
    """Mean over seeds of the final complete round's force RMSE (NaN when absent)."""
    seeds, _, table = seed_curves(rows, method, split, "force_rmse_mev_per_ang")
    return float(table[:, -1].mean()) if seeds and table.shape[1] else float("nan")


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

    The cells of :func:`fntk.report.profile.set_summary` (median atom count, median largest
    atomic force, share above the pool's 95th percentile of it) and, per named tag, each
    value's share of picks and of the pool: outlier chasing (high-force, tiny or rare
    structures) is seen at a glance.
    """
    pool = np.asarray(profile.candidates, dtype=np.int64)
    if not picks or not len(pool):
        return []
    n_pool = len(profile.n_atoms)
    forces = np.full(n_pool, np.nan) if profile.max_force is None else profile.max_force
    threshold = force_threshold(forces[pool])
    tags = {key: np.asarray(values, dtype=object) for key, values in profile.tags.items()}
    common = {key: common_values(list(tagged[pool])) for key, tagged in tags.items()}
    header = "| method | picks | " + " | ".join(SUMMARY_COLUMNS) + " |"
    header += "".join(f" `{tag}`: picks % / pool % |" for tag in tags)
    rule = "|---|---|" + "---|" * (len(SUMMARY_COLUMNS) + len(tags))

    def row(name: str, indices: np.ndarray) -> str:
        cells = [name, str(len(indices))]
        cells += set_summary(profile.n_atoms[indices], forces[indices], threshold)
        for key, tagged in tags.items():
            cells.append(
                ", ".join(
                    f"{v}: {100 * share(tagged[indices], v):.0f} / "
                    f"{100 * share(tagged[pool], v):.0f}"
                    for v in common[key]
                )
            )
        return "| " + " | ".join(cells) + " |"

    lines = ["## Picks vs pool", "", header, rule, row("pool", pool)]
    for name, indices in picks.items():
        if indices:
            lines.append(row(name, np.asarray(indices, dtype=np.int64)))
    lines += [
        "",
        "Every pick of every seed and round. `pool`: the structures taking part. The last "
        "force column: picks whose largest atomic force exceeds the pool's 95th percentile "
        "(5% of the pool).",
        "",
    ]
    return lines
