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


def picks_vs_pool_rows(pool: StructureProfile, picked: StructureProfile) -> list[dict[str, object]]:
    """Two table rows (``pool``, ``picked``): median atoms, median largest force, share above
    the pool's 95th percentile of the largest force, and each tag value's share (%) for the
    pool's string ``info`` keys with 2 to :data:`MAX_TAG_VALUES` values."""
    pool_force = np.asarray(pool.max_force, dtype=np.float64)
    picked_force = np.asarray(picked.max_force, dtype=np.float64)
    labelled = np.isfinite(pool_force)
    threshold = (
        float(np.quantile(pool_force[labelled], TOP_FORCE_QUANTILE)) if labelled.any() else None
    )
    rows = []
    for name, profile, forces in (("pool", pool, pool_force), ("picked", picked, picked_force)):
        known = forces[np.isfinite(forces)]
        row: dict[str, object] = {
            "structures": len(profile.n_atoms),
            "median atoms": f"{np.median(profile.n_atoms):g}" if profile.n_atoms else "-",
            "median max |F| (eV/Å)": f"{np.median(known):.2f}" if len(known) else "-",
            "above pool's 95th pct max |F|": f"{100 * np.mean(known > threshold):.0f}%"
            if threshold is not None and len(known)
            else "-",
        }
        rows.append({"set": name, **row})
    for key, values in pool.tags.items():
        counts = Counter(v for v in values if v is not None)
        if len(counts) < 2:
            continue  # one value everywhere (a data set name): nothing to compare
        picked_values = picked.tags.get(key, [None] * len(picked.n_atoms))
        for value, _ in counts.most_common(MAX_TAG_VALUES):
            rows[0][f"{key}={value}"] = f"{100 * _share(values, value):.0f}%"
            rows[1][f"{key}={value}"] = f"{100 * _share(picked_values, value):.0f}%"
    return rows


def _share(values: Sequence[str | None], value: str) -> float:
    return float(np.mean([v == value for v in values])) if len(values) else 0.0
