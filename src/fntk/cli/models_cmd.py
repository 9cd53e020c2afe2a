"""``fntk models``: the model backends and how to name them."""

from __future__ import annotations

BACKEND_HELP = {
    "sevennet-0": "SevenNet-0 (11Jul2024), shipped in the sevenn wheel; loads offline. Default.",
    "sevennet": "sevennet:PATH - a SevenNet checkpoint file (e.g. your own fine-tune).",
    "mace": "mace:PATH - any mace-torch model file (MACE-MP-0, MACE-OFF, your own; "
    "NAME.model or NAME_compiled.model); mace:PATH@HEAD runs one head of a multi-head model.",
    "mace-mp": "mace-mp:small|medium - downloaded by mace-torch; needs internet.",
    "mace-off": "mace-off:small|medium|large - downloaded by mace-torch; needs internet.",
}


def models() -> None:
    """List the model specs fntk accepts."""
    from rich.console import Console
    from rich.table import Table

    from fntk.models import available_backends

    table = Table("spec", "what it loads")
    for prefix in available_backends():
        table.add_row(prefix, BACKEND_HELP.get(prefix, ""))
    Console().print(table)
