"""Structure sets that fntk generates itself: the demo pool and offline benchmark data sets.

- :func:`make_adsorbate_structures`: quick rattled adsorbates on slabs (the demo).
- :func:`make_dataset`: the benchmark sets ``emt-adsorbates`` (EMT, OC20-like) and
  ``xtb-reactions`` (GFN2-xTB, Transition1x-like) with init / pool / test splits on disk.
"""

from fntk.data.adsorbates import make_adsorbate_structures
from fntk.data.datasets import DatasetFiles, available_datasets, make_dataset

__all__ = ["DatasetFiles", "available_datasets", "make_adsorbate_structures", "make_dataset"]
