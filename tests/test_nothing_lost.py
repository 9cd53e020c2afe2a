"""Nothing lost, ever: locks, a full disk, Ctrl-C, duplicates up to a rigid motion, API checks.

The companion of ``test_bad_inputs.py`` (whose table holds the one-line refusals): these cases
need a live process holding a lock, a writer that fails, or an interrupt. None loads a model;
where the command would reach model work, the step before it is replaced by a double that
raises (said at each one).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from typer.testing import CliRunner

import fntk
from fntk.chunk import ENERGY_ROW, FeatureChunk
from fntk.cli.main import app
from fntk.errors import BusyError, FntkError, InputError, OutputError
from fntk.io import atomic_write_text, duplicate_key
from fntk.io.lock import LOCK_NAME, folder_lock
from fntk.io.outdir import check_output_dir, check_resumable
from fntk.pipeline import OUTPUT_NAMES, build_run_options, run_folder
from fntk.select import Selector


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _waters(path: Path, n: int = 2, shift: float = 0.0) -> Path:
    frames = []
    for k in range(n):
        atoms = molecule("H2O")
        atoms.positions[0, 0] += 0.01 * k
        atoms.translate([shift, 0.0, 0.0])
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((3, 3)))
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


def _invoke(argv: list[str]):
    return CliRunner().invoke(app, [str(a) for a in argv], env={"COLUMNS": "300"})


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture
def live_pid():
    """PID of a process that is alive for the whole test (another "fntk run")."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _lock_file(folder: Path, pid: int) -> None:
    import socket

    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))


# --- locks ---------------------------------------------------------------------------------


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_holder(tmp_path, live_pid):
    """Two `fntk select -o same/` at once: the second is refused; nothing of the first moves."""
    pool = _waters(tmp_path / "p.xyz")
    (tmp_path / "run").mkdir()
    running = {"status": "running", "options": {}, "inputs": {}}
    (tmp_path / "run" / "run.json").write_text(json.dumps(running) + "\n")
    _lock_file(tmp_path / "run", live_pid)
    before = _tree(tmp_path)
    result = _invoke(["select", pool, "-n", "1", "-o", tmp_path / "run"])
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert f"PID {live_pid}" in line and "in use by another fntk process" in line
    assert _tree(tmp_path) == before


def test_a_second_benchmark_into_a_folder_in_use_is_refused(tmp_path, live_pid):
    data = _waters(tmp_path / "d.xyz", n=3)
    (tmp_path / "b").mkdir()
    _lock_file(tmp_path / "b", live_pid)
    before = _tree(tmp_path)
    argv = ["bench", "--init", data, "--pool", data, "--test", f"t={data}", "-o", tmp_path / "b"]
    result = _invoke(argv)
    assert result.exit_code == 1, result.output
    assert f"PID {live_pid}" in _one_line(result.output)
    assert _tree(tmp_path) == before


def test_a_stale_lock_is_taken_over_and_released(tmp_path, dead_pid):
    _lock_file(tmp_path, dead_pid)
    with folder_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(BusyError, match=f"PID {os.getpid()}"):
            with folder_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_run_folder_holds_the_lock_while_the_run_writes(tmp_path):
    options = build_run_options(n=1)
    with run_folder(
        tmp_path / "run", overwrite=False, options=options, pool=["p.xyz"], check_inputs=False
    ) as out:
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
        check_output_dir(out, overwrite=False, own=OUTPUT_NAMES)  # its lock is not "a file"
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_creating_a_store_takes_its_lock(tmp_path, live_pid, monkeypatch):
    """Two processes creating one store: meta.json is written under the lock, never twice."""
    import fntk.features.store as store_module
    from fntk.features import default_options

    monkeypatch.setattr(store_module, "STORE_LOCK_WAIT_S", 0.2)
    (tmp_path / "feats").mkdir()
    _lock_file(tmp_path / "feats", live_pid)
    with pytest.raises(BusyError, match=f"feature store is in use .*PID {live_pid}"):
        store_module.FeatureStore.create(
            tmp_path / "feats", default_options("embedding"), "m", chunk_size=4, n_features=3
        )
    assert sorted(p.name for p in (tmp_path / "feats").iterdir()) == [LOCK_NAME]


# --- resume --------------------------------------------------------------------------------


def test_resume_continues_an_incomplete_run_of_the_same_options(tmp_path):
    options = json.loads(build_run_options(n=3).model_dump_json())
    inputs = {"pool": ["p.xyz"], "train": []}
    (tmp_path / "run").mkdir()
    for status in ("running", "failed", "interrupted"):
        record = {"status": status, "options": options, "inputs": inputs}
        (tmp_path / "run" / "run.json").write_text(json.dumps(record))
        check_resumable(tmp_path / "run", options=options, inputs=inputs)  # no error
    with pytest.raises(InputError, match=r"input pool: recorded \['p.xyz'\], asked for"):
        check_resumable(tmp_path / "run", options=options, inputs={"pool": ["q.xyz"], "train": []})
    check_resumable(tmp_path / "new", options=options, inputs=inputs)  # a new folder starts
    (tmp_path / "run" / "run.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(InputError, match=r"started otherwise \(options not recorded in run"):
        check_resumable(tmp_path / "run", options=options, inputs=inputs)


# --- a full disk, Ctrl-C -------------------------------------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fake_run(pool: Path):
    """A finished SelectRun of two structures, as run_selection returns it (no model run)."""
    from fntk.pipeline import SelectRun
    from fntk.select import SelectionResult
    from fntk.select.api import ShortlistSummary

    picked = [a.copy() for a in ase.io.read(pool, ":")]
    for rank, atoms in enumerate(picked):
        atoms.info.update(
            fntk_rank=rank,
            fntk_score=1.0,
            fntk_posterior_variance=1.0,
            fntk_source_file=str(pool),
            fntk_source_index=rank,
        )
    result = SelectionResult(
        indices=np.arange(2),
        scores=np.ones(2),
        shortlist=ShortlistSummary(np.arange(2), np.ones(2)),
        status=(),
        kernel="linear",
        mode="p",
        sigma=1.0,
    )
    row = dict(rank=0, source_file=str(pool), source_index=0, pool_index=0, n_atoms=3)
    row.update(posterior_variance="1", picked="yes", score="1")
    return SelectRun(
        picked=picked,
        result=result,
        shortlist=[row],
        timings_s={},
        n_pool=2,
        n_train=0,
        excluded_duplicates=[],
        pool_duplicates=[],
        options=build_run_options(n=2),
        model_spec="sevennet-0",
        files={"pool": [str(pool)], "train": []},
    )


def test_disk_full_while_writing_the_report_is_one_line_and_leaves_a_failed_run(
    tmp_path, monkeypatch
):
    """`fntk select` whose disk fills up at the report's plots (the model's part is a double:
    run_selection returns a finished run, so that only the writing is exercised)."""
    from matplotlib.figure import Figure

    pool = _waters(tmp_path / "p.xyz")
    monkeypatch.setattr("fntk.pipeline.batch.run_selection", lambda *a, **k: _fake_run(pool))
    monkeypatch.setattr(Figure, "savefig", _no_space)
    (tmp_path / "run").mkdir()  # the user's empty folder (one fntk creates is removed)
    result = _invoke(["select", pool, "-n", "2", "-o", tmp_path / "run", "--quiet"])
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert "no space left on device writing" in line and "pv_histogram.png" in line
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["run.json"]  # no partial outputs, no temporaries, no lock
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and "no space left" in record["error"]
    check_output_dir(tmp_path / "run", overwrite=False, own=OUTPUT_NAMES)  # may be rerun


def test_disk_full_in_predict_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """`fntk predict` on a full disk. The model is a double (predictions are not the point)."""

    class Backend:
        spec, species, cutoff, dtype = "double", None, 3.0, None

        def predict(self, structures, batch_size):
            import torch

            return [(0.0, torch.zeros(len(a), 3)) for a in structures]

    pool = _waters(tmp_path / "p.xyz")
    monkeypatch.setattr("fntk.models.load_backend", lambda *a, **k: Backend())
    monkeypatch.setattr("fntk.io.write.ase.io.write", _no_space)
    before = _tree(tmp_path)
    result = _invoke(["predict", pool, "-o", tmp_path / "out.xyz"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith("error: no space left on device writing"), result.output
    assert "Traceback" not in result.output and lines[0].startswith("predicting")  # the bar
    assert _tree(tmp_path) == before  # no out.xyz, no temporary


def test_atomic_writers_name_the_path_on_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr("os.fdopen", _no_space)
    with pytest.raises(OutputError, match=r"no space left on device writing .*a\.txt"):
        atomic_write_text(tmp_path / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_is_one_line_exit_130_and_leaves_a_resumable_folder(tmp_path, monkeypatch):
    """Ctrl-C while the model loads (the loader is a double that raises KeyboardInterrupt)."""

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    pool = _waters(tmp_path / "p.xyz")
    monkeypatch.setattr("fntk.pipeline.job.load_backend_for", interrupt)
    argv = ["select", pool, "-n", "1", "-o", tmp_path / "run", "--resume", "--quiet"]
    result = _invoke(argv)
    assert result.exit_code == 130, result.output
    assert _one_line(result.output) == "interrupted; rerun the same command to resume"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    options = json.loads(build_run_options(n=1).model_dump_json())
    check_resumable(
        tmp_path / "run",
        options=options,
        inputs={"pool": [str(pool)], "train": []},
        ignore=("execution",),
    )


# --- duplicates up to a rigid motion -------------------------------------------------------


def test_duplicates_are_the_same_structure_up_to_a_rigid_motion():
    ethanol = molecule("CH3CH2OH")
    moved = ethanol.copy()
    moved.translate([0.5, -0.2, 3.0])
    moved.rotate(37, "z", center="COM")
    moved.rotate(-80, "x")
    permuted = moved[[8, 3, 1, 0, 2, 4, 5, 6, 7]]
    assert duplicate_key(ethanol) == duplicate_key(moved) == duplicate_key(permuted)
    stretched = ethanol.copy()
    stretched.positions[0, 0] += 0.01
    assert duplicate_key(stretched) != duplicate_key(ethanol)

    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    shifted = slab.copy()
    shifted.translate([0.5, 1.3, 0.2])
    shifted.wrap()  # across the periodic cell
    assert duplicate_key(shifted) == duplicate_key(slab)
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    nudged = crystal.copy()
    nudged.translate([3.6 - 1e-9, 0.0, 0.0])  # wraps to a hair below the cell edge
    assert duplicate_key(nudged) == duplicate_key(crystal)
    other = crystal.copy()
    other.positions[1] += 0.05
    assert duplicate_key(other) != duplicate_key(crystal)


def test_a_training_set_of_the_pool_translated_is_recognised(tmp_path):
    """The issue's case: the pool's own structures, moved by 0.5 Angstrom, as training set."""
    pool = _waters(tmp_path / "p.xyz")
    train = _waters(tmp_path / "t.xyz", shift=0.5)
    before = _tree(tmp_path)
    result = _invoke(["select", pool, "-t", train, "-n", "1", "-o", tmp_path / "run"])
    assert result.exit_code == 1, result.output
    assert "holds only 0 new structures (2 in all, 2 already in the training set)" in (
        " ".join(result.output.split())
    )
    assert _tree(tmp_path) == before


# --- Python API ----------------------------------------------------------------------------


def _chunk(values: np.ndarray) -> FeatureChunk:
    n = len(values)
    return FeatureChunk(
        values=values,
        offsets=np.arange(n + 1),
        source_index=np.arange(n),
        n_atoms=np.full(n, 3),
        row_kind=np.full(n, ENERGY_ROW),
    )


def test_selector_arguments_are_checked_with_project_errors():
    with pytest.raises(InputError, match=r"FeatureChunk objects, got numpy\.ndarray"):
        Selector().fit([np.ones((2, 3))])
    with pytest.raises(InputError, match="iterable of FeatureChunk, got int"):
        Selector().fit(3)  # type: ignore[arg-type]
    huge = _chunk(np.full((4, 3), 1e200) * np.arange(1, 5)[:, None])
    with pytest.raises(InputError, match="beyond 1e\\+100"):
        Selector().fit([huge])
    fitted = Selector().fit([_chunk(np.eye(3))])
    with pytest.raises(InputError, match="beyond"):
        fitted.select([huge], n=1)
    with pytest.raises(InputError, match="n must be a non-negative integer"):
        fitted.select([_chunk(np.eye(3))], n=-1)
    picks = Selector("maxdiag").fit(_chunk(np.eye(3))).select(_chunk(np.eye(3)[::-1] * 2), n=1)
    assert len(picks.indices) == 1  # one chunk alone is a stream of one chunk


def test_next_batch_checks_its_arguments(tmp_path):
    pool = _waters(tmp_path / "p.xyz")
    with pytest.raises(InputError, match="asked for n=0"):  # train=None: no training set
        fntk.next_batch(pool, None, n=0)
    with pytest.raises(InputError, match="pool must be a path or a list of paths, got NoneType"):
        fntk.next_batch(None, n=2)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="train must be a path or a list of paths, got int"):
        fntk.next_batch(pool, 5, n=2)  # type: ignore[arg-type]
    with pytest.raises(FntkError, match="unknown model spec"):
        fntk.next_batch(pool, n=1, model="nosuch", output=tmp_path / "o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.xyz"]


def test_tiny_or_huge_loss_weights_give_a_finite_lambda():
    from fntk.features import force_row_weight
    from fntk.features.options import MAX_FORCE_ROW_WEIGHT, MIN_FORCE_ROW_WEIGHT

    assert force_row_weight(1e-300, 100.0, 3) == MAX_FORCE_ROW_WEIGHT
    assert force_row_weight(1.0, 1e-300, 3) == MIN_FORCE_ROW_WEIGHT
    assert force_row_weight(0.0, 100.0, 3) == MAX_FORCE_ROW_WEIGHT  # as --help's x>=0 says
    assert build_run_options(energy_weight=0.0).energy_weight == 0.0
    with pytest.raises(InputError, match="both 0"):
        build_run_options(energy_weight=0.0, forces_weight=0.0)
    with pytest.raises(InputError, match="--forces-weight"):
        build_run_options(forces_weight=float("inf"))


def _structure(symbols: str, energy: float) -> Atoms:
    atoms = Atoms(symbols)
    atoms.positions = np.arange(3.0 * len(atoms)).reshape(-1, 3) * 1.1
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    return atoms


def test_reference_energy_notes_name_what_the_labels_cannot_fix():
    from fntk.bench.checks import reference_energy_notes
    from fntk.learn import LabelledSet

    one = LabelledSet.from_structures([_structure("CHNO", -10.0)])
    pool = LabelledSet.from_structures([_structure("CH", -4.0)])
    tests = {"mols": LabelledSet.from_structures([_structure("CHS", -3.0)])}
    notes = reference_energy_notes(one, pool, tests)
    assert any("test split mols: element(s) S" in n and "not learnable" in n for n in notes)
    assert any("fixes only 1 independent" in n and "H, C, N, O" in n for n in notes)
    assert any("those of H, C, N, O are not fixed separately" in n for n in notes)
    slabs = LabelledSet.from_structures(
        [_structure(s, -1.0) for s in ("Cu12O", "Pt12O", "Ni12O", "O")]
    )  # an O reference fixes every E0 of slabs that each pair 12 metal atoms with one O
    assert reference_energy_notes(slabs, slabs, {}) == []
    half = LabelledSet.from_structures([_structure(s, -1.0) for s in ("C", "CH4", "NO")])
    (note,) = reference_energy_notes(half, half, {})
    assert "fixes only 3 independent" in note and "those of N, O are not fixed" in note
    varied = LabelledSet.from_structures([_structure(s, -1.0) for s in ("C", "H", "N", "O", "CH")])
    fine = {"mols": LabelledSet.from_structures([_structure("CHN", -3.0)])}
    assert reference_energy_notes(varied, pool, fine) == []


# --- the README's promises, word for word --------------------------------------------------


def test_the_readme_quotes_these_messages_word_for_word(tmp_path, live_pid):
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    options = json.loads(build_run_options(n=3).model_dump_json())
    inputs = {"pool": ["p.xyz"], "train": []}
    run = tmp_path / "OUTDIR"
    run.mkdir()
    messages = []
    for status, asked in (("complete", options), ("running", {**options, "n": 2})):
        record = {"status": status, "options": options, "inputs": inputs}
        (run / "run.json").write_text(json.dumps(record))
        with pytest.raises(InputError) as info:
            check_resumable(run, options=asked, inputs=inputs)
        messages.append(str(info.value).split(": ", 1)[1])
    assert messages[0] in readme
    assert messages[1].startswith("--resume: the incomplete run in this folder was started")
    assert messages[1].split(" (")[0] in readme and "(option n: recorded 3, asked for 2)" in readme
    _lock_file(run, live_pid)
    with pytest.raises(BusyError) as busy:
        with folder_lock(run):
            pass
    text = str(busy.value)
    assert text.split(" (PID")[0].replace(str(run), "OUTDIR") in readme
    assert text.endswith(") (wait for it to finish, or choose another folder)")
    assert "(wait for it to finish, or choose another folder)" in readme
    assert "no space left on device writing PATH" in readme
    assert "interrupted; rerun the same command to resume" in readme
