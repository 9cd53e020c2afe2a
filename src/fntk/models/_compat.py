"""Import shims for third-party model code.

mace-torch pins e3nn 0.4.4, whose import calls ``torch.load`` on its own constants file; since
PyTorch 2.6 that load is ``weights_only`` and refuses the pickled ``slice`` objects in it. The
file ships inside the e3nn wheel, so allow-listing ``slice`` for that one import is safe. The
allow-list is a context manager and is restored afterwards (no global torch state is changed).

Model packages also talk while they are imported (mace-torch prints "cuequivariance ... is not
available" to stdout; e3nn and others warn). :func:`quiet_third_party_imports` keeps that off
the user's terminal and hands it to the ``fntk.models`` logger at DEBUG level, which
``fntk --verbose`` shows.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import torch

logger = logging.getLogger("fntk.models")


@contextlib.contextmanager
def quiet_third_party_imports() -> Iterator[None]:
    """Capture stdout, stderr and warnings of the imports inside; log them at DEBUG level."""
    buffer = io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(buffer),
        contextlib.redirect_stderr(buffer),
    ):
        warnings.simplefilter("always")
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            logger.debug("import: %s", line)
    for warning in caught:
        logger.debug("import warning: %s: %s", warning.category.__name__, warning.message)


def import_e3nn() -> None:
    """Import ``e3nn.o3`` once, working around the weights-only load of e3nn <= 0.4."""
    with quiet_third_party_imports(), torch.serialization.safe_globals([slice]):
        import e3nn.o3  # noqa: F401
