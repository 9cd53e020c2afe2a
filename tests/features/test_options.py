"""Feature-map options: defaults build, JSON round trips, invalid values fail clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from fntk.features import (
    FEATURE_MAP_NAMES,
    JointNTKOptions,
    build_feature_map,
    default_options,
    options_to_json,
    parse_feature_options,
)


@pytest.mark.parametrize("name", FEATURE_MAP_NAMES)
def test_every_map_builds_from_defaults_and_round_trips(name):
    options = default_options(name)
    assert options.name == name
    text = options_to_json(options)
    assert parse_feature_options(text) == options
    assert parse_feature_options(json.loads(text)) == options
    assert build_feature_map(options).options is options


def test_names_are_the_registry():
    assert FEATURE_MAP_NAMES == ("embedding", "energy-ntk", "force-ntk", "joint")


def test_round_trip_keeps_non_defaults():
    options = JointNTKOptions(group="all", dim=64, seed=5, force_weight=10.0, per_atom=False)
    again = parse_feature_options(options_to_json(options))
    assert again == options and isinstance(again, JointNTKOptions)
    assert again.force_weight == 10.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "joint", "dim": 0}, "greater than or equal to 1"),
        ({"name": "joint", "force_weight": -1.0}, "greater than 0"),
        ({"name": "joint", "group": "everything"}, "'readout', 'last-interaction' or 'all'"),
        ({"name": "energy-ntk", "force_weight": 1.0}, "Extra inputs are not permitted"),
        ({"name": "embedding", "dtype": "float16"}, "'float32' or 'float64'"),
        ({"name": "force-ntk", "batch_size": 0}, "greater than or equal to 1"),
        ({"name": "kernel"}, "does not match any of the expected tags"),
    ],
)
def test_invalid_values_give_clear_errors(data, message):
    with pytest.raises(ValidationError, match=message):
        parse_feature_options(data)


def test_unknown_map_name_lists_valid_names():
    with pytest.raises(ValueError, match="embedding, energy-ntk, force-ntk, joint"):
        default_options("ntk")


def test_options_are_immutable():
    options = default_options("joint")
    with pytest.raises(ValidationError):
        options.dim = 3


@pytest.mark.parametrize(
    ("name", "energy", "force"),
    [
        ("embedding", True, False),
        ("energy-ntk", True, False),
        ("force-ntk", False, True),
        ("joint", True, True),
    ],
)
def test_maps_are_asked_for_their_row_kinds(name, energy, force):
    from fntk.features import has_energy_rows, has_force_rows, option_names, weighs_force_rows

    assert (has_energy_rows(name), has_force_rows(name)) == (energy, force)
    assert weighs_force_rows(name) == ("force_weight" in option_names(name))
    assert ("dim" in option_names(name)) == (name != "embedding")


def test_rows_weighed_and_stacked_as_the_map_says():
    from fntk.chunk import ENERGY_ROW, FORCE_ROW
    from fntk.features.assembly import stack_block, weigh_rows

    energy, forces = np.arange(3.0), np.ones((6, 3))
    joint = default_options("joint", force_weight=0.5)
    weighed_energy, weighed_forces = weigh_rows(energy, forces, 2, joint)
    block, kinds = stack_block(weighed_energy, weighed_forces)
    np.testing.assert_array_equal(block, np.vstack([energy / 2, 0.5 * forces]))
    np.testing.assert_array_equal(kinds, [ENERGY_ROW] + [FORCE_ROW] * 6)
    force_only, _ = weigh_rows(energy, forces, 2, default_options("force-ntk"))
    assert force_only is energy  # no per_atom option: the energy row is left alone
    block, kinds = stack_block(None, forces)
    assert block.shape == (6, 3) and set(kinds) == {FORCE_ROW}
