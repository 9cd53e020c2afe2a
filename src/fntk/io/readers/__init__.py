"""Readers of published data sets, each yielding labelled ASE Atoms with provenance in ``info``.

- :func:`iter_transition1x`: Transition1x HDF5 (reaction paths, wB97x/6-31G(d)).
- :func:`iter_oc20_s2ef`, :func:`iter_oc20_db`: OC20 S2EF extxyz + txt shards, ASE databases.
- :func:`iter_rgd1`: RGD1 HDF5 (reactant, transition state, product; energies only).
- :func:`iter_pmechdb`: PMechDB steps as geometry files indexed by a CSV (PMechDB itself
  releases SMIRKS only).

None of these data sets can be downloaded here; each reader is tested on a small file written
in the published layout by the tests.
"""

from fntk.io.readers.oc20 import iter_oc20_db, iter_oc20_s2ef
from fntk.io.readers.pmechdb import iter_pmechdb
from fntk.io.readers.rgd1 import iter_rgd1
from fntk.io.readers.transition1x import iter_transition1x

__all__ = ["iter_oc20_db", "iter_oc20_s2ef", "iter_pmechdb", "iter_rgd1", "iter_transition1x"]
