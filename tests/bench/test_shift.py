"""Pool-shift parsing and filtering."""

from __future__ import annotations

import pytest

from fntk.bench import BenchOptions, apply_pool_shifts, parse_pool_shift, select_candidates
from fntk.errors import InputError


def test_parse_forms():
    assert parse_pool_shift("element:Pt").values == (78,)
    assert parse_pool_shift("element:!Pt,Cu").op == "not in"
    shift = parse_pool_shift("info:metal=Cu,Ag")
    assert (shift.key, shift.op, shift.values) == ("metal", "in", ("Cu", "Ag"))
    assert parse_pool_shift("info:metal!=Cu").op == "not in"
    shift = parse_pool_shift("info:temperature_K<=600")
    assert (shift.key, shift.op, shift.values) == ("temperature_K", "<=", (600.0,))
    assert parse_pool_shift("info:temperature_K > 600").op == ">"


@pytest.mark.parametrize("spec", ["element:Xx", "element:", "metal=Cu", "info:t<=hot", "info:"])
def test_parse_rejects(spec):
    with pytest.raises(ValueError):
        parse_pool_shift(spec)


def test_options_validate_shift():
    with pytest.raises(ValueError, match="pool shift"):
        BenchOptions(pool_shift=("elements:Pt",))


def test_filtering(tiny_sets):
    pool = tiny_sets["pool"].structures  # odd positions Cu, even Pt; positions >= 5 at 900 K
    assert apply_pool_shifts(pool, ["element:Pt"]).tolist() == [0, 2, 4, 6, 8]
    assert apply_pool_shifts(pool, ["element:!Pt"]).tolist() == [1, 3, 5, 7, 9]
    assert apply_pool_shifts(pool, ["info:metal=Cu,Ag"]).tolist() == [1, 3, 5, 7, 9]
    assert apply_pool_shifts(pool, ["info:temperature_K<=600"]).tolist() == [0, 1, 2, 3, 4]
    assert apply_pool_shifts(pool, ["info:temperature_K>600", "info:metal!=Cu"]).tolist() == [
        6,
        8,
    ]
    assert apply_pool_shifts(pool, ["info:temperature_K=900.0"]).tolist() == [5, 6, 7, 8, 9]


def test_filter_errors_name_the_frame(tiny_sets):
    pool = tiny_sets["pool"].structures
    with pytest.raises(InputError, match=r"frame 0.*'metl' is missing"):
        apply_pool_shifts(pool, ["info:metl=Cu"], file="pool.xyz")
    with pytest.raises(InputError, match="not a number"):
        apply_pool_shifts(pool, ["info:metal<=3"])
    with pytest.raises(InputError, match="no pool structure"):
        apply_pool_shifts(pool, ["element:Au"])


def test_candidates_shift_then_subsample(tiny_sets):
    options = BenchOptions(pool_shift=("element:Pt",), max_pool=3)
    picked = select_candidates(tiny_sets["pool"], options)
    assert len(picked) == 3 and set(picked.tolist()) <= {0, 2, 4, 6, 8}
    assert picked.tolist() == sorted(picked.tolist())
    assert select_candidates(tiny_sets["pool"], options).tolist() == picked.tolist()
