"""Import shims for third-party model code.

mace-torch pins e3nn 0.4.4, whose import calls ``torch.load`` on its own constants file; since
PyTorch 2.6 that load is ``weights_only`` and refuses the pickled ``slice`` objects in it. The
file ships inside the e3nn wheel, so allow-listing ``slice`` for that one import is safe. The
allow-list is a context manager and is restored afterwards (no global torch state is changed).
"""

from __future__ import annotations

import torch


def import_e3nn() -> None:
    """Import ``e3nn.o3`` once, working around the weights-only load of e3nn <= 0.4."""
    with torch.serialization.safe_globals([slice]):
        import e3nn.o3  # noqa: F401
