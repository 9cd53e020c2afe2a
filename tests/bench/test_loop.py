"""The benchmark loop with test doubles: resumability, budgets and output files.

The doubles stand in for the expensive parts (fine-tuning a real MLIP, computing features), so
that the loop's bookkeeping can be checked in well under a second: what is refitted,
re-evaluated and re-selected when a run resumes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from fntk.bench import (
    Acquisition,
    BenchData,
    BenchOptions,
    BenchPool,
    FittedModel,
    SelectionContext,
    read_results,
    run_benchmark,
)
from fntk.errors import InputError
from fntk.learn import ErrorMetrics, LabelledSet


class CountingLearner:
    """Test double of :class:`fntk.bench.Learner`: no model, errors fall with the label count.

    A double because the real learner fine-tunes SevenNet-0 (seconds per fit); here a "fit"
    only records its inputs, so the test can count fits and evaluations.
    """

    def __init__(self) -> None:
        self.fits: list[tuple[int, int]] = []  # (n_labels, seed)
        self.evaluations = 0

    def fit(self, labelled: LabelledSet, seed: int) -> FittedModel:
        self.fits.append((len(labelled), seed))
        return FittedModel(weights=None, energy_shift=None, seconds=0.01, n_steps_run=len(labelled))

    def evaluate(self, model: FittedModel, splits: Mapping[str, LabelledSet]):
        self.evaluations += 1
        error = 100.0 / model.n_steps_run  # n_steps_run carries the label count
        return {
            name: ErrorMetrics(len(s), int(s.n_atoms.sum()), error, error, error, error)
            for name, s in splits.items()
        }

    def predict_forces(self, model: FittedModel, structures: Sequence) -> list[np.ndarray]:
        return [np.zeros((len(a), 3)) for a in structures]

    def pretrained_backend(self):
        raise AssertionError("the double methods never need a backend")

    def fit_member(self, labelled: LabelledSet, seed: int) -> FittedModel:
        return self.fit(labelled, seed)

    def prepare_candidates(self, structures: Sequence) -> float:
        return 0.0

    def feature_chunk(self, options, structures: Sequence, index: np.ndarray):
        return None


class FirstCandidates:
    """Test double of an acquisition method: picks the lowest unlabelled pool indices.

    A double because real methods need a model; this one is deterministic and free, and it
    counts its preparations and acquisitions.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.prepared = 0
        self.acquired: list[tuple[int, int]] = []  # (seed, round)

    def prepare(self, data: BenchPool, learner, cache_dir: Path | None) -> float:
        self.prepared += 1
        assert all(a.calc is None for a in data.pool), "pool labels must stay hidden"
        return 2.0

    def acquire(self, context: SelectionContext, n: int) -> Acquisition:
        self.acquired.append((context.seed, context.round))
        assert len(context.labelled) == 3 + len(context.labelled_pool)
        return Acquisition(indices=context.candidates[:n], seconds_select=0.5)


def data(sets) -> BenchData:
    return BenchData(init=sets["init"], pool=sets["pool"], tests={"test": sets["test"]})


def run(sets, out, rounds, methods=("a", "b"), n_seeds=2, **options_given):
    learner = CountingLearner()
    doubles = {name: FirstCandidates(name) for name in methods}
    options = BenchOptions(
        rounds=rounds, batch=2, n_seeds=n_seeds, methods=("random",), **options_given
    )
    result = run_benchmark(data(sets), options, out, learner, methods=doubles)
    return result, learner, doubles


def test_fresh_run(tiny_sets, tmp_path):
    result, learner, doubles = run(tiny_sets, tmp_path, rounds=2)
    rows = read_results(tmp_path / "results.csv")
    assert rows == result.rows
    assert len(rows) == 3 * 2 * 2  # rounds 0-2 x 2 methods x 2 seeds x 1 split
    assert sorted({r.n_labels for r in rows}) == [3, 5, 7]
    # round 0 is fitted once per seed and shared; rounds 1-2 per method and seed
    assert len(learner.fits) == 2 + 2 * 2 * 2
    assert learner.evaluations == len(learner.fits)
    assert doubles["a"].prepared == 1 and len(doubles["a"].acquired) == 4
    round1 = [r for r in rows if r.round == 1]
    assert all(r.seconds_features == 2.0 and r.seconds_select == 0.5 for r in round1)
    assert all(r.seconds_features == 0.0 for r in rows if r.round != 1)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["runs"]["a/0"]["batches"] == [[0, 1], [2, 3]]
    assert state["runs"]["a/0"]["evaluated"] == 3
    for name in ("summary.md", "learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert result.n_evaluated == 12


def test_resume_of_a_state_written_before_the_options_nested(tiny_sets, tmp_path):
    """A state.json whose options key has the flat feature_dim/selector/... of earlier
    versions resumes; one that differs in a mapped option is refused in one line. Those
    versions ran the d = 32 sketch (today's default is the PCA basis)."""
    sketch = {"features": {"basis": "sketch", "dim": 32, "reference": "builtin-v1"}}
    run(tiny_sets, tmp_path, rounds=1, **sketch)
    path = tmp_path / "state.json"
    state = json.loads(path.read_text())
    key = state["options"]
    features, select = key.pop("features"), key.pop("select")
    key.update(
        feature_dim=features["dim"],
        selector=select["method"],
        shortlist_size=select["shortlist_size"],
        relative_noise=select["relative_noise"],
    )
    path.write_text(json.dumps(state))
    second, _, _ = run(tiny_sets, tmp_path, rounds=2, **sketch)
    assert second.n_evaluated == 4  # round 2 only: rounds 0-1 were kept
    with pytest.raises(InputError, match="other options"):
        run(tiny_sets, tmp_path, rounds=3)  # today's default map is not what it ran
    key["feature_dim"] = 7
    path.write_text(json.dumps(state))
    with pytest.raises(InputError, match="other options"):
        run(tiny_sets, tmp_path, rounds=3, **sketch)


def test_resume_adds_rounds_without_recomputing(tiny_sets, tmp_path):
    first, _, _ = run(tiny_sets, tmp_path, rounds=1)
    stamps = {(r.round, r.method, r.seed): r.finished_at for r in first.rows}
    second, learner, doubles = run(tiny_sets, tmp_path, rounds=2)
    assert second.n_evaluated == 4  # round 2 of 2 methods x 2 seeds
    assert learner.evaluations == 4
    # round 1 was the last round and never selected: it is refitted (not re-evaluated) to
    # select, then round 2 is fitted; round 0 needs nothing
    assert sorted(learner.fits) == sorted([(5, 0), (5, 1)] * 2 + [(7, 0), (7, 1)] * 2)
    assert all(s[1] == 1 for s in doubles["a"].acquired)
    rows = read_results(tmp_path / "results.csv")
    assert len(rows) == 12
    for r in rows:
        if r.round < 2:
            assert r.finished_at == stamps[(r.round, r.method, r.seed)]
    # the same call again does nothing
    third, learner, _ = run(tiny_sets, tmp_path, rounds=2)
    assert third.n_evaluated == 0 and learner.fits == [] and third.rows == rows


def test_resume_after_kill_drops_unfinished_rows(tiny_sets, tmp_path):
    run(tiny_sets, tmp_path, rounds=2)
    state_path = tmp_path / "state.json"
    state = json.loads(state_path.read_text())
    state["runs"]["b/1"]["evaluated"] = 2  # killed after the rows, before the state write
    state["runs"]["b/1"]["batches"] = state["runs"]["b/1"]["batches"][:2]
    state_path.write_text(json.dumps(state))
    second, learner, _ = run(tiny_sets, tmp_path, rounds=2)
    assert second.n_evaluated == 1 and learner.fits == [(7, 1)]
    assert len(second.rows) == 12
    assert len({(r.round, r.method, r.seed) for r in second.rows}) == 12


def test_more_seeds_and_methods_extend_the_run(tiny_sets, tmp_path):
    run(tiny_sets, tmp_path, rounds=1, methods=("a",), n_seeds=1)
    second, _, _ = run(tiny_sets, tmp_path, rounds=1, methods=("a", "b"), n_seeds=2)
    assert second.n_evaluated == 6
    assert {(r.method, r.seed) for r in second.rows} == {
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 1),
    }


def test_other_options_are_refused(tiny_sets, tmp_path):
    run(tiny_sets, tmp_path, rounds=1)
    options = BenchOptions(rounds=1, batch=3, n_seeds=2)
    with pytest.raises(InputError, match="other options"):
        run_benchmark(
            data(tiny_sets),
            options,
            tmp_path,
            CountingLearner(),
            methods={"a": FirstCandidates("a")},
        )


def test_pool_too_small(tiny_sets, tmp_path):
    options = BenchOptions(rounds=3, batch=2, pool_shift=("element:Pt",))  # 5 candidates
    with pytest.raises(InputError, match="need 6 pool structures but only 5"):
        run_benchmark(data(tiny_sets), options, tmp_path, CountingLearner(), methods={})


def test_a_method_returning_a_bad_batch_is_a_bug(tiny_sets, tmp_path):
    class Repeats(FirstCandidates):
        """Double that returns an already-labelled index."""

        def acquire(self, context, n):
            return Acquisition(indices=np.array([context.candidates[0]] * n))

    options = BenchOptions(rounds=1, batch=2, n_seeds=1)
    with pytest.raises(RuntimeError, match="invalid batch"):
        run_benchmark(
            data(tiny_sets), options, tmp_path, CountingLearner(), methods={"r": Repeats("r")}
        )


def test_summary_says_which_reference_energies_cannot_be_learnt(tiny_sets, tmp_path):
    """A test element no labelled structure has, and initial compositions (all Cu2O) that fix
    one combination of two E0s: both are said in summary.md instead of passing silently."""
    odd = tiny_sets["test"].structures[0].copy()
    odd.numbers[2] = 7  # its O becomes N, an element of no initial or pool structure
    sets = {**tiny_sets, "test": LabelledSet.from_structures([_relabelled(odd)])}
    run(sets, tmp_path, rounds=1)
    summary = " ".join((tmp_path / "summary.md").read_text().split())
    assert "test split test: element(s) N occur in no initial, pool or --e0-reference" in summary
    assert "energy errors are not learnable" in summary
    assert "fixes only 1 independent combination(s) of the reference energies (E0) of the 2 " in (
        summary
    )
    assert "elements O, Cu" in summary


def _relabelled(atoms):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((len(atoms), 3)))
    return atoms


def test_budgets_are_cumulative_picks(tiny_sets, tmp_path):
    learner = CountingLearner()
    doubles = {"a": FirstCandidates("a")}
    options = BenchOptions(budgets=(1, 3, 7), n_seeds=1, methods=("random",))
    result = run_benchmark(data(tiny_sets), options, tmp_path, learner, methods=doubles)
    assert sorted({r.n_labels for r in result.rows}) == [3, 4, 6, 10]  # 3 initial + budgets
    state = json.loads((tmp_path / "state.json").read_text())
    assert [len(b) for b in state["runs"]["a/0"]["batches"]] == [1, 2, 4]
    too_many = BenchOptions(budgets=(4, 11), n_seeds=1)
    with pytest.raises(InputError, match="need 11 pool structures but only 10"):
        run_benchmark(data(tiny_sets), too_many, tmp_path / "b", learner, methods={})


def test_tail_splits_hold_the_largest_force_structures(tiny_sets):
    from fntk.bench.loop import with_tail_splits

    split = LabelledSet.from_structures(
        [tiny_sets["pool"].structures[i % 10] for i in range(40)]
    )  # 40 structures: a 5% tail of 2 is too small, a 25% tail of 10 is made
    assert list(with_tail_splits({"id": split}, 0.05)) == ["id"]
    tails = with_tail_splits({"id": split}, 0.25)
    assert list(tails) == ["id", "id: top 25% max-F tail"]
    largest = np.array([np.linalg.norm(f, axis=1).max() for f in split.forces])
    tail = tails["id: top 25% max-F tail"]
    assert len(tail) == 10
    assert min(np.linalg.norm(f, axis=1).max() for f in tail.forces) >= np.sort(largest)[-10]


def test_proxy_learner_sees_the_same_labelled_sets(tiny_sets, tmp_path):
    learner, proxy = CountingLearner(), CountingLearner()
    doubles = {"a": FirstCandidates("a"), "b": FirstCandidates("b")}
    options = BenchOptions(rounds=2, batch=2, n_seeds=2, methods=("random",))
    result = run_benchmark(
        data(tiny_sets), options, tmp_path, learner, methods=doubles, proxy=proxy
    )
    assert sorted(proxy.fits) == sorted(learner.fits)
    proxy_rows = read_results(tmp_path / "proxy_results.csv")
    assert [(r.round, r.method, r.seed, r.n_labels) for r in proxy_rows] == [
        (r.round, r.method, r.seed, r.n_labels) for r in result.rows
    ]
    assert "rank the methods like the real learner" in result.summary
    # resuming keeps the proxy rows of the finished rounds and adds the new round's
    more = BenchOptions(rounds=3, batch=2, n_seeds=2, methods=("random",))
    again = run_benchmark(
        data(tiny_sets), more, tmp_path, CountingLearner(), methods=doubles, proxy=proxy
    )
    rows = read_results(tmp_path / "proxy_results.csv")
    assert len(rows) == len(again.rows) == 16


class LabelCountEstimator:
    """Test double of :class:`fntk.bench.estimates.RoundErrorEstimator`: predicts 90 meV/A
    per label count's error. A double because the real one needs a model's features; this one
    records what the loop asks it, so the test can check the columns and round-0 sharing."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []  # (n_labels, seed)

    def estimate(self, model, labelled, tests, seed):
        from fntk.bench.estimates import RoundEstimates, SplitEstimate

        self.asked.append((len(labelled), seed))
        splits = {name: SplitEstimate(0.9 * 100.0 / len(labelled), 0.5) for name in tests}
        return RoundEstimates(splits, seconds=0.25)


def test_estimates_fill_their_columns_and_the_summary(tiny_sets, tmp_path):
    estimator = LabelCountEstimator()
    doubles = {"a": FirstCandidates("a"), "b": FirstCandidates("b")}
    options = BenchOptions(rounds=1, batch=2, n_seeds=1, methods=("random",))
    result = run_benchmark(
        data(tiny_sets), options, tmp_path, CountingLearner(), methods=doubles, estimator=estimator
    )
    assert sorted(estimator.asked) == [(3, 0), (5, 0), (5, 0)]  # round 0 once, shared
    for row in read_results(tmp_path / "results.csv"):
        assert row.predicted_force_rmse_mev_per_ang == pytest.approx(90.0 / row.n_labels)
        assert row.force_rmse_spearman == 0.5 and row.seconds_estimates == 0.25
    assert "## Predicted vs measured test force RMSE" in result.summary
    assert "| a | 30 / 33 (ρ 0.50) | 18 / 20 (ρ 0.50) |" in result.summary
    # 4 rounds of 0.25 s against 4 x (0.01 s fit + the evaluation time)
    assert "Cost of the estimates: 1.0 s against" in result.summary


def test_no_estimator_leaves_the_columns_empty(tiny_sets, tmp_path):
    result, _, _ = run(tiny_sets, tmp_path, rounds=1)
    assert all(np.isnan(r.predicted_force_rmse_mev_per_ang) for r in result.rows)
    assert "Predicted vs measured" not in result.summary
