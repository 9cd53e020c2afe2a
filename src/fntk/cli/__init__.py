"""Command-line interface: one module per command, registered in :mod:`fntk.cli.main`."""
