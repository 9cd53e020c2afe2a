"""Write the reference moments of the default joint map on SevenNet-0 (CPU, float32) into the
package (``fntk.features.basis.SHIPPED_MOMENTS``), so that a first run skips the reference pass.

Run it after changing the default joint map, its reference set or the pinned SevenNet-0
weights (``tests/features/test_hidden_basis.py`` says when); old files of other keys are
removed.

    python scripts/ship_reference_moments.py
"""

from __future__ import annotations

import torch


def main() -> None:
    from fntk.features import default_options
    from fntk.features.basis import SHIPPED_MOMENTS, _compute_moments, moments_key, save_moments
    from fntk.features.readout import linear_readout
    from fntk.models import load_backend

    torch.set_num_threads(1)
    backend = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
    options = default_options("joint", device="cpu")
    moments = _compute_moments(backend, linear_readout(backend, options.group), options)
    for old in SHIPPED_MOMENTS.glob("*.npz"):
        old.unlink()
    path = SHIPPED_MOMENTS / f"{moments_key(backend, options)}.npz"
    save_moments(path, moments)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
