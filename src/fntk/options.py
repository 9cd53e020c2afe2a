"""Option types shared by several layers, written once (torch-free).

Component options live next to their component (``fntk.features.options``,
``fntk.select.options``, ``fntk.learn.options``, ``fntk.bench.options``); the literals that more
than one of them use are defined here.
"""

from __future__ import annotations

from typing import Literal, get_args

ParameterGroup = Literal["readout", "last-interaction", "all"]
"""Named parameter subsets of a backend: the readout, the last interaction block plus the
readout, or every parameter. NTK features are taken over one; fine-tuning trains one."""

PARAMETER_GROUPS: tuple[str, ...] = get_args(ParameterGroup)

ComputeDtype = Literal["float32", "float64"]
"""Floating-point type a model runs in."""
