"""Output directories: refuse to mix new results into old ones unless asked to."""

from __future__ import annotations

import os
from pathlib import Path

from fntk.errors import InputError


def prepare_output_dir(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Create ``path``; refuse an existing non-empty one unless ``overwrite``; check writability."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(
            "output path exists and is not a directory", file=str(path), hint="choose another -o"
        )
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError(
            "output directory exists and is not empty",
            file=str(path),
            hint="pass --overwrite or choose another -o",
        )
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
