"""Density-weighted coverage: cover the pool where it is both dense and uncertain.

``coverage-density`` is :class:`~fntk.select.coverage.Coverage` with two changes. Its
candidates are the uniform sample of ``M`` pool structures together with the top ``M`` by
posterior variance (the seed's shortlist, DESIGN.md section 3), streamed in the same pass
(:mod:`fntk.select.candidates`), so any structure that shortlist reaches can be picked. And each
structure to cover (the uniform sample, or the target sample with ``--target``) counts with its
normalised posterior variance under the training set, fixed for the batch, so the objective
stays monotone submodular: uncertain structures where the pool is dense are covered first.
Measured against ``coverage`` in ``benchmarks/results/acquisition-2026-12-06``.
"""

from __future__ import annotations

from fntk.select.coverage import Coverage
from fntk.select.registry import register_selector


@register_selector(
    "coverage-density",
    help="coverage with each structure to cover weighted by its posterior variance, picking "
    "from the uniform sample and the top M by posterior variance",
)
class CoverageDensity(Coverage):
    """Coverage of the uniform sample (or the target sample), weighted by posterior variance,
    over wider candidates (see the module docstring)."""

    variance_candidates = True
    weighted_cover = True
