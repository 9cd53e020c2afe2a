"""Picks vs pool: atom count, largest reference force and categorical ``info`` tags.

Pure novelty chases outliers (bond-stretched geometries, tiny fragments, rare components);
this table shows at a glance whether the picks look like the pool (DESIGN.md section 4).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms

MAX_TAG_VALUES = 12
"""``info`` keys with at most this many distinct string values (over the pool) are tabulated."""
TOP_FORCE_QUANTILE = 0.95
"""Picks whose largest atomic force exceeds this pool quantile count as high-force."""


def max_force(atoms: Atoms) -> float | None:
    """Largest atomic force norm of the structure's reference labels (``forces`` array or an
    attached calculator's results, never computed), eV/Angstrom; ``None`` without labels."""
    forces = atoms.arrays.get("forces")
    if forces is None:
        forces = (getattr(atoms.calc, "results", None) or {}).get("forces")
    if forces is None or not len(forces):
        return None
    return float(np.linalg.norm(np.asarray(forces, dtype=np.float64), axis=1).max())


class StructureProfile:
    """Atom counts, largest forces and categorical tags of a set of structures, streamed."""

    def __init__(self) -> None:
        self.n_atoms: list[int] = []
        self.max_force: list[float] = []
        self.tags: dict[str, list[str | None]] = {}
        self._values: dict[str, set[str]] = {}  # distinct values of each tabulated key
        self._too_many: set[str] = set()

    def add(self, atoms: Atoms) -> None:
        """Record one structure (a few numbers; the geometry is not kept)."""
        k = len(self.n_atoms)
        self.n_atoms.append(len(atoms))
        force = max_force(atoms)
        self.max_force.append(np.nan if force is None else force)
        for key, value in atoms.info.items():
            if key.startswith("fntk_") or key in self._too_many or not isinstance(value, str):
                continue
            column = self.tags.setdefault(key, [None] * k)
            column.append(value)
            values = self._values.setdefault(key, set())
            values.add(value)
            if len(values) > MAX_TAG_VALUES:
                self._too_many.add(key)
                del self.tags[key], self._values[key]
        for column in self.tags.values():
            if len(column) < k + 1:
                column.append(None)

    @classmethod
    def of(cls, structures: Iterable[Atoms]) -> StructureProfile:
        profile = cls()
        for atoms in structures:
            profile.add(atoms)
        return profile


SUMMARY_COLUMNS = (
    "median atoms",
    "median max abs F (eV/Å)",
    f"above pool's {100 * TOP_FORCE_QUANTILE:.0f}th pct max abs F",
)
"""Headers of :func:`set_summary`'s cells (no ``|``: the cells also go into Markdown tables)."""


def force_threshold(pool_max_force: np.ndarray) -> float | None:
    """The pool's :data:`TOP_FORCE_QUANTILE` of the largest force over its labelled structures
    (NaN: unlabelled); ``None`` when none is labelled."""
    labelled = pool_max_force[np.isfinite(pool_max_force)]
    return float(np.quantile(labelled, TOP_FORCE_QUANTILE)) if len(labelled) else None


def set_summary(
    n_atoms: np.ndarray | Sequence[int], max_force: np.ndarray, threshold: float | None
) -> tuple[str, str, str]:
    """The :data:`SUMMARY_COLUMNS` cells of one set of structures: median atom count, median
    largest force (eV/Angstrom) and the share whose largest force is above ``threshold``."""
    known = max_force[np.isfinite(max_force)]
    return (
        f"{np.median(n_atoms):g}" if len(n_atoms) else "-",
        f"{np.median(known):.2f}" if len(known) else "-",
        f"{100 * np.mean(known > threshold):.0f}%" if threshold is not None and len(known) else "-",
    )


def common_values(values: Sequence[str | None]) -> list[str]:
    """The (at most :data:`MAX_TAG_VALUES`) most common values of a tag, most common first."""
    counts = Counter(v for v in values if v is not None)
    return [value for value, _ in counts.most_common(MAX_TAG_VALUES)]


def share(values: Sequence[str | None] | np.ndarray, value: str) -> float:
    """Fraction of ``values`` equal to ``value`` (0 for no values)."""
    return float(np.mean([v == value for v in values])) if len(values) else 0.0


def picks_vs_pool_rows(pool: StructureProfile, picked: StructureProfile) -> list[dict[str, object]]:
    """Two table rows (``pool``, ``picked``): the :func:`set_summary` cells, and each tag value's
    share (%) for the pool's string ``info`` keys with 2 to :data:`MAX_TAG_VALUES` values."""
    pool_force = np.asarray(pool.max_force, dtype=np.float64)
    threshold = force_threshold(pool_force)
    rows = []
    for name, profile in (("pool", pool), ("picked", picked)):
        forces = np.asarray(profile.max_force, dtype=np.float64)
        cells = set_summary(profile.n_atoms, forces, threshold)
        row = {"structures": len(profile.n_atoms), **dict(zip(SUMMARY_COLUMNS, cells))}
        rows.append({"set": name, **row})
    for key, values in pool.tags.items():
        common = common_values(values)
        if len(common) < 2:
            continue  # one value everywhere (a data set name): nothing to compare
        picked_values = picked.tags.get(key, [None] * len(picked.n_atoms))
        for value in common:
            rows[0][f"{key}={value}"] = f"{100 * share(values, value):.0f}%"
            rows[1][f"{key}={value}"] = f"{100 * share(picked_values, value):.0f}%"
    return rows
