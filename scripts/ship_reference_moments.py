"""Write the reference moments of the default joint map on SevenNet-0 (CPU, float32) into the
package (``fntk.features.basis.SHIPPED_MOMENTS``), so that a first run skips the reference pass.

Run it after changing the default joint map, its reference set or the pinned SevenNet-0
weights (``tests/features/test_hidden_basis.py`` says when); old files of other keys are
removed.

    python scripts/ship_reference_moments.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch


def main() -> None:
    from fntk.features import default_options
    from fntk.features.basis import (
        CACHE_DIR_VARIABLE,
        SHIPPED_MOMENTS,
        moments_key,
        reference_moments,
    )
    from fntk.features.readout import linear_readout
    from fntk.models import load_backend

    torch.set_num_threads(1)
    backend = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
    options = default_options("joint", device="cpu")
    key = moments_key(backend, options)
    for old in SHIPPED_MOMENTS.glob("*.npz"):
        old.unlink()
    with tempfile.TemporaryDirectory() as folder:
        os.environ[CACHE_DIR_VARIABLE] = folder
        reference_moments(backend, linear_readout(backend, options.group), options)
        (made,) = Path(folder, "reference-moments").glob("*.npz")
        SHIPPED_MOMENTS.mkdir(exist_ok=True)
        shutil.copyfile(made, SHIPPED_MOMENTS / f"{key}.npz")
    os.chmod(SHIPPED_MOMENTS / f"{key}.npz", 0o644)
    print(f"wrote {SHIPPED_MOMENTS / f'{key}.npz'}")


if __name__ == "__main__":
    main()
