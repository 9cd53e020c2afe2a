"""Selection engine: precision matrix, posterior-variance shortlist and batch selectors.

Public API::

    from fntk.select import Selector
    result = Selector("lcmd").fit(train_chunks).select(pool_chunks, n=100, random_state=0)
    result.indices  # pool source indices, in pick order

See DESIGN.md sections 3-4 for the maths and :class:`SelectOptions` for every option. The engine
sees arrays only (:class:`fntk.chunk.FeatureChunk`): importing it loads neither torch nor ASE.
The whole job (files in, picks out) is :func:`fntk.next_batch`.
"""

from fntk.select.api import (
    ChunkScorer,
    SelectionResult,
    Selector,
    ShortlistSummary,
    select_structures,
    uniform_shortlist_key,
)
from fntk.select.base import GreedySelector, SelectionProblem
from fntk.select.kernels import StructureKernel
from fntk.select.options import (
    DEFAULT_COST_EXPONENT,
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
from fntk.select.registry import register_selector, selectors
from fntk.select.shortlist import (
    ChunkScores,
    Shortlist,
    ShortlistMerge,
    build_shortlist,
    posterior_variance,
    score_chunk,
    uniform_sample,
)

__all__ = [
    "DEFAULT_COST_EXPONENT",
    "ChunkScorer",
    "ChunkScores",
    "GreedySelector",
    "PosteriorBlocks",
    "Precision",
    "SelectOptions",
    "SelectionProblem",
    "SelectionResult",
    "Selector",
    "SelectorName",
    "Shortlist",
    "ShortlistMerge",
    "ShortlistSummary",
    "StructureKernel",
    "build_shortlist",
    "factorize_precision",
    "posterior_blocks",
    "posterior_variance",
    "register_selector",
    "robust_cholesky",
    "score_chunk",
    "select_structures",
    "selectors",
    "uniform_sample",
    "uniform_shortlist_key",
]
