"""One registry class for every kind of component.

Backends, feature maps, selectors, input formats, data sets and benchmark methods all use it.

Each registered component carries its name, a one-line help text, the usage string shown to
users (``mace:PATH``), its options class when it has one, and its capabilities. CLI choices,
help texts, error messages, ``fntk models`` and the README tables are derived from a registry,
so the names exist in one place. Like ASE's ``ioformats``, registering a name twice fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fntk.errors import unknown_name

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered component.

    Attributes
    ----------
    name : str
        Registry key (what users type).
    component : object
        The class or factory registered under ``name``.
    help : str
        One line: what it is.
    usage : str
        How users name it, e.g. ``"mace:PATH"`` (default: ``name``).
    options : type or None
        Its pydantic options class, when it has one.
    capabilities : frozenset of str
        What it provides (e.g. ``{"offline"}`` for a backend that loads without a network).
    """

    name: str
    component: T
    help: str
    usage: str = ""
    options: type | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)


class Registry(Generic[T]):
    """Components of one kind, keyed by name, in registration order.

    Parameters
    ----------
    kind : str
        What the components are (``"selector"``), for error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        *,
        help: str,
        usage: str = "",
        options: type | None = None,
        capabilities: frozenset[str] | set[str] = frozenset(),
    ) -> Callable[[T], T]:
        """Decorator registering a component under ``name``; a duplicate name raises."""

        def decorate(component: T) -> T:
            self.add(Entry(name, component, help, usage or name, options, frozenset(capabilities)))
            return component

        return decorate

    def add(self, entry: Entry[T]) -> None:
        """Register ``entry`` (see :meth:`register`)."""
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} registered twice")
        self._entries[entry.name] = entry

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._entries)

    def entry(self, name: str) -> Entry[T]:
        """The entry of ``name``.

        Raises
        ------
        InputError
            Unknown name; the one-line message lists the registered ones.
        """
        if name not in self._entries:
            raise unknown_name(self.kind, name, self.choices())
        return self._entries[name]

    def get(self, name: str) -> T:
        """The component registered as ``name`` (see :meth:`entry`)."""
        return self.entry(name).component

    def components(self) -> tuple[T, ...]:
        """The registered components, in registration order."""
        return tuple(e.component for e in self._entries.values())

    def choices(self) -> str:
        """The usages joined for help texts and messages: ``"lcmd, maxdet, ..."``."""
        return ", ".join(e.usage or e.name for e in self._entries.values())

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
