"""Selection engine: precision matrix, posterior-variance shortlist and batch selectors.

Public API::

    from fntk.select import Selector
    result = Selector("lcmd").fit(train_chunks).select(pool_chunks, n=100, random_state=0)
    result.indices  # pool source indices, in pick order

See DESIGN.md sections 3-4 for the maths and :class:`SelectOptions` for every option.
"""

import sys
import types

from fntk.select import distance, uncertainty  # noqa: F401 - import registers the selectors
from fntk.select.api import SelectionResult, Selector, ShortlistSummary, select_structures
from fntk.select.base import (
    GreedySelector,
    SelectionProblem,
    get_selector,
    register_selector,
    registered_selectors,
)
from fntk.select.kernels import StructureKernel
from fntk.select.options import (
    DEFAULT_COST_EXPONENT,
    SELECTOR_NAMES,
    SelectOptions,
    SelectorName,
)
from fntk.select.precision import (
    PosteriorBlocks,
    Precision,
    factorize_precision,
    posterior_blocks,
    robust_cholesky,
)
from fntk.select.shortlist import Shortlist, build_shortlist, posterior_variance

__all__ = [
    "DEFAULT_COST_EXPONENT",
    "SELECTOR_NAMES",
    "GreedySelector",
    "PosteriorBlocks",
    "Precision",
    "SelectOptions",
    "SelectionProblem",
    "SelectionResult",
    "Selector",
    "SelectorName",
    "Shortlist",
    "ShortlistSummary",
    "StructureKernel",
    "build_shortlist",
    "factorize_precision",
    "get_selector",
    "posterior_blocks",
    "posterior_variance",
    "register_selector",
    "registered_selectors",
    "robust_cholesky",
    "select_structures",
]


class _CallableModule(types.ModuleType):
    """Lets ``fntk.select(pool, train, n=...)`` run the whole job while ``fntk.select`` stays
    the package of the selection engine (``from fntk.select import Selector``)."""

    def __call__(self, pool, train=(), **kwargs):
        """Pick structures of ``pool`` files; see :func:`fntk.pipeline.select_files`."""
        from fntk.pipeline import select_files

        return select_files(pool, train, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
