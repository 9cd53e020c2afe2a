"""Readers of published data sets, each yielding labelled ASE Atoms with provenance in ``info``.

Each reader streams (one structure at a time) and is registered as an input format in
:mod:`fntk.io.formats`, so every command reads these files directly:

- :func:`iter_oc20_s2ef` (``oc20-s2ef``): OC20 S2EF ``N.extxyz[.xz]`` + ``N.txt[.xz]`` shards.
- :func:`iter_oc20_lmdb` (``oc20-lmdb``): fairchem LMDBs of pickled torch_geometric ``Data``.
- :func:`iter_ase_db` (``ase-db``): ASE databases, fairchem's ``.aselmdb`` included.
- :func:`iter_transition1x` (``transition1x``): Transition1x HDF5 (NEB images, R/TS/P marked).
- :func:`iter_rgd1` (``rgd1``), :func:`iter_rgd1_molecules` (``rgd1-molecules``): RGD1's
  ``RGD1_CHNO.h5`` transition states and ``RGD1_RPs.h5`` optimised molecules (energies only).
- :func:`iter_csv_index` (``csv-index``): a CSV table of geometry files (PMechDB itself
  releases SMIRKS only; see that module).

Every frame's ``info`` has ``dataset`` and ``record`` (its key within the file: OC20
``random<sid>,frame<fid>``, Transition1x ``formula/reaction/image``, ...). None of these data
sets can be downloaded here; each reader is tested on small files written in the publisher's
layout.
"""

from fntk.io.readers.ase_db import iter_ase_db
from fntk.io.readers.csv_index import iter_csv_index
from fntk.io.readers.oc20 import iter_oc20_s2ef
from fntk.io.readers.oc20_lmdb import iter_oc20_lmdb
from fntk.io.readers.rgd1 import iter_rgd1, iter_rgd1_molecules
from fntk.io.readers.transition1x import iter_transition1x

__all__ = [
    "iter_ase_db",
    "iter_csv_index",
    "iter_oc20_lmdb",
    "iter_oc20_s2ef",
    "iter_rgd1",
    "iter_rgd1_molecules",
    "iter_transition1x",
]
