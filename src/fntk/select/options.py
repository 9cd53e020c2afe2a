"""Options of the selection engine: one pydantic model, validated once at the boundary.

:class:`SelectOptions` holds every knob of the precision matrix, the posterior-variance
shortlist and the batch selector (DESIGN.md sections 3-4). Defaults and their units live here
only. Selector names come from the registry (:func:`fntk.select.registry.selectors`) alone:
:data:`SelectorName` validates against it, and CLI choices are read from it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _registered_selector(name: str) -> str:
    from fntk.select.registry import selectors

    selectors().entry(name)  # ValueError listing the names
    return name


SelectorName = Annotated[str, AfterValidator(_registered_selector)]
"""Name of a registered batch selector (``coverage`` is the default)."""

Normalization = Literal["total", "per-row", "per-atom"]
Mode = Literal["tp", "p"]
KernelName = Literal["auto", "linear", "gram"]

DEFAULT_COST_EXPONENT = 3.0
"""Usual exponent of the labelling cost ``c(N) = N**alpha`` (plane-wave DFT scales ~ N^3)."""


class SelectOptions(BaseModel):
    """Options of the precision matrix, the shortlist and the batch selector.

    Attributes
    ----------
    method : SelectorName
        Batch selector run on the shortlist. ``coverage`` (greedy k-median on the directions of
        the posterior, over a uniform sample of the pool; :mod:`fntk.select.coverage`) is the
        default: on both benchmarks it beat ``lcmd`` (the best general-purpose method of
        Holzmüller et al., JMLR 2023), which, like every variance- or distance-maximising
        selector, over-picks the pool's high-force outliers and lost to random in distribution
        (``benchmarks/results/active-learning-2026-12-02``).
    sigma : float or None
        Absolute noise standard deviation, in feature units. ``None`` (default) sets
        ``sigma**2 = relative_noise * mean_row_norm2`` where ``mean_row_norm2`` is the mean
        squared norm of the weighted training rows (the mean diagonal of the training row gram).
        With this default, sigma scales with the features, so rescaling all features leaves the
        picks unchanged; it equals bmdal_reg's ``('train', [sqrt(relative_noise), None])``
        transform (auto scale, then posterior with noise ``sqrt(relative_noise)``).
    relative_noise : float
        Noise variance relative to the feature scale, used when ``sigma`` is ``None``
        (default ``1e-6``, DESIGN.md section 3). With an empty training set there is no feature
        scale, so ``sigma**2 = relative_noise`` (in squared feature units) and the status says so.
    energy_weight, force_weight : float
        Weights ``W`` of energy rows and force rows. Every computation uses the weighted block
        ``W^{1/2} Phi``: the precision ``A = sigma^2 I + sum_t Phi(t)^T W Phi(t)``, the
        posterior variance, the structure kernels and the information gains. Default 1.0 each,
        because the joint feature map already scales its force rows by the loss weight lambda
        (DESIGN.md section 2); set them only for feature maps that do not.
    normalization : {"total", "per-row", "per-atom"}
        How the posterior variance ``sigma^2 tr(Phi A^{-1} Phi^T)`` of a block is normalised
        before ranking: not at all, divided by the row count ``m(x)``, or divided by the atom
        count ``N``. Default ``"per-row"``: the mean posterior variance of one label (an energy
        or one force component). ``"total"`` grows with the number of rows and so favours large
        structures, which are also the expensive ones to label; ``"per-row"`` is comparable
        across sizes, leaves the price of size to ``cost_exponent``, and for one-row features
        equals bmdal_reg's posterior kernel diagonal.
    shortlist_size : int or None
        Number ``M`` of candidates kept by the streamed posterior-variance shortlist (for
        ``coverage`` and ``random``: a seeded uniform sample of ``M`` pool structures, the pool's
        stand-in). ``None`` (default) uses ``max(1000, 10 * n)`` for a batch of ``n``. Must be
        ``>= n``.
    mode : {"tp", "p"}
        ``"tp"`` (default): training structures count as already selected, so distance-based
        selectors (coverage, lcmd, maxdist, kmeans++) start with them as centres. ``"p"``: only
        pool picks are centres. The posterior (precision ``A``) always includes the training
        set, so the mode does not change maxdiag, maxdet, bait or random. An empty training set
        always runs in P mode.
    kernel : {"auto", "linear", "gram"}
        Structure kernel of the distance-based selectors, on posterior blocks
        ``B(x) = sigma W^{1/2} Phi(x) L^{-T}`` (``L L^T = A``). ``"gram"``:
        ``k(x, y) = ||B(x) B(y)^T||_F^2 = <G(x), G(y)>_F`` with ``G = B^T B`` (DESIGN.md section
        4), invariant to the atom count and order. ``"linear"``: ``k(x, y) = b(x) . b(y)``,
        bmdal_reg's posterior linear kernel; it needs one-row blocks, since summing force rows
        would give a zero feature. ``"auto"`` (default): ``"linear"`` when every training and
        pool block has at most one row, else ``"gram"``.
    cost_exponent : float or None
        ``alpha`` of the labelling cost ``c(N) = N**alpha`` (``N`` atoms); ``None`` (default)
        turns cost-aware acquisition off. When set (3.0 is the usual value,
        :data:`DEFAULT_COST_EXPONENT`), scores are divided by ``c(N)``: the shortlist score and
        maxdiag (normalised posterior variance), maxdet (information gain), bait (trace
        reduction), maxdist and lcmd (squared distance to the nearest centre, used to pick the
        point; lcmd still chooses the cluster by its plain sum of squared distances) and
        kmeans++ (sampling weight). Random ignores it.
    jitter_tries : int
        How many growing diagonal jitters the Cholesky factorisation of ``A`` tries before it
        raises :class:`~fntk.errors.NumericalError` (default 8: ``1e-12`` to ``1e-5`` times the
        mean diagonal of ``A``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: SelectorName = "coverage"
    sigma: float | None = Field(default=None, gt=0.0)
    relative_noise: float = Field(default=1e-6, gt=0.0)
    energy_weight: float = Field(default=1.0, gt=0.0)
    force_weight: float = Field(default=1.0, gt=0.0)
    normalization: Normalization = "per-row"
    shortlist_size: int | None = Field(default=None, ge=1)
    mode: Mode = "tp"
    kernel: KernelName = "auto"
    cost_exponent: float | None = Field(default=None, ge=0.0)
    jitter_tries: int = Field(default=8, ge=0)

    def resolved_shortlist_size(self, n: int) -> int:
        """Shortlist size ``M`` for a batch of ``n`` (see ``shortlist_size``)."""
        if self.shortlist_size is None:
            return max(1000, 10 * n)
        if self.shortlist_size < n:
            raise ValueError(
                f"shortlist_size={self.shortlist_size} is smaller than the batch size n={n}; "
                "set shortlist_size >= n (or None for max(1000, 10 n))"
            )
        return self.shortlist_size
