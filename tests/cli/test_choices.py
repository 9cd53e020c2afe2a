"""CLI choices, help and ``fntk models`` are read from the registries, never written by hand."""

from __future__ import annotations

import re

from typer.main import get_command
from typer.testing import CliRunner

from fntk.cli.main import app
from fntk.features.registry import FEATURE_MAPS
from fntk.models.base import backend_registry
from fntk.options import PARAMETER_GROUPS
from fntk.select.registry import selectors


def _choices(command: str, option: str) -> tuple[str, ...]:
    click_command = get_command(app).commands[command]  # type: ignore[attr-defined]
    (param,) = [p for p in click_command.params if option in p.opts]
    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.2x; click's type before
    choices = descriptor.choices if descriptor is not None else param.type.choices
    return tuple(choices)


def test_select_choices_are_the_registry_names():
    assert _choices("select", "--features") == FEATURE_MAPS.names()
    assert _choices("select", "--selector") == selectors().names()
    assert _choices("select", "--group") == PARAMETER_GROUPS
    assert _choices("bench", "--selector") == selectors().names()
    assert _choices("demo", "--features") == FEATURE_MAPS.names()
    assert _choices("features", "--map") == FEATURE_MAPS.names()
    assert _choices("features", "--group") == PARAMETER_GROUPS


def test_unknown_choice_is_a_usage_error_listing_the_names():
    result = CliRunner().invoke(app, ["select", "p.xyz", "-o", "x", "--selector", "lcdm"])
    assert result.exit_code == 2
    assert "lcmd" in re.sub(r"\s+", " ", result.output)


def test_models_lists_every_registered_backend():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for entry in backend_registry():
        assert entry.usage in result.output
    assert {"sevennet-0", "sevennet", "mace", "mace-mp", "mace-off"} <= set(
        backend_registry().names()
    )


def test_readme_names_every_registered_component():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for entry in backend_registry():
        assert f"`{entry.usage.replace('|', chr(92) + '|')}`" in readme, entry.usage
    for name in FEATURE_MAPS.names():
        assert f"| `{name}`" in readme, name
    for name in selectors().names():
        assert f"`{name}`" in readme, name


def test_select_loss_weight_flags_default_to_run_options():
    from fntk.pipeline import RunOptions

    click_command = get_command(app).commands["select"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in click_command.params}
    assert defaults["energy_weight"] == RunOptions().energy_weight
    assert defaults["forces_weight"] == RunOptions().forces_weight


def test_bench_help_defaults_are_bench_options_defaults():
    from typing import get_args

    from fntk.bench.options import METHOD_NAMES, Aggregation, BenchOptions, LearnerName
    from fntk.cli.types import AggregationChoice, LearnerChoice

    defaults = BenchOptions()
    params = get_command(app).commands["bench"].params  # type: ignore[attr-defined]
    shown = {p.name: p.show_default for p in params}
    param_defaults = {p.name: p.default for p in params}
    assert shown["rounds"] == str(defaults.rounds)
    assert shown["batch"] == str(defaults.batch)
    assert shown["seeds"] == str(defaults.n_seeds)
    assert shown["learner"] == defaults.learner
    assert f"bench: force-ntk {defaults.features.dim}" in shown["dim"]
    assert f"joint {defaults.features.dim}" in shown["dim"]
    assert shown["scope"] == defaults.finetune.scope
    assert shown["steps"] == str(defaults.finetune.n_steps)
    assert shown["epochs"] == f"{defaults.finetune.min_epochs:g}"
    assert param_defaults["selector"] == defaults.select.method
    assert param_defaults["relative_noise"] == defaults.select.relative_noise
    assert param_defaults["group"] == defaults.features.group
    assert param_defaults["batch_size"] == defaults.features.batch_size
    assert shown["committee_size"] == str(defaults.committee_size)
    assert shown["aggregation"] == defaults.committee_aggregation
    assert shown["methods"] == "all" and defaults.methods == METHOD_NAMES
    assert get_args(LearnerChoice) == get_args(LearnerName)
    assert get_args(AggregationChoice) == get_args(Aggregation)
    assert _choices("bench", "--learner") == get_args(LearnerName)
    assert _choices("bench", "--committee-aggregation") == get_args(Aggregation)
    assert _choices("bench", "--scope") == PARAMETER_GROUPS
