"""``fntk models``: the model backends and how to name them (read from the backend registry)."""

from __future__ import annotations


def models() -> None:
    """List the model specs fntk accepts."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from fntk.models.base import backend_registry

    table = Table("spec", "what it loads", "offline")
    for entry in backend_registry():
        offline = "yes" if "offline" in entry.capabilities else "needs internet"
        table.add_row(escape(entry.usage), escape(entry.help), offline)
    Console().print(table)
