"""Pool shifts: filters that bias the candidate pool relative to the test distribution.

A shift is a short spec string, parsed once into a :class:`PoolShift`:

- ``element:Pt`` keeps structures that contain Pt (``element:Pt,Pd``: any of them);
  ``element:!Pt`` keeps those that contain none of them.
- ``info:KEY=V1,V2`` keeps structures whose ``atoms.info[KEY]`` is one of the values (compared
  as numbers when both sides are numbers, else as text); ``info:KEY!=V1,V2`` the others.
- ``info:KEY<=X`` (also ``<``, ``>=``, ``>``) compares ``atoms.info[KEY]`` with the number X.

A structure that lacks ``KEY`` is an input error (naming the frame), never silently dropped, so a
misspelt key cannot empty the pool.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from fntk.errors import InputError

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_INFO = re.compile(r"^info:(?P<key>[^=!<>]+?)\s*(?P<op><=|>=|!=|=|<|>)\s*(?P<value>.+)$")


@dataclass(frozen=True)
class PoolShift:
    """One parsed pool filter.

    Attributes
    ----------
    spec : str
        The spec it was parsed from.
    kind : {"element", "info"}
    key : str
        ``info`` key (empty for ``element``).
    op : str
        ``"in"``, ``"not in"`` or a comparison ``<=``, ``<``, ``>=``, ``>``.
    values : tuple
        Atomic numbers (``element``), text values (``=``/``!=``) or one number (comparisons).
    """

    spec: str
    kind: str
    key: str
    op: str
    values: tuple

    def matches(self, atoms: Atoms, *, file: str = "<pool>", index: int | None = None) -> bool:
        """Whether ``atoms`` passes the filter.

        Raises
        ------
        InputError
            ``atoms.info`` lacks the key, or a comparison meets a non-numeric value.
        """
        if self.kind == "element":
            present = bool(set(self.values) & {int(z) for z in atoms.numbers})
            return present if self.op == "in" else not present
        if self.key not in atoms.info:
            raise InputError(
                f"pool shift {self.spec!r}: info key {self.key!r} is missing",
                file=file,
                index=index,
                hint=f"keys of this frame: {', '.join(sorted(atoms.info)) or 'none'}",
            )
        value = atoms.info[self.key]
        if self.op in ("in", "not in"):
            found = any(_equal(value, v) for v in self.values)
            return found if self.op == "in" else not found
        number = _as_number(value)
        if number is None:
            raise InputError(
                f"pool shift {self.spec!r}: info[{self.key!r}] = {value!r} is not a number",
                file=file,
                index=index,
            )
        return _COMPARISONS[self.op](number, self.values[0])


def parse_pool_shift(spec: str) -> PoolShift:
    """Parse one shift spec (see the module docstring).

    Raises
    ------
    ValueError
        Unknown form, unknown element or a comparison with a non-numeric bound.
    """
    text = spec.strip()
    if text.startswith("element:"):
        body = text[len("element:") :].strip()
        op = "not in" if body.startswith("!") else "in"
        symbols = [s.strip() for s in body.lstrip("!").split(",") if s.strip()]
        unknown = [s for s in symbols if s not in atomic_numbers]
        if not symbols or unknown:
            raise ValueError(f"pool shift {spec!r}: give element symbols, e.g. element:Pt,Pd")
        return PoolShift(spec, "element", "", op, tuple(atomic_numbers[s] for s in symbols))
    match = _INFO.match(text)
    if match is None:
        raise ValueError(
            f"pool shift {spec!r} is not one of element:SYMBOLS, element:!SYMBOLS, "
            "info:KEY=V1,V2, info:KEY!=V1,V2, info:KEY<=X (<, >=, >)"
        )
    key, op, raw = match["key"].strip(), match["op"], match["value"].strip()
    if op in ("=", "!="):
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        return PoolShift(spec, "info", key, "in" if op == "=" else "not in", values)
    bound = _as_number(raw)
    if bound is None:
        raise ValueError(f"pool shift {spec!r}: {raw!r} is not a number")
    return PoolShift(spec, "info", key, op, (bound,))


def apply_pool_shifts(
    structures: Sequence[Atoms],
    specs: Sequence[str],
    *,
    file: str = "<pool>",
    frame_indices: Sequence[int] | None = None,
) -> np.ndarray:
    """Positions in ``structures`` that pass every shift in ``specs``, ascending, int64.

    Raises
    ------
    InputError
        A frame lacks an ``info`` key a shift uses, or no structure passes.
    """
    shifts = [parse_pool_shift(spec) for spec in specs]
    frames = list(range(len(structures))) if frame_indices is None else list(frame_indices)
    kept = [
        i
        for i, atoms in enumerate(structures)
        if all(s.matches(atoms, file=file, index=frames[i]) for s in shifts)
    ]
    if not kept:
        raise InputError(
            f"no pool structure passes the pool shift {' and '.join(specs)}",
            file=file,
            hint="loosen --pool-shift",
        )
    return np.asarray(kept, dtype=np.int64)


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # numpy scalars, ints, numeric strings
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _equal(value: object, wanted: str) -> bool:
    """``info`` value equals the spec's text, as numbers when both are numeric."""
    a, b = _as_number(value), _as_number(wanted)
    if a is not None and b is not None:
        return a == b
    return str(value) == wanted
