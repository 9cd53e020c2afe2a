"""Plots and the HTML report of a selection run."""

from fntk.report.html import render_report
from fntk.report.plots import (
    plot_composition,
    plot_posterior_variance,
    plot_projection,
    structure_summaries,
)

__all__ = [
    "plot_composition",
    "plot_posterior_variance",
    "plot_projection",
    "render_report",
    "structure_summaries",
]
