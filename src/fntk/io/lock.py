"""Locks on output folders, so two fntk processes never write the same results at once.

A lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems)
holding the holder's PID and host name. A second process is refused with the holder's PID; a
lock whose holder is dead (same host, no such PID) is stale and taken over. The lock file is
removed when the holder leaves the block, whatever the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from fntk.errors import BusyError

LOCK_NAME = ".fntk.lock"
"""Name of the lock file inside a locked folder."""


def _holder(path: Path) -> dict[str, object] | None:
    """The ``{"pid", "host"}`` recorded in the lock file; ``None`` if unreadable or gone."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(holder: dict[str, object]) -> bool:
    """Whether the process that wrote ``holder`` may still run (unknown hosts count as alive)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if holder.get("host") != socket.gethostname():
        return True  # cannot look at another machine's processes: never steal its lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _old(path: Path, seconds: float = 10.0) -> bool:
    """An unreadable lock file older than ``seconds``: its writer died before writing it."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, handle)
    return True


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike, *, what: str = "output directory", wait_s: float = 0.0
) -> Iterator[Path]:
    """Hold the lock of the existing ``folder`` inside the block.

    Parameters
    ----------
    folder : path
        The folder to lock (must exist).
    what : str
        How the refusal names the folder (``"output directory"``, ``"feature store"``).
    wait_s : float
        Seconds to wait for a live holder before refusing (for short critical sections).

    Raises
    ------
    BusyError
        Another live process holds the lock (the message names its PID).
    """
    path = Path(folder) / LOCK_NAME
    deadline = time.monotonic() + wait_s
    while not _try_create(path):
        holder = _holder(path)
        if (not _alive(holder)) if holder is not None else _old(path):
            with contextlib.suppress(FileNotFoundError):  # stale: its holder is gone
                path.unlink()
            continue
        if time.monotonic() >= deadline:
            pid = holder.get("pid", "?") if holder else "?"
            host = f" on {holder['host']}" if holder and holder.get("host") else ""
            raise BusyError(
                f"{folder}: {what} is in use by another fntk process (PID {pid}{host}; "
                f"lock file {path}) (wait for it to finish, or choose another folder)"
            )
        time.sleep(0.05)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
