"""Output directories: refuse to mix new results into old ones unless asked to.

A command that writes a run folder records its state in ``run.json``: ``"status": "running"``
is written first and ``"complete"`` last, so a folder whose run was killed says so, and the same
command may run into it again without ``--overwrite``. A run stopped by an error or by Ctrl-C
records ``"failed"`` or ``"interrupted"``: incomplete too. While a run writes into a folder it
holds the folder's lock (:mod:`fntk.io.lock`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path

from fntk.errors import InputError
from fntk.io.lock import LOCK_NAME

RUN_RECORD = "run.json"
"""The file of a run folder that records the run and its ``status``."""

RUNNING, COMPLETE = "running", "complete"
FAILED, INTERRUPTED = "failed", "interrupted"
INCOMPLETE = (RUNNING, FAILED, INTERRUPTED)
"""Statuses of a run that did not finish: its folder may be run into again."""


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
    names = set(own) | {RUN_RECORD, LOCK_NAME}
    return sorted(
        p.name for p in path.iterdir() if p.name not in names and _temporary_of(p.name) not in names
    )


def _has_entries(path: Path) -> bool:
    """Whether ``path`` holds anything besides a lock file (a run's own, or a stale one)."""
    return any(p.name != LOCK_NAME for p in path.iterdir())


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
    if path.is_dir() and _has_entries(path) and not overwrite:
        status = run_status(path) if own is not None else None
        foreign = _foreign(path, own) if own is not None else []
        if status in INCOMPLETE and foreign:
            raise InputError(
                "output directory holds an incomplete run and files it did not write "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})",
                file=str(path),
                hint="move them or choose another -o",
            )
        if status not in INCOMPLETE:
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


def check_resumable(
    path: str | os.PathLike,
    *,
    options: Mapping[str, object],
    inputs: Mapping[str, object],
    ignore: Collection[str] = (),
    defaults: Mapping[str, object] | None = None,
) -> None:
    """Raise :class:`InputError` unless ``--resume`` may continue the run in ``path``.

    A new or empty folder starts the run. Otherwise ``path`` must hold an incomplete run
    (:data:`INCOMPLETE`) recorded with the same ``options`` and ``inputs``; a complete run, a
    folder with no run and a run of other options or inputs are refused, the message naming
    the differences (``option n: recorded 5, asked for 3``). Top-level option keys in
    ``ignore`` (how the run executes, not what it picks) may differ. A top-level option that
    the record lacks (a run started by an older fntk, before the option existed) counts as
    its value in ``defaults``, the value that older version ran with.
    """
    path = Path(path)
    if not path.is_dir() or not _has_entries(path):
        return
    try:
        record = json.loads((path / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("status") not in INCOMPLETE:
        what = (
            "holds a complete run"
            if isinstance(record, dict) and record.get("status") == COMPLETE
            else "holds no fntk run"
        )
        raise InputError(
            f"output directory {what}; --resume continues an incomplete run only",
            file=str(path),
            hint="pass --overwrite to replace it, or choose another -o",
        )
    recorded = record.get("options")
    if isinstance(recorded, Mapping):
        recorded = {k: v for k, v in {**(defaults or {}), **recorded}.items() if k not in ignore}
    asked = {k: v for k, v in options.items() if k not in ignore}
    differences = _differences("option", recorded, asked)
    differences += _differences("input", record.get("inputs"), inputs)
    if differences:
        shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
        raise InputError(
            f"--resume: the incomplete run in this folder was started otherwise ({shown})",
            file=str(path),
            hint="rerun it with its own options and inputs, or pass --overwrite, or choose "
            "another -o",
        )


def _differences(what: str, recorded: object, asked: object, prefix: str = "") -> list[str]:
    """``WHAT PATH: recorded X, asked for Y`` for every leaf where the two mappings differ."""
    if isinstance(recorded, Mapping) and isinstance(asked, Mapping):
        found = []
        for key in sorted(set(recorded) | set(asked), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            found += _differences(what, recorded.get(key), asked.get(key), name)
        return found
    if recorded == asked:
        return []
    if not prefix:  # a run.json without the record (written by another program)
        return [f"{what}s not recorded in run.json"]
    return [f"{what} {prefix}: recorded {recorded!r}, asked for {asked!r}"]
