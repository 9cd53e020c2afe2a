"""Malformed inputs and options: each is one clear line, exit 1 (usage errors 2), before compute.

Every CLI case asserts the exit code, a single error line naming what is wrong (file and frame
where there is one), that every input file is byte-identical afterwards (sha256) and that no
output or temporary file was left. No case loads a model: each fails before that.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from typer.main import get_command
from typer.testing import CliRunner

from fntk.cli.main import app
from fntk.errors import InputError
from fntk.io import StructureChunk, atomic_write_text, read_labels, read_structures, write_extxyz
from fntk.pipeline import run_folder
from fntk.pipeline.options import build_run_options
from fntk.predict import ENERGY_KEY, FORCES_KEY, estimate_bytes, plan_batches, predict_chunk

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _labelled(name: str = "H2O", energy: float = -1.0) -> Atoms:
    atoms = molecule(name)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    return atoms


def _xyz(path: Path, n: int = 2) -> Path:
    ase.io.write(path, [_labelled() for _ in range(n)], format="extxyz")
    return path


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden ones too: leftover temporaries show up)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _distinct(path: Path, n: int = 2) -> Path:
    """``n`` different labelled water molecules (no two are duplicates)."""
    frames = []
    for k in range(n):
        atoms = molecule("H2O")
        atoms.positions[0, 0] += 0.01 * k
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((3, 3)))
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


def _cols(tmp: Path) -> Path:
    path = _xyz(tmp / "cols.xyz")
    lines = path.read_text().splitlines()
    lines[3] += " 9.9"  # second atom line of frame 0
    path.write_text("\n".join(lines) + "\n")
    return path


def _extra_column(tmp: Path) -> list[str]:
    return ["predict", str(_cols(tmp)), "-o", str(tmp / "out.xyz")]


def _glob_onto_input(tmp: Path) -> list[str]:
    (tmp / "g").mkdir()
    _xyz(tmp / "g" / "a.xyz")
    _xyz(tmp / "g" / "b.xyz")
    return ["predict", str(tmp / "g" / "*.xyz"), "-o", str(tmp / "g" / "b.xyz")]


def _dotdot_onto_input(tmp: Path) -> list[str]:
    (tmp / "g").mkdir()
    _xyz(tmp / "g" / "a.xyz")
    return ["predict", str(tmp / "g" / "a.xyz"), "-o", str(tmp / "g" / ".." / "g" / "a.xyz")]


def _predict_into_dir(tmp: Path) -> list[str]:
    _xyz(tmp / "a.xyz")
    (tmp / "d").mkdir()
    (tmp / "d" / "keep.txt").write_text("mine\n")
    return ["predict", str(tmp / "a.xyz"), "-o", str(tmp / "d")]


def _predict_read_only(tmp: Path) -> list[str]:
    _xyz(tmp / "a.xyz")
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o555)
    return ["predict", str(tmp / "a.xyz"), "-o", str(tmp / "ro" / "sub" / "out.xyz")]


def _text_db(tmp: Path) -> list[str]:
    (tmp / "notes.db").write_text("this is not a database\n")
    return ["predict", str(tmp / "notes.db"), "-o", str(tmp / "out.xyz")]


def _device(tmp: Path) -> list[str]:
    _xyz(tmp / "a.xyz")
    return ["predict", str(tmp / "a.xyz"), "-o", str(tmp / "out.xyz"), "--device", "gpu0"]


def _data_into_user_folder(tmp: Path) -> list[str]:
    (tmp / "d").mkdir()
    _xyz(tmp / "d" / "pool.xyz")
    (tmp / "d" / "README.md").write_text("my notes\n")
    return ["data", "make", "emt-adsorbates", "-o", str(tmp / "d"), "--size", "pool=2"]


def _data_onto_file(tmp: Path) -> list[str]:
    (tmp / "f").write_text("a file\n")
    return ["data", "make", "emt-adsorbates", "-o", str(tmp / "f")]


def _data_bad_split(tmp: Path) -> list[str]:
    return ["data", "make", "emt-adsorbates", "-o", str(tmp / "new"), "--size", "nosuch=3"]


def _data_unknown_name(tmp: Path) -> list[str]:
    return ["data", "make", "oc21", "-o", str(tmp / "new")]


def _data_size(value: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["data", "make", "emt-adsorbates", "-o", str(tmp / "new"), "--size", value]


def _shortlist_below_n(tmp: Path) -> list[str]:
    _xyz(tmp / "p.xyz")
    return ["select", str(tmp / "p.xyz"), "-o", str(tmp / "run"), "-n", "3", "--shortlist", "1"]


def _select_onto_file(tmp: Path) -> list[str]:
    _xyz(tmp / "p.xyz")
    (tmp / "f").write_text("a file\n")
    return ["select", str(tmp / "p.xyz"), "-o", str(tmp / "f")]


def _select(*extra: str) -> Callable[[Path], list[str]]:
    """``fntk select p.xyz -o run`` on two different structures, with ``extra`` options."""

    def build(tmp: Path) -> list[str]:
        _distinct(tmp / "p.xyz")
        return ["select", str(tmp / "p.xyz"), "-o", str(tmp / "run"), *extra]

    return build


def _select_pool_all_train(tmp: Path) -> list[str]:
    train = _distinct(tmp / "t.xyz")  # the same two structures as the pool
    return _select("-n", "1", "-t", str(train))(tmp)


def _select_pool_repeats(tmp: Path) -> list[str]:
    _xyz(tmp / "same.xyz")  # two identical frames
    return ["select", str(tmp / "same.xyz"), "-o", str(tmp / "run"), "-n", "2"]


def _select_bad_frame(tmp: Path) -> list[str]:
    return ["select", str(_cols(tmp)), "-o", str(tmp / "run"), "-n", "1"]


def _select_missing_pool(tmp: Path) -> list[str]:
    return ["select", str(tmp / "none.xyz"), "-o", str(tmp / "run")]


def _select_bad_config(tmp: Path) -> list[str]:
    (tmp / "c.yaml").write_text("n: [1\n")
    return _select("--config", str(tmp / "c.yaml"))(tmp)


def _run_folder(tmp: Path, status: str, *extra_files: str) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "run.json").write_text(json.dumps({"status": status}) + "\n")
    for name in ("selected.xyz", *extra_files):
        (tmp / "run" / name).write_text("x\n")


def _select_into_complete_run(tmp: Path) -> list[str]:
    _run_folder(tmp, "complete")
    return _select("-n", "1")(tmp)


def _select_into_incomplete_run_with_user_files(tmp: Path) -> list[str]:
    _run_folder(tmp, "running", "mine.txt")
    return _select("-n", "1")(tmp)


def _features(source: Callable[[Path], Path], *extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["features", str(source(tmp)), "-o", str(tmp / "store"), *extra]


def _features_onto_file(tmp: Path) -> list[str]:
    (tmp / "f").write_text("a file\n")
    return ["features", str(_distinct(tmp / "p.xyz")), "-o", str(tmp / "f")]


def _bench(test: str, pool: str = "p.xyz") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        _distinct(tmp / "p.xyz")
        files = ["--init", str(tmp / "p.xyz"), "--pool", str(tmp / pool)]
        return ["bench", *files, "--test", test.format(tmp=tmp), "-o", str(tmp / "b")]

    return build


def _write(name: str, text: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / name).write_text(text)
        return tmp / name

    return build


def _select_file(source: Callable[[Path], Path], *extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["select", str(source(tmp)), "-o", str(tmp / "run"), "-n", "1", *extra]


def _unlabelled(path: Path) -> Path:
    ase.io.write(path, [molecule("H2O"), molecule("NH3")], format="extxyz")
    return path


def _bench_unlabelled_pool(tmp: Path) -> list[str]:
    _distinct(tmp / "i.xyz")
    _unlabelled(tmp / "p.xyz")
    files = ["--init", str(tmp / "i.xyz"), "--pool", str(tmp / "p.xyz")]
    return ["bench", *files, "--test", f"t={tmp / 'i.xyz'}", "-o", str(tmp / "b")]


def _bench_methods(value: str) -> Callable[[Path], list[str]]:
    return lambda tmp: [*_bench("t={tmp}/p.xyz")(tmp), "--methods", value]


def _select_store_is_file(tmp: Path) -> list[str]:
    (tmp / "feats").write_text("a file\n")
    return _select("-n", "1", "--store", str(tmp / "feats"))(tmp)


def _select_store_foreign_meta(tmp: Path) -> list[str]:
    (tmp / "proj").mkdir()
    (tmp / "proj" / "meta.json").write_text('{"title": "my project"}\n')
    return _select("-n", "1", "--store", str(tmp / "proj"))(tmp)


def _features_into_foreign_meta(tmp: Path) -> list[str]:
    (tmp / "proj").mkdir()
    (tmp / "proj" / "meta.json").write_text('{"title": "my project"}\n')
    (tmp / "proj" / "data.csv").write_text("a,b\n")
    return ["features", str(_distinct(tmp / "p.xyz")), "-o", str(tmp / "proj")]


def _select_input_in_output(tmp: Path) -> list[str]:
    _run_folder(tmp, "complete")
    _distinct(tmp / "run" / "selected.xyz")
    pool = str(tmp / "run" / "selected.xyz")
    return ["select", pool, "-o", str(tmp / "run"), "-n", "1", "--overwrite"]


def _predict_onto_existing(tmp: Path) -> list[str]:
    _xyz(tmp / "pool1.xyz")
    _distinct(tmp / "labelled.xyz")  # someone's labelled data, not an input of this command
    return ["predict", str(tmp / "pool1.xyz"), "-o", str(tmp / "labelled.xyz")]


def _complete_run(tmp: Path, n: int, *extra_files: str) -> None:
    """A complete ``fntk select -n n`` run's folder, as the job writes it (all 7 outputs)."""
    from fntk.pipeline import OUTPUT_NAMES

    (tmp / "run").mkdir()
    record = {
        "status": "complete",
        "options": json.loads(build_run_options(n=n).model_dump_json()),
        "inputs": {"pool": [str(tmp / "p.xyz")], "train": []},
    }
    for name in OUTPUT_NAMES:
        (tmp / "run" / name).write_text(f"{name} of the n={n} run\n")
    (tmp / "run" / "run.json").write_text(json.dumps(record) + "\n")
    for name in extra_files:
        (tmp / "run" / name).write_text("the user's\n")


def _resume_over_complete(n_done: int, n_asked: int, *extra_files: str):
    def build(tmp: Path) -> list[str]:
        _complete_run(tmp, n_done, *extra_files)
        return _select("-n", str(n_asked), "--resume")(tmp)

    return build


def _resume_other_options(tmp: Path) -> list[str]:
    _complete_run(tmp, 3)
    record = json.loads((tmp / "run" / "run.json").read_text())
    (tmp / "run" / "run.json").write_text(json.dumps({**record, "status": "running"}) + "\n")
    (tmp / "run" / "feature-store").mkdir()
    return _select("-n", "2", "--resume")(tmp)


def _demo_unknown_model(tmp: Path) -> list[str]:
    return ["demo", "-o", str(tmp / "demo"), "--model", "nosuch"]


# (name, build the case in tmp -> argv, exit code, words the one line must hold)
CASES: list[tuple[str, Callable[[Path], list[str]], int, tuple[str, ...]]] = [
    ("predict-glob-onto-input", _glob_onto_input, 1, ("b.xyz", "refusing to overwrite")),
    ("predict-dotdot-onto-input", _dotdot_onto_input, 1, ("a.xyz", "refusing to overwrite")),
    ("predict-output-is-dir", _predict_into_dir, 1, ("is a directory",)),
    ("predict-extra-column", _extra_column, 1, ("cols.xyz", "frame 0", "line 4", "columns")),
    ("predict-text-file-as-db", _text_db, 1, ("notes.db", "not a readable ASE database")),
    ("predict-device-gpu0", _device, 2, ("gpu0",)),
    ("data-make-into-user-folder", _data_into_user_folder, 1, ("not empty", "--overwrite")),
    ("data-make-onto-file", _data_onto_file, 1, ("not a directory",)),
    ("data-make-unknown-split", _data_bad_split, 1, ("nosuch",)),
    ("data-make-unknown-name", _data_unknown_name, 1, ("oc21",)),
    ("data-make-size-not-a-number", _data_size("pool=abc"), 2, ("--size", "'pool=abc'")),
    ("data-make-size-no-equals", _data_size("x"), 2, ("--size", "'x'", "SPLIT=N")),
    ("data-make-size-negative", _data_size("pool=-1"), 2, ("--size", "'pool=-1'")),
    ("select-shortlist-below-n", _shortlist_below_n, 1, ("--shortlist 1", "-n 3")),
    ("select-onto-file", _select_onto_file, 1, ("not a directory",)),
    ("select-n-zero", _select("-n", "0"), 1, ("asked for n=0", "nothing to pick")),
    ("select-n-above-pool", _select("-n", "3"), 1, ("p.xyz", "n=3", "holds only 2 structures")),
    (
        "select-pool-all-in-train",
        _select_pool_all_train,
        1,
        ("p.xyz", "n=1", "holds only 0 new structures", "2 already in the training set"),
    ),
    (
        "select-pool-repeats-below-n",
        _select_pool_repeats,
        1,
        ("same.xyz", "n=2", "holds only 1 new structure ", "1 repeat of an earlier pool"),
    ),
    ("select-bad-pool-frame", _select_bad_frame, 1, ("cols.xyz", "frame 0", "columns")),
    ("select-missing-pool", _select_missing_pool, 1, ("none.xyz", "file not found")),
    ("select-bad-config", _select_bad_config, 1, ("c.yaml", "does not parse")),
    (
        "select-into-complete-run",
        _select_into_complete_run,
        1,
        ("run", "holds a complete run", "--overwrite"),
    ),
    (
        "select-into-incomplete-run-with-user-files",
        _select_into_incomplete_run_with_user_files,
        1,
        ("incomplete run", "mine.txt"),
    ),
    (
        "features-bad-frame",
        _features(_cols, "--map", "embedding"),
        1,
        ("cols.xyz", "frame 0", "columns"),
    ),
    (
        "features-missing-file",
        _features(lambda tmp: tmp / "none.xyz", "--map", "embedding"),
        1,
        ("none.xyz", "file not found"),
    ),
    ("features-onto-file", _features_onto_file, 1, ("not a directory",)),
    ("bench-test-without-name", _bench("=x.xyz"), 2, ("--test", "NAME=FILE")),
    ("bench-unknown-method", _bench_methods("random,foo"), 2, ("--methods", "foo", "joint")),
    (
        "bench-unlabelled-pool",
        _bench_unlabelled_pool,
        1,
        ("p.xyz", "frame 0", "no reference energy", "holds no reference labels"),
    ),
    (
        "bench-unknown-model",
        lambda tmp: [*_bench("t={tmp}/p.xyz")(tmp), "--model", "nosuch"],
        1,
        ("unknown model spec 'nosuch'",),
    ),
    # destructive before: every one of these replaced or mixed results (issue 24)
    (
        "select-resume-over-complete-run",
        _resume_over_complete(5, 3),
        1,
        ("holds a complete run", "--resume continues an incomplete run only", "--overwrite"),
    ),
    (
        "select-resume-smaller-n-over-complete-run",
        _resume_over_complete(3, 2),
        1,
        ("holds a complete run", "--resume"),
    ),
    (
        "select-resume-over-complete-run-with-user-file",
        _resume_over_complete(5, 5, "notes.txt"),
        1,
        ("holds a complete run", "--resume"),
    ),
    (
        "select-resume-other-options",
        _resume_other_options,
        1,
        ("--resume", "started otherwise", "option n: recorded 3, asked for 2"),
    ),
    (
        "predict-onto-existing-file",
        _predict_onto_existing,
        1,
        ("labelled.xyz", "output file exists", "--overwrite"),
    ),
    (
        "select-input-inside-output-overwrite",
        _select_input_in_output,
        1,
        ("selected.xyz", "refusing to overwrite an input file"),
    ),
    # messages that blamed the wrong thing (issue 24)
    ("select-empty-file", _select_file(_write("empty.xyz", "")), 1, ("empty.xyz", "is empty")),
    (
        "select-bad-atom-count-in-frame-1",
        _select_file(_write("c.xyz", "1\nc\nH 0 0 0\nx\nc\nH 0 0 0\n")),
        1,
        ("c.xyz, frame 1", "line 4", "atom count"),
    ),
    (
        "select-unknown-element",
        _select_file(_write("zz.xyz", "1\nc\nH 0 0 0\n1\nc\nZz 0 0 0\n")),
        1,
        ("zz.xyz, frame 1", "unknown element symbol 'Zz'"),
    ),
    (
        "select-unknown-format-prefix",
        lambda tmp: _select_file(lambda t: Path(f"nosuchfmt:{_distinct(t / 'p.xyz')}"))(tmp),
        1,
        ("unknown format 'nosuchfmt'", "oc20-s2ef"),
    ),
    (
        "select-unreadable-file",
        _select_file(lambda tmp: Path("extxyz:/proc/self/mem")),  # read() fails with EIO
        1,
        ("/proc/self/mem", "cannot read the file"),
    ),
    ("select-forces-weight-inf", _select("-n", "1", "--forces-weight", "inf"), 2, ("inf",)),
    ("select-energy-weight-nan", _select("-n", "1", "--energy-weight", "nan"), 2, ("--energy",)),
    (
        "select-both-weights-zero",
        _select("-n", "1", "--energy-weight", "0", "--forces-weight", "0"),
        1,
        ("both 0",),
    ),
    (
        "select-seed-negative",
        _select("-n", "1", "--seed", "-1"),
        2,
        ("--seed", "greater than or equal to 0"),
    ),
    (
        "select-store-is-a-file",
        _select_store_is_file,
        1,
        ("--store", "feats", "not a directory", "give --store a folder"),
    ),
    (
        "select-store-is-a-users-folder",
        _select_store_foreign_meta,
        1,
        ("proj", "is not a feature store", "nothing was changed"),
    ),
    (
        "features-into-users-folder-with-meta-json",
        _features_into_foreign_meta,
        1,
        ("proj", "is not a feature store", "meta.json was not written by fntk"),
    ),
    (
        "select-workers-and-scheduler",
        _select("-n", "1", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"),
        2,
        ("--workers", "--scheduler"),
    ),
    ("select-unknown-model", _select("-n", "1", "--model", "nosuch"), 1, ("'nosuch'",)),
    (
        "select-model-file-missing",
        _select("-n", "1", "--model", "sevennet:nowhere.pth"),
        1,
        ("model file not found", "nowhere.pth"),
    ),
    ("demo-unknown-model", _demo_unknown_model, 1, ("unknown model spec 'nosuch'",)),
    # more of the same classes, found while fixing issue 24
    (
        "predict-output-not-xyz",
        lambda tmp: ["predict", str(_xyz(tmp / "a.xyz")), "-o", str(tmp / "out.traj")],
        1,
        ("out.traj", "extended XYZ", ".xyz"),
    ),
    (
        "select-store-is-the-output-folder",
        lambda tmp: _select("-n", "1", "--store", str(tmp / "run"))(tmp),
        1,
        ("--store is the output folder itself", "feature-store"),
    ),
    (
        "select-truncated-frame",
        _select_file(_write("cut.xyz", "1\nc\nH 0 0 0\n3\nc\nH 0 0 0\n")),
        1,
        ("cut.xyz, frame 1", "ends inside the frame", "1 of its 3 atom lines"),
    ),
    (
        "select-negative-atom-count",
        _select_file(_write("neg.xyz", "-2\nc\nH 0 0 0\n")),
        1,
        ("neg.xyz, frame 0", "atom count", "'-2'"),
    ),
    (
        "select-unknown-format-prefix-on-a-glob",
        lambda tmp: _select_file(lambda t: Path(f"nosuch:{_distinct(t / 'p.xyz').parent}/*.xyz"))(
            tmp
        ),
        1,
        ("unknown format 'nosuch'",),
    ),
    (
        "predict-unknown-model",
        lambda tmp: ["predict", str(_xyz(tmp / "a.xyz")), "-o", str(tmp / "o.xyz"), "-m", "x"],
        1,
        ("unknown model spec 'x'",),
    ),
    ("bench-missing-test-file", _bench("t={tmp}/none.xyz"), 1, ("none.xyz", "file not found")),
    (
        "bench-missing-pool",
        _bench("t={tmp}/p.xyz", pool="none.xyz"),
        1,
        ("none.xyz", "file not found"),
    ),
]
if not IS_ROOT:
    CASES.append(("predict-read-only-folder", _predict_read_only, 1, ("not writable",)))


@pytest.mark.parametrize(
    ("build", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_touches_nothing(tmp_path, build, code, words):
    argv = build(tmp_path)
    before = _tree(tmp_path)
    dirs_before = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    try:
        result = CliRunner().invoke(app, argv, env={"COLUMNS": "300"})
    finally:
        for p in tmp_path.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    text = " ".join(result.output.split())
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for word in words:
        assert word in text, result.output
    assert "delete" not in text  # advice that would remove a user's folder
    if "--store" in argv:
        assert "choose another -o" not in text  # a --store problem is not blamed on -o
    assert _tree(tmp_path) == before  # inputs byte-identical, nothing written, no temporaries
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == dirs_before  # no new folders


def test_aselmdb_without_its_backend_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "s.aselmdb"
    path.write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, "ase_db_backends", None)  # import fails as if absent
    result = CliRunner().invoke(app, ["predict", str(path), "-o", str(tmp_path / "o.xyz")])
    assert result.exit_code == 1
    assert "ase-db-backends" in result.output and "s.aselmdb" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.aselmdb"]


def test_data_make_overwrite_keeps_the_users_other_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep\n")
    argv = ["data", "make", "emt-adsorbates", "-o", str(tmp_path / "d"), "--overwrite"]
    sizes = ["--size", "init=2", "--size", "pool=2", "--size", "test_id=1"]
    for split in ("test_ood-ads", "test_ood-cat", "test_ood-both"):
        sizes += ["--size", f"{split}=0"]
    result = CliRunner().invoke(app, [*argv, *sizes])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep\n"
    assert (tmp_path / "d" / "pool.xyz").is_file()


# --- run folders ---------------------------------------------------------------------------


def test_run_folder_says_running_and_removes_what_it_made_on_a_user_error(tmp_path):
    options = build_run_options(n=1)
    out = tmp_path / "new" / "run"
    with pytest.raises(InputError, match="no such model"):
        with run_folder(out, overwrite=False, options=options, pool=["p.xyz"], check_inputs=False):
            assert json.loads((out / "run.json").read_text())["status"] == "running"
            raise InputError("no such model")
    assert list(tmp_path.iterdir()) == []  # the folder and its new parent are gone


def test_run_folder_takes_an_incomplete_run_without_overwrite(tmp_path):
    _run_folder(tmp_path, "running", "scores.csv")
    (tmp_path / "run" / ".selected.xyz.k1ll3d.tmp").write_text("half a file")
    (tmp_path / "run" / "feature-store").mkdir()
    options = build_run_options(n=1)
    folder = run_folder(
        tmp_path / "run",
        overwrite=False,
        options=options,
        pool=["p.xyz"],
        own=["feature-store"],
        check_inputs=False,
    )
    with folder as out:
        record = json.loads((out / "run.json").read_text())
    assert record["status"] == "running" and record["inputs"]["pool"] == ["p.xyz"]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["feature-store", "run.json", "scores.csv", "selected.xyz"]  # temp removed


def test_progress_bars_are_drawn_once_when_stderr_is_not_a_terminal(capsys):
    from fntk.cli.select_cmd import _RichProgress

    progress = _RichProgress()  # the calls run_selection makes, stage after stage
    for stage, total in (("train features", 3), ("pool features + scoring", 5)):
        progress(stage, 0, total)
        for _ in range(total):
            progress(stage, 1, None)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert [line.split("\u2501")[0].strip() for line in lines] == [
        "train features",
        "pool features + scoring",
    ]
    assert "3/3" in lines[0] and "5/5" in lines[1]


# --- library-level checks ------------------------------------------------------------------


def test_outputs_are_0644_minus_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_extxyz(tmp_path / "a.xyz", [_labelled()])
        atomic_write_text(tmp_path / "b.txt", "x")
        os.umask(0o027)
        atomic_write_text(tmp_path / "c.txt", "x")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.xyz": 0o644, "b.txt": 0o644, "c.txt": 0o640}


def test_named_label_key_missing_is_an_error_naming_the_frame():
    atoms = _labelled(energy=-3.0)  # the calculator has values: they must not be used
    atoms.info["REF_energy"] = -2.0
    atoms.arrays["REF_forces"] = np.ones((len(atoms), 3))
    labels = read_labels(atoms, file="t.xyz", index=0, energy_key="REF_energy")
    assert labels.energy == -2.0
    with pytest.raises(
        InputError,
        match=r"t\.xyz, frame 7: no reference energy: the frame has no info key 'DFT_energy'",
    ):
        read_labels(atoms, file="t.xyz", index=7, energy_key="DFT_energy")
    with pytest.raises(
        InputError,
        match=r"t\.xyz, frame 7: no reference forces: the frame has no array 'DFT_forces'",
    ):
        read_labels(atoms, file="t.xyz", index=7, forces_key="DFT_forces")
    # energy-only splits: a named forces key absent gives NaN forces, not the calculator's
    energy_only = read_labels(
        atoms, file="t.xyz", index=7, forces_key="DFT_forces", require_forces=False
    )
    assert np.isnan(energy_only.forces).all() and energy_only.energy == -3.0


def test_overlap_hint_names_no_missing_option(tmp_path):
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.1]])
    ase.io.write(tmp_path / "o.xyz", atoms)
    with pytest.raises(InputError) as info:
        read_structures([str(tmp_path / "o.xyz")])
    assert "minimum distance" not in str(info.value) and "frame 0" in str(info.value)


def test_shortlist_below_n_is_refused_up_front():
    with pytest.raises(InputError, match="--shortlist 2 is smaller than -n 5"):
        build_run_options(n=5, shortlist=2)
    assert build_run_options(n=5, shortlist=5).select.shortlist_size == 5


class _FakeBackend:
    """The part of a ModelBackend that predict_chunk uses, recording its batches."""

    spec = "fake"
    cutoff = 3.0

    dtype = torch.float32

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, structures, batch_size):
        self.batches.append(len(structures))
        return [(float(len(a)), torch.full((len(a), 3), 0.5)) for a in structures]


def _chunk(structures: list[Atoms]) -> StructureChunk:
    n = len(structures)
    return StructureChunk(structures, ["s.xyz"] * n, list(range(n)), np.arange(n))


def test_predictions_are_not_written_as_reference_labels(tmp_path):
    backend = _FakeBackend()
    out = predict_chunk(backend, _chunk([_labelled(), _labelled()]), batch_size=4)
    write_extxyz(tmp_path / "p.xyz", out)
    back = ase.io.read(tmp_path / "p.xyz", ":")
    assert all(a.calc is None for a in back)  # no energy=/forces a reader takes for labels
    assert back[0].info[ENERGY_KEY] == 3.0
    assert np.allclose(back[0].arrays[FORCES_KEY], 0.5)
    with pytest.raises(InputError, match="no reference energy"):
        read_labels(back[0], file="p.xyz", index=0)


def test_memory_limit_splits_batches_and_refuses_a_structure_too_large():
    small = [molecule("H2O") for _ in range(4)]
    big = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((10, 10, 12))  # 4800 atoms
    per_small = estimate_bytes(small[0], _FakeBackend.cutoff)
    per_big = estimate_bytes(big, _FakeBackend.cutoff)
    assert per_big > 4800 * per_small / 3  # edges count: a dense crystal costs more per atom

    backend = _FakeBackend()
    predict_chunk(backend, _chunk(small), batch_size=4, max_bytes=2 * per_small)
    assert backend.batches == [2, 2]

    with pytest.raises(InputError, match=r"s\.xyz, frame 1: structure needs about") as info:
        predict_chunk(_FakeBackend(), _chunk([small[0], big]), max_bytes=per_big // 2)
    assert "--max-memory" in str(info.value)
    assert list(plan_batches([1, 1, 1], batch_size=2, max_bytes=None, files=[], frames=[])) == [
        [0, 1],
        [2],
    ]


# --- help ----------------------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return paths


def _click_command(path: list[str]):
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


NO_DEFAULT = {"--train", "--config", "--store", "--pool-shift", "--pick-tag"}
"""Options whose absence means nothing is given (no file, no filter): no default to show."""


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "fntk")
def test_help_at_80_columns_shows_every_option_whole_with_default_and_choices(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    assert "\u2026" not in result.output  # nothing cut with an ellipsis
    text = " ".join(result.output.split())
    command = _click_command(path)
    ctx = command.context_class(command, info_name=" ".join(["fntk", *path]))
    options = [p for p in command.get_params(ctx) if p.param_type_name == "option"]
    assert options  # every command has at least --help
    for param in options:
        for name in [*param.opts, *param.secondary_opts]:
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", result.output), name
        record = " ".join(param.get_help_record(ctx)[1].split())
        descriptor = getattr(param, "type_descriptor", None) or param.type
        for choice in getattr(descriptor, "choices", None) or ():
            assert str(choice) in text, (param.opts, choice)
        hidden_default = param.is_flag and not param.secondary_opts  # an off-by-default switch
        if not (param.required or hidden_default or set(param.opts) & (NO_DEFAULT | {"--help"})):
            assert "[default: " in record or "default: " in record, (param.opts, record)
