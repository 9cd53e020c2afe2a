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


class ModelLoadError(FntkError, RuntimeError):
    """A model backend could not be loaded (bad spec, missing file, no network)."""


class CapabilityError(FntkError, ValueError):
    """Something was asked of a backend or component that it does not provide."""


class NumericalError(FntkError, ArithmeticError):
    """A numerical step failed for good (e.g. Cholesky still failing after jitter)."""
