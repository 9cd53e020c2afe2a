"""The registry of batch selectors: the one source of their names and help texts.

A selector is a :class:`~fntk.select.base.GreedySelector` subclass in any module of
:mod:`fntk.select`, decorated with :func:`register_selector`; adding a selector is one new
file. :func:`selectors` imports the package's modules once, so the registry is complete when
options are validated or CLI choices are listed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from fntk.registry import Registry

C = TypeVar("C", bound=type)

_SELECTORS: Registry[type] = Registry("selector")


def register_selector(name: str, *, help: str) -> Callable[[C], C]:
    """Class decorator registering a selector under ``name`` (sets ``cls.name``)."""

    def decorate(cls: C) -> C:
        cls.name = name  # type: ignore[attr-defined]
        _SELECTORS.register(name, help=help)(cls)
        return cls

    return decorate


def selectors() -> Registry[type]:
    """The complete selector registry (imports every module of :mod:`fntk.select` once)."""
    import fntk.select as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return _SELECTORS
