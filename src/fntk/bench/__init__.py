"""Active-learning benchmark: which acquisition method reaches low errors with fewest labels.

Public API::

    from fntk.bench import BenchOptions, run_benchmark_files
    run = run_benchmark_files(["init.xyz"], ["pool.xyz"], {"test_id": ["test_id.xyz"]},
                              "results/", BenchOptions(rounds=3, batch=5, n_seeds=2))
    print(run.summary)

- :mod:`~fntk.bench.options`: :class:`BenchOptions`, :func:`build_bench_options` (``--quick``).
- :mod:`~fntk.bench.loop`: :func:`run_benchmark` (resumable loop), :func:`run_benchmark_files`.
- :mod:`~fntk.bench.methods`: random, committee and feature-map acquisition.
- :mod:`~fntk.bench.learner`: fine-tuning, evaluation and force prediction behind a protocol.
- :mod:`~fntk.bench.results`, :mod:`~fntk.bench.plots`: ``results.csv``, summary, curves.
- :mod:`~fntk.bench.shift`: pool-shift filters.
"""

from fntk.bench.learner import FinetuneLearner, FittedModel, Learner
from fntk.bench.loop import (
    BenchData,
    BenchRun,
    load_bench_data,
    run_benchmark,
    run_benchmark_files,
    select_candidates,
)
from fntk.bench.methods import (
    Acquisition,
    AcquisitionMethod,
    BenchPool,
    CommitteeMethod,
    FeatureMethod,
    RandomMethod,
    SelectionContext,
    build_method,
    force_disagreement,
)
from fntk.bench.options import (
    METHOD_NAMES,
    QUICK_PRESET,
    BenchOptions,
    MethodName,
    build_bench_options,
)
from fntk.bench.plots import plot_learning_curves
from fntk.bench.results import (
    RESULT_COLUMNS,
    MethodSummary,
    ResultRow,
    labels_to_reach,
    mean_curves,
    read_results,
    summarize,
    summary_markdown,
    write_results,
)
from fntk.bench.shift import PoolShift, apply_pool_shifts, parse_pool_shift

__all__ = [
    "METHOD_NAMES",
    "QUICK_PRESET",
    "RESULT_COLUMNS",
    "Acquisition",
    "AcquisitionMethod",
    "BenchData",
    "BenchOptions",
    "BenchPool",
    "BenchRun",
    "CommitteeMethod",
    "FeatureMethod",
    "FinetuneLearner",
    "FittedModel",
    "Learner",
    "MethodName",
    "MethodSummary",
    "PoolShift",
    "RandomMethod",
    "ResultRow",
    "SelectionContext",
    "apply_pool_shifts",
    "build_bench_options",
    "build_method",
    "force_disagreement",
    "labels_to_reach",
    "load_bench_data",
    "mean_curves",
    "parse_pool_shift",
    "plot_learning_curves",
    "read_results",
    "run_benchmark",
    "run_benchmark_files",
    "select_candidates",
    "summarize",
    "summary_markdown",
    "write_results",
]
