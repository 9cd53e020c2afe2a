"""The ``fntk`` command. Each command lives in its own module and imports the library lazily.

Exit codes: 0 success; 1 a user error (bad input, model that cannot load; printed as one red
line); 2 a command-line usage error (typer/click). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator

import typer

from fntk import __version__
from fntk.cli.bench_cmd import bench
from fntk.cli.data_cmd import data_app, make
from fntk.cli.demo_cmd import demo
from fntk.cli.features_cmd import features
from fntk.cli.models_cmd import models
from fntk.cli.predict_cmd import predict
from fntk.cli.select_cmd import select
from fntk.cli.uncertainty_cmd import uncertainty

app = typer.Typer(
    name="fntk",
    help="Pick which atomic structures to label next when fine-tuning a pretrained MLIP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's help: wraps at the terminal width, never cuts option names
)


def _one_line(markup: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(markup, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _silence_dask_on_interrupt() -> Iterator[None]:
    """On Ctrl-C, silence Dask's loggers before the interrupt unwinds the run: closing a cluster
    then logs its workers' shutdown and their tracebacks, none of which is news to the user."""
    import logging
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum, frame):
        for name in ("distributed", "dask", "tornado", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def user_errors_as_one_line(command: Callable) -> Callable:
    """Print a user error (:class:`~fntk.errors.FntkError`) as one line, exit 1; Ctrl-C as
    one line, exit 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from fntk.errors import FntkError

        try:
            with _silence_dask_on_interrupt():
                return command(*args, **kwargs)
        except FntkError as exc:
            _one_line(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            _one_line("[red]interrupted[/red]; rerun the same command to resume")
            raise typer.Exit(code=130) from None

    return wrapper


for _command in (select, features, bench, demo, predict, models, uncertainty):
    app.command()(user_errors_as_one_line(_command))
data_app.command("make")(user_errors_as_one_line(make))
app.add_typer(data_app, name="data")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fntk {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Debug log on stderr, including what model packages print while importing.",
    ),
) -> None:
    """Pick which atomic structures to label next when fine-tuning a pretrained MLIP."""
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        fntk_logger = logging.getLogger("fntk")
        fntk_logger.addHandler(handler)
        fntk_logger.setLevel(logging.DEBUG)


if __name__ == "__main__":
    sys.exit(app())
