"""Error hierarchy of fntk.

Every error a user can cause derives from :class:`FntkError`; the CLI prints it as one line and
exits with status 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FntkError(Exception):
    """Base class of the errors fntk raises on purpose."""


class InputError(FntkError, ValueError):
    """Bad input data: names the file, the frame index (when known), what is wrong and the fix."""

    def __init__(
        self, problem: str, *, file: str | None = None, index: int | None = None, hint: str = ""
    ) -> None:
        self.problem = problem
        self.file = file
        self.index = index
        self.hint = hint
        where = ""
        if file is not None:
            where = f"{file}"
            if index is not None:
                where += f", frame {index}"
            where += ": "
        message = f"{where}{problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class OutputError(FntkError, OSError):
    """An output could not be written (disk full, quota, read-only file system): names the path."""


class BusyError(FntkError, RuntimeError):
    """An output folder or store is in use by another fntk process (names its PID)."""


class ModelLoadError(FntkError, RuntimeError):
    """A model backend could not be loaded (bad spec, missing file, no network)."""


class CapabilityError(FntkError, ValueError):
    """Something was asked of a backend or component that it does not provide."""


class NumericalError(FntkError, ArithmeticError):
    """A numerical step failed for good (e.g. Cholesky still failing after jitter)."""


def unknown_name(kind: str, name: object, valid: str, *, file: str | None = None) -> InputError:
    """The one-line error for a ``kind`` named ``name`` that does not exist, listing ``valid``.

    ``file`` names the input the name was read from, when it came from one.
    """
    return InputError(f"unknown {kind} {name!r}; choose one of {valid}", file=file)


def invalid_options(
    exc: Exception, what: str = "option", *, names: dict[str, str] | None = None
) -> InputError:
    """One-line :class:`InputError` for a pydantic ``ValidationError`` (or a ``ValueError``).

    Each problem is written ``field.path: message``; ``what`` names the options (e.g.
    ``"benchmark option"``); ``names`` maps field paths to the flags users type
    (``{"select.method": "--selector"}``), written ``--selector (select.method)``.
    """
    errors = getattr(exc, "errors", None)
    if callable(errors):
        names = names or {}
        problems = []
        for e in errors():
            path = ".".join(str(p) for p in e["loc"]) or "value"
            flag = next((names[k] for k in names if path == k or path.startswith(k + ".")), None)
            problems.append(f"{flag} ({path}): {e['msg']}" if flag else f"{path}: {e['msg']}")
        return InputError(f"invalid {what}: " + "; ".join(problems))
    return InputError(str(exc))
