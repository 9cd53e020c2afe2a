"""Join benchmark folders that ran different methods on the same data, seeds and options.

A benchmark split over processes (one per method, to use more cores) writes one folder per
process; each holds the shared round-0 rows under its own method name, so joining is a
concatenation. Writes ``results.csv`` (and ``proxy_results.csv`` when every folder has one),
``summary.md`` and ``learning_curves.png`` to the output folder.

    python benchmarks/merge_bench.py OUT_DIR RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fntk.bench import plot_learning_curves, read_results, summary_markdown, write_results
from fntk.io import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--proxy-name", default="ridge")
    args = parser.parse_args()
    rows = [r for run in args.runs for r in read_results(run / "results.csv")]
    proxy_files = [run / "proxy_results.csv" for run in args.runs]
    proxy_rows = (
        [r for path in proxy_files for r in read_results(path)]
        if all(p.is_file() for p in proxy_files)
        else None
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out / "results.csv", rows)
    if proxy_rows is not None:
        write_results(args.out / "proxy_results.csv", proxy_rows)
    notes = [f"joined from {', '.join(str(r) for r in args.runs)}"]
    summary = summary_markdown(rows, notes=notes, proxy_rows=proxy_rows, proxy_name=args.proxy_name)
    atomic_write_text(args.out / "summary.md", summary)
    plot_learning_curves(rows, args.out / "learning_curves.png")
    print(summary)


if __name__ == "__main__":
    main()
