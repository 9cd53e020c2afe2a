"""fntk: pick which atomic structures to label next when fine-tuning a pretrained MLIP.

The whole job, files in and picks out, is :func:`fntk.next_batch` (what ``fntk select`` runs);
the selection engine on arrays is :mod:`fntk.select`. ``import fntk`` loads neither torch nor
ASE: :func:`next_batch` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fntk.pipeline import next_batch
    from fntk.pipeline.calculator import Calculator

__all__ = ["Calculator", "__version__", "next_batch"]


def __getattr__(name: str) -> Any:
    if name == "next_batch":
        from fntk.pipeline import next_batch

        return next_batch
    if name == "Calculator":
        from fntk.pipeline.calculator import Calculator

        return Calculator
    raise AttributeError(f"module 'fntk' has no attribute {name!r}")
