"""Output directories: refuse to mix new results into old ones unless asked to.

A command that writes a run folder records its state in ``run.json``: ``"status": "running"``
is written first and ``"complete"`` last, so a folder whose run was killed says so, and the same
command may run into it again without ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from pathlib import Path

from fntk.errors import InputError

RUN_RECORD = "run.json"
"""The file of a run folder that records the run and its ``status``."""

RUNNING, COMPLETE = "running", "complete"


def run_status(path: str | os.PathLike) -> str | None:
    """``status`` of the run recorded in ``path/run.json``; ``None`` when there is none."""
    try:
        record = json.loads((Path(path) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    status = record.get("status") if isinstance(record, dict) else None
    return status if isinstance(status, str) else None


def _temporary_of(name: str) -> str | None:
    """The file an atomic write's temporary sibling ``.NAME.XXXXXXXX.tmp`` was for."""
    match = re.fullmatch(r"\.(.+)\.\w+\.tmp", name)
    return match.group(1) if match else None


def _foreign(path: Path, own: Collection[str]) -> list[str]:
    """Entries of ``path`` that are neither in ``own`` nor a temporary file of one of them."""
    names = set(own) | {RUN_RECORD}
    return sorted(
        p.name for p in path.iterdir() if p.name not in names and _temporary_of(p.name) not in names
    )


def remove_temporaries(path: str | os.PathLike, own: Collection[str]) -> None:
    """Delete the temporary files a killed run left of the outputs ``own`` in ``path``."""
    names = set(own) | {RUN_RECORD}
    for entry in Path(path).iterdir():
        if _temporary_of(entry.name) in names and entry.is_file():
            entry.unlink()


def check_output_dir(
    path: str | os.PathLike, *, overwrite: bool, own: Collection[str] | None = None
) -> Path:
    """Raise :class:`InputError` unless ``path`` may become an output folder (creates nothing).

    Refused: a file; an existing non-empty folder unless ``overwrite``. ``own``: the names a run
    writes into its folder; when given, a folder holding an incomplete run (``run.json`` status
    ``running``) and nothing but those names (and their temporary files) is accepted without
    ``overwrite``: the run is started again in it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(
            "output path exists and is not a directory", file=str(path), hint="choose another -o"
        )
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        status = run_status(path) if own is not None else None
        foreign = _foreign(path, own) if own is not None else []
        if status == RUNNING and foreign:
            raise InputError(
                "output directory holds an incomplete run and files it did not write "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})",
                file=str(path),
                hint="move them or choose another -o",
            )
        if status != RUNNING:
            what = "holds a complete run" if status == COMPLETE else "exists and is not empty"
            raise InputError(
                f"output directory {what}",
                file=str(path),
                hint="pass --overwrite or choose another -o",
            )
    return path


def prepare_output_dir(
    path: str | os.PathLike, *, overwrite: bool, own: Collection[str] | None = None
) -> Path:
    """Create ``path`` after :func:`check_output_dir`; check that it is writable."""
    path = check_output_dir(path, overwrite=overwrite, own=own)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create output directory ({exc.strerror})", file=str(path)
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(
            "output directory is not writable", file=str(path), hint="choose another -o"
        )
    return path
