"""The summary's picks-vs-pool table shows outlier chasing (high-force, small, rare picks)."""

from __future__ import annotations

import numpy as np

from fntk.bench.results import PoolProfile, picks_markdown


def test_picks_table_compares_atoms_forces_and_tags_with_the_pool():
    n = 100
    max_force = np.linspace(0.1, 10.0, n)  # structure 99 has the largest force
    profile = PoolProfile(
        n_atoms=np.where(np.arange(n) >= 95, 3, 7),
        max_force=max_force,
        tags={"kind": ["stretch" if i >= 95 else "md" for i in range(n)]},
        candidates=np.arange(n),
    )
    lines = picks_markdown(profile, {"chaser": [95, 96, 97, 98, 99], "typical": [1, 2, 3, 4, 5]})
    table = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ")}
    pool, chaser, typical = table["pool"], table["chaser"], table["typical"]
    assert "| 100 | 7 |" in pool and "| 5% |" in pool
    assert "| 5 | 3 |" in chaser and "| 100% |" in chaser
    assert "stretch: 100 / 5" in chaser and "md: 0 / 95" in chaser
    assert "| 0% |" in typical and "stretch: 0 / 5" in typical


def test_picks_table_without_labels_or_picks():
    profile = PoolProfile(np.array([2, 3]), None, {}, np.arange(2))
    assert picks_markdown(profile, {}) == []
    lines = picks_markdown(profile, {"m": [1]})
    assert any(line.startswith("| m | 1 | 3 | - | - |") for line in lines)
