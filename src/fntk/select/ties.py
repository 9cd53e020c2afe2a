"""The tie rule of the whole selection engine: compare rounded scores, then source indices.

Scores are rounded to 40 bits before they are compared, and equal rounded scores go to the
structure with the smaller source index. Rounding makes it very unlikely that floating-point
noise (chunking, BLAS blocking, cancellation in ``k(x, x) + k(y, y) - 2 k(x, y)``) reorders
structures whose exact scores are equal, such as duplicates, so picks do not depend on the chunk
size in practice. It cannot make that impossible: two values one ulp apart on either side of a
grid point still get different keys (that needs noise to straddle a point of a 2**-40 grid,
which has never been seen in the tests but is not excluded).
"""

from __future__ import annotations

import numpy as np

TIE_BITS = 40


def tie_keys(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """``values`` rounded for comparison, shape kept.

    Parameters
    ----------
    values : ndarray, float64
    scale : float or None
        Round to multiples of ``scale * 2**-40`` (a selector fixes ``scale`` as its largest
        initial score, so noise on values near zero is rounded away too). ``None``: keep 40
        significant bits of each value (used where no common scale is known, e.g. while the
        pool streams through the shortlist).
    """
    if scale is None:
        mantissa, exponent = np.frexp(values)
        return np.ldexp(np.rint(mantissa * 2.0**TIE_BITS) / 2.0**TIE_BITS, exponent)
    quantum = (scale if scale > 0.0 else 1.0) * 2.0**-TIE_BITS
    return np.rint(values / quantum)
