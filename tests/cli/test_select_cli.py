"""``fntk select`` end to end on a small pool with real SevenNet-0 features, and its report."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import ase.io
import pytest
from ase import Atoms
from typer.testing import CliRunner

import fntk
from fntk.cli.main import app
from fntk.data import make_adsorbate_structures

runner = CliRunner()
SELECT_ARGS = ["--features", "joint", "--dim", "8", "--device", "cpu", "--batch-size", "4"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    train = make_adsorbate_structures(4, seed=10)
    pool = make_adsorbate_structures(14, seed=11, adsorbates=("H", "O", "N", "CH2"), label=False)
    pool.insert(5, train[0].copy())  # already labelled: must be excluded, not picked
    ase.io.write(root / "train.xyz", train)
    ase.io.write(root / "pool.xyz", pool)
    return root


def run_select(inputs, out, *extra):
    args = ["select", str(inputs / "pool.xyz"), "--train", str(inputs / "train.xyz")]
    result = runner.invoke(app, [*args, "-n", "4", "-o", str(out), *SELECT_ARGS, *extra])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def first_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    run_select(inputs, out, "--quiet")
    return out


def test_outputs_and_their_columns(first_run, inputs):
    names = {p.name for p in first_run.iterdir()}
    expected = {"selected.xyz", "scores.csv", "run.json", "report.html"}
    assert expected | {"pv_histogram.png", "projection.png", "composition.png"} <= names

    with open(first_run / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "rank",
        "source_file",
        "source_index",
        "pool_index",
        "n_atoms",
        "posterior_variance",
        "picked",
        "score",
    ]
    assert len(rows) == 14  # every candidate is shortlisted (default M >= 1000)
    variances = [float(r["posterior_variance"]) for r in rows]
    assert variances == sorted(variances, reverse=True)
    assert 5 not in [int(r["pool_index"]) for r in rows]  # the training duplicate

    selected = ase.io.read(first_run / "selected.xyz", ":")
    assert [a.info["fntk_rank"] for a in selected] == [0, 1, 2, 3]
    pool = ase.io.read(inputs / "pool.xyz", ":")
    picked_rows = {int(r["rank"]): r for r in rows if r["picked"] == "yes"}
    assert sorted(picked_rows) == [0, 1, 2, 3]
    for atoms in selected:
        row = picked_rows[atoms.info["fntk_rank"]]
        index = atoms.info["fntk_source_index"]
        assert int(row["source_index"]) == index
        assert atoms.info["fntk_source_file"] == str(inputs / "pool.xyz")
        assert float(row["score"]) == pytest.approx(atoms.info["fntk_score"], rel=1e-6)
        original = pool[index]
        assert (atoms.numbers == original.numbers).all()
        assert abs(atoms.positions - original.positions).max() < 1e-7  # geometry unchanged

    record = json.loads((first_run / "run.json").read_text())
    assert record["model"] == "sevennet-0"
    assert record["options"]["features"]["name"] == "joint"
    assert record["options"]["select"]["method"] == "coverage"
    assert record["n_pool"] == 15 and record["n_train"] == 4 and record["n_picked"] == 4
    assert record["excluded_train_duplicates"] == [
        {"source_file": str(inputs / "pool.xyz"), "source_index": 5}
    ]
    assert set(record["timings_s"]) >= {"pool_features_and_scoring", "pool_features", "selection"}
    assert record["status"] == "complete"
    assert record["notes"][0].startswith("joint features: hidden path (linear readout")


def test_picks_are_the_top_of_the_selectors_order(first_run, inputs):
    """The written batch is exactly what the selection engine returns, in its order."""
    run = fntk.next_batch(
        inputs / "pool.xyz", inputs / "train.xyz", n=4, features="joint", dim=8, device="cpu"
    )
    selected = ase.io.read(first_run / "selected.xyz", ":")
    assert [a.info["fntk_source_index"] for a in selected] == run.result.indices.tolist()
    assert [a.info["fntk_score"] for a in selected] == pytest.approx(run.result.scores.tolist())


def test_same_seed_gives_identical_selected_xyz(first_run, inputs, tmp_path):
    run_select(inputs, tmp_path / "again", "--quiet")
    assert (tmp_path / "again" / "selected.xyz").read_bytes() == (
        first_run / "selected.xyz"
    ).read_bytes()


def test_json_flag_prints_run_record(inputs, tmp_path):
    result = run_select(inputs, tmp_path / "j", "--json", "--selector", "maxdet")
    record = json.loads(result.stdout)
    assert record == json.loads((tmp_path / "j" / "run.json").read_text())
    assert record["status"] == "complete"
    assert record["options"]["select"]["method"] == "maxdet"
    selected = ase.io.read(tmp_path / "j" / "selected.xyz", ":")
    assert [(p["source_file"], p["source_index"]) for p in record["picked"]] == [
        (a.info["fntk_source_file"], a.info["fntk_source_index"]) for a in selected
    ]
    assert {"selected", "scores", "run", "report"} <= set(record["outputs"])
    assert all((tmp_path / "j" / Path(p).name).is_file() for p in record["outputs"].values())


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: [str(d / "pool.xyz"), "-n", "99"], "asked for n=99 but the pool holds only 15"),
        (lambda d: [str(d / "none.xyz")], "none.xyz: file not found"),
        (
            lambda d: [str(d / "radon.xyz"), "-n", "1"],
            "frame 0: element(s) Rn not supported by the model",
        ),
        (lambda d: [str(d / "empty.xyz"), "-n", "1"], "empty.xyz"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(inputs, tmp_path, make_args, message):
    # SevenNet-0 covers 89 elements, but not radon
    ase.io.write(inputs / "radon.xyz", Atoms("Rn2", positions=[[0, 0, 0], [0, 0, 3]]))
    (inputs / "empty.xyz").write_text("")
    result = runner.invoke(app, ["select", *make_args(inputs), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("option", "value", "valid"),
    [("--selector", "best", "lcmd"), ("--features", "magic", "joint")],
)
def test_unknown_choice_is_a_usage_error_exit_2(inputs, tmp_path, option, value, valid):
    out = tmp_path / "o"
    result = runner.invoke(app, ["select", str(inputs / "pool.xyz"), "-o", str(out), option, value])
    assert result.exit_code == 2, result.output
    assert value in result.output and valid in result.output
    assert not out.exists()


def test_existing_output_dir_is_refused_without_overwrite(first_run, inputs):
    before = (first_run / "selected.xyz").read_bytes()
    result = runner.invoke(app, ["select", str(inputs / "pool.xyz"), "-o", str(first_run)])
    assert result.exit_code == 1
    assert "pass --overwrite" in result.output
    assert (first_run / "selected.xyz").read_bytes() == before


def test_the_output_folder_is_an_option_that_config_repeats(first_run, inputs):
    """-o is recorded as execution.output; --config run.json without -o writes there (here
    refused: the folder holds a complete run), and with neither, -o is a usage error."""
    record = json.loads((first_run / "run.json").read_text())
    assert record["options"]["execution"]["output"] == str(first_run)
    before = (first_run / "selected.xyz").read_bytes()
    pool = str(inputs / "pool.xyz")
    result = runner.invoke(app, ["select", pool, "--config", str(first_run / "run.json")])
    assert result.exit_code == 1 and str(first_run) in result.output, result.output
    assert (first_run / "selected.xyz").read_bytes() == before
    result = runner.invoke(app, ["select", pool, "-n", "2"])
    assert result.exit_code == 2 and "give the output directory" in result.output


def test_rerun_into_a_killed_run_needs_no_overwrite_and_draws_each_bar_once(
    first_run, inputs, tmp_path
):
    out = tmp_path / "killed"
    shutil.copytree(first_run, out, ignore=shutil.ignore_patterns("report_probe.html"))
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "status": "running"}))
    (out / "selected.xyz").unlink()
    (out / ".selected.xyz.k1ll3d.tmp").write_text("half a file")  # what kill -9 leaves
    result = run_select(inputs, out)  # no --overwrite; progress bars on (stderr is no terminal)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert not list(out.glob(".*.tmp"))
    assert (out / "selected.xyz").read_bytes() == (first_run / "selected.xyz").read_bytes()
    bars = [
        line.split("\u2501")[0].strip() for line in result.stderr.splitlines() if "\u2501" in line
    ]
    assert bars == ["train features", "pool features + scoring"], result.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>
window.addEventListener('load', () => {
  const state = [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]);
  document.body.setAttribute('data-images', JSON.stringify(state));
});
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium_with_every_image(first_run, tmp_path):
    html = (first_run / "report.html").read_text()
    probe = first_run / "report_probe.html"
    probe.write_text(html.replace("</body>", PROBE))
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    probe.unlink()
    start = dom.index("data-images=") + len("data-images=") + 1
    images = json.loads(dom[start : dom.index('"', start)].replace("&quot;", '"'))
    sources = {src for src, _ in images}
    plots = {"pv_histogram.png", "projection.png", "composition.png", "predicted_errors.png"}
    n_picks = len(ase.io.read(first_run / "selected.xyz", ":"))
    thumbnails = {f"thumbnails/pick_{rank:03d}.png" for rank in range(1, min(n_picks, 24) + 1)}
    assert sources == plots | thumbnails
    assert all(width > (100 if src in plots else 0) for src, width in images), images


def test_target_is_covered_instead_of_the_pool(tmp_path, mace_model_file):
    """Target structures that are copies of two pool structures: covering them, the default
    selector picks exactly those two (a pick at distance 0 of a target gains the most), and
    run.json records the target files and their feature time. (A small MACE model on
    molecules keeps it fast.)"""
    from ase.build import molecule

    pool = []
    for i in range(12):
        atoms = molecule(("CH4", "NH3", "H2O", "CH3OH")[i % 4])
        atoms.rattle(0.05, seed=i)
        pool.append(atoms)
    ase.io.write(tmp_path / "pool.xyz", pool)
    target = tmp_path / "target.xyz"
    ase.io.write(target, [pool[2], pool[9]])
    out = tmp_path / "run"
    model = ["--model", f"mace:{mace_model_file}", "--dtype", "float64", "--device", "cpu"]
    args = ["select", str(tmp_path / "pool.xyz"), "-n", "2", "-o", str(out), "--dim", "4"]
    result = runner.invoke(app, [*args, *model, "--target", str(target), "--quiet"])
    assert result.exit_code == 0, result.output
    picked = ase.io.read(out / "selected.xyz", ":")
    assert sorted(a.info["fntk_source_index"] for a in picked) == [2, 9]
    record = json.loads((out / "run.json").read_text())
    assert record["inputs"]["target"] == [str(target)]
    assert record["options"]["target"] == [str(target)]  # RunOptions.target: --config repeats it
    assert "target_features" in record["timings_s"]


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, ["--selector", "lcmd"], "--target needs a covering selector, not 'lcmd'"),
        ("not a structure file\n", [], "target.xyz"),
        ("", [], "target.xyz"),
    ],
)
def test_bad_target_is_one_line_and_exit_1_before_any_work(
    inputs, tmp_path, content, extra, message
):
    target = tmp_path / "target.xyz"
    if content is None:
        ase.io.write(target, ase.io.read(inputs / "pool.xyz", ":2"))
    else:
        target.write_text(content)
    out = tmp_path / "run"
    args = ["select", str(inputs / "pool.xyz"), "-n", "2", "-o", str(out), *SELECT_ARGS]
    result = runner.invoke(app, [*args, "--target", str(target), *extra])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


def test_calibrate_puts_a_calibrated_stopping_signal_in_run_json_and_report(inputs, tmp_path):
    ase.io.write(tmp_path / "valid.xyz", make_adsorbate_structures(3, seed=12))
    out = tmp_path / "cal"
    run_select(inputs, out, "--quiet", "-n", "2", "--calibrate", str(tmp_path / "valid.xyz"))
    signal = json.loads((out / "run.json").read_text())["stopping_signal"]
    assert signal["calibrated"] and signal["units"] == "eV/A"
    assert signal["calibration"]["n_structures"] == 3
    assert signal["calibration"]["files"] == [str(tmp_path / "valid.xyz")]
    fitted = signal["calibration"]["error_model"]["force_calibration"]
    assert fitted["n_errors"] > 0 and fitted["scale"] + fitted["noise"] > 0
    report = (out / "report.html").read_text()
    assert "predicted pool force RMSE before the batch (eV/Å, calibrated)" in report
    assert "stopping-signal calibration" in report and "coverage of the 68%/95%" in report


def test_calibrate_without_labels_is_one_line_and_creates_nothing(inputs, tmp_path):
    ase.io.write(tmp_path / "bare.xyz", make_adsorbate_structures(2, seed=13, label=False))
    out = tmp_path / "bare-run"
    args = ["select", str(inputs / "pool.xyz"), "-n", "2", "-o", str(out)]
    result = runner.invoke(app, [*args, "--calibrate", str(tmp_path / "bare.xyz")])
    assert result.exit_code == 1, result.output
    assert "--calibrate needs reference energies and forces" in result.output
    assert "Traceback" not in result.output and not out.exists()
