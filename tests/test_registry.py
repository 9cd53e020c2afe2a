"""Every kind of registered component answers an unknown name with one line naming the valid ones.

Formats, data sets, benchmark methods, model backends, feature maps and selectors share
:class:`fntk.registry.Registry`; an unknown name is a user error (:class:`InputError`, which the
CLI prints as one line), never a bare ``KeyError``/``ValueError`` traceback.
"""

from __future__ import annotations

import pytest

from fntk.errors import InputError
from fntk.registry import Entry, Registry


def _one_line_error(lookup, name: str, valid: tuple[str, ...]) -> str:
    with pytest.raises(InputError) as info:
        lookup(name)
    message = str(info.value)
    assert "\n" not in message and "unknown" in message and repr(name) in message
    for valid_name in valid:
        assert valid_name in message
    return message


def test_registry_unknown_name_lists_the_registered_ones():
    registry: Registry[int] = Registry("widget")
    registry.add(Entry("a", 1, "one"))
    registry.add(Entry("b", 2, "two"))
    assert registry.components() == (1, 2)
    message = _one_line_error(registry.get, "c", ("a", "b"))
    assert message == "unknown widget 'c'; choose one of a, b"
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(Entry("a", 3, "again"))


def test_unknown_input_format():
    from fntk.io.formats import FORMATS

    _one_line_error(FORMATS.get, "t1x", ("transition1x", "oc20-lmdb", "csv-index"))


def test_unknown_data_set():
    from fntk.data.datasets import dataset_spec

    _one_line_error(dataset_spec, "qm9", ("emt-adsorbates", "xtb-md", "xtb-reactions"))


def test_unknown_bench_method():
    from fntk.bench import METHOD_NAMES, BenchOptions, build_method

    _one_line_error(lambda name: build_method(name, BenchOptions()), "bald", METHOD_NAMES)


def test_unknown_backend_feature_map_and_selector():
    from fntk.features import FEATURE_MAP_NAMES, default_options
    from fntk.models.base import available_backends, backend_registry
    from fntk.select.registry import selectors

    assert available_backends() == sorted(backend_registry().names())
    assert "sevennet" in available_backends()
    _one_line_error(backend_registry().get, "nequip", tuple(available_backends()))
    _one_line_error(default_options, "ntk", FEATURE_MAP_NAMES)
    _one_line_error(selectors().get, "lcdm", ("lcmd", "maxdet", "random"))


def test_unknown_csv_index_energy_unit(tmp_path):
    from fntk.io.readers.csv_index import iter_csv_index

    path = tmp_path / "steps.csv"
    path.write_text("xyz\n")
    message = _one_line_error(
        lambda unit: next(iter_csv_index(path, energy_unit=unit)), "Ha", ("eV", "hartree")
    )
    assert str(path) in message
