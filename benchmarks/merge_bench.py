"""Join benchmark folders that ran different methods on the same data, seeds and options.

A benchmark split over processes (one per method, to use more cores) writes one folder per
process; each holds the shared round-0 rows under its own method name, so joining is a
concatenation. Writes ``results.csv`` (and ``proxy_results.csv`` when every folder has one),
``summary.md`` and ``learning_curves.png`` to the output folder.

    python benchmarks/merge_bench.py OUT_DIR RUN_DIR [RUN_DIR ...]

``RUN_DIR=NAME`` renames the run's methods to NAME (e.g. a second ``joint`` run with another
feature map, ``runs/xtb-md-joint-pca16=joint-pca16``); its shared round-0 rows then appear under
NAME as well. Runs must share data, seeds and options apart from the method's own.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from fntk.bench import plot_learning_curves, read_results, summary_markdown, write_results
from fntk.io import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", nargs="+", help="RUN_DIR or RUN_DIR=NAME")
    parser.add_argument("--proxy-name", default="ridge")
    args = parser.parse_args()
    runs = [_parse_run(spec) for spec in args.runs]
    rows = [r for run, name in runs for r in _renamed(read_results(run / "results.csv"), name)]
    proxy_files = [(run / "proxy_results.csv", name) for run, name in runs]
    proxy_rows = (
        [r for path, name in proxy_files for r in _renamed(read_results(path), name)]
        if all(path.is_file() for path, _ in proxy_files)
        else None
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out / "results.csv", rows)
    if proxy_rows is not None:
        write_results(args.out / "proxy_results.csv", proxy_rows)
    notes = [f"joined from {', '.join(args.runs)}"]
    summary = summary_markdown(rows, notes=notes, proxy_rows=proxy_rows, proxy_name=args.proxy_name)
    atomic_write_text(args.out / "summary.md", summary)
    plot_learning_curves(rows, args.out / "learning_curves.png")
    print(summary)


def _parse_run(spec: str) -> tuple[Path, str | None]:
    folder, _, name = spec.partition("=")
    return Path(folder), name or None


def _renamed(rows: list, name: str | None) -> list:
    return rows if name is None else [dataclasses.replace(r, method=name) for r in rows]


if __name__ == "__main__":
    main()
