"""Small files in exactly the layouts the publishers release (see each reader's docstring).

Each fixture writes its file(s) under ``tmp_path`` and returns the path(s) with what was
written, so tests compare what the reader yields with the ground truth.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from fntk.data import make_adsorbate_structures

T1X_ENERGY = "wB97x_6-31G(d).energy"
T1X_FORCES = "wB97x_6-31G(d).forces"


@dataclass
class T1xReaction:
    formula: str
    name: str
    numbers: np.ndarray
    positions: np.ndarray  # (n_images, n_atoms, 3)
    energies: np.ndarray
    forces: np.ndarray
    ts_image: int
    hashes: dict[str, str] = field(default_factory=dict)


def _t1x_path(base: str, n_images: int, rng) -> tuple[np.ndarray, np.ndarray]:
    start = molecule(base)
    end = start.copy()
    end.positions[-1] += np.array([0.6, 0.2, 0.0])  # an H moves: a toy reaction coordinate
    steps = np.linspace(0.0, 1.0, n_images)[:, None, None]
    images = (1 - steps) * start.positions[None] + steps * end.positions[None]
    images = images + rng.normal(scale=0.01, size=images.shape)
    return start.numbers, images.astype(np.float32)


def write_transition1x(path: Path, *, with_hash: bool = True) -> dict[str, list[T1xReaction]]:
    """``transition1x.h5``: ``data/`` and train/val/test soft links (per reaction) into it."""
    import h5py

    rng = np.random.default_rng(0)
    splits = {
        "train": [("CH3CHO", "C2H4O", "rxn0001", 5), ("CH3CHO", "C2H4O", "rxn0002", 4)],
        "val": [("CH3OH", "CH4O", "rxn0100", 3)],
        "test": [("CH3OH", "CH4O", "rxn0200", 4)],
    }
    written: dict[str, list[T1xReaction]] = {}
    with h5py.File(path, "w") as handle:
        for split, reactions in splits.items():
            for base, formula, name, n_images in reactions:
                numbers, images = _t1x_path(base, n_images, rng)
                energies = rng.normal(size=n_images) - 4200.0
                ts = int(np.argmax(energies[1:-1])) + 1
                forces = rng.normal(size=images.shape).astype(np.float32)
                group = handle.create_group(f"data/{formula}/{name}")
                group["atomic_numbers"] = numbers
                group["positions"] = images
                group[T1X_ENERGY] = energies
                group[T1X_FORCES] = forces
                group["wB97x_6-31G(d).atomization_energy"] = energies + 3000.0
                hashes = {}
                for role, image in (("reactant", 0), ("transition_state", ts), ("product", -1)):
                    sub = group.create_group(role)
                    sub["atomic_numbers"] = numbers
                    sub["positions"] = images[image : image + 1 or None]
                    sub[T1X_ENERGY] = energies[image : image + 1 or None]
                    sub[T1X_FORCES] = forces[image : image + 1 or None]
                    sub["wB97x_6-31G(d).atomization_energy"] = sub[T1X_ENERGY][()] + 3000.0
                    if with_hash:
                        hashes[role] = f"{name}-{role}-hash"
                        sub["hash"] = hashes[role].encode()
                if f"{split}/{formula}" not in handle:
                    handle.create_group(f"{split}/{formula}")
                handle[f"{split}/{formula}"][name] = h5py.SoftLink(f"/data/{formula}/{name}")
                written.setdefault(split, []).append(
                    T1xReaction(formula, name, numbers, images, energies, forces, ts, hashes)
                )
    return written


@pytest.fixture
def t1x_file(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "transition1x.h5"
    return path, write_transition1x(path)


@pytest.fixture
def t1x_nohash(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "transition1x_nohash.h5"
    write_transition1x(path, with_hash=False)
    return path


def oc20_frames(n: int = 3, seed: int = 5):
    """Labelled slabs with OC20 tags (0 subsurface, 1 surface, 2 adsorbate), bottom layer fixed."""
    frames = make_adsorbate_structures(n, seed=seed)
    for atoms in frames:
        z = atoms.positions[:, 2]
        metal = atoms.numbers > 9
        tags = np.where(metal, 0, 2)
        tags[metal & (z > np.sort(z[metal])[-5])] = 1
        atoms.set_tags(tags)
        atoms.calc.results["free_energy"] = atoms.calc.results["energy"] - 0.03
    return frames


def oc20_extxyz_text(frames) -> str:
    """Frames as OC20's S2EF extxyz lines: move_mask (T = free) and tags, energy, free_energy."""
    out = []
    for atoms in frames:
        fixed = np.zeros(len(atoms), bool)
        fixed[atoms.positions[:, 2] < atoms.positions[:, 2].min() + 0.5] = True
        lattice = " ".join(f"{x:.8f}" for x in atoms.cell.array.reshape(-1))
        energy = atoms.calc.results["energy"]
        free = atoms.calc.results["free_energy"]
        out.append(f"{len(atoms)}")
        out.append(
            f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:move_mask:L:1:tags:I:1:'
            f'forces:R:3 energy={energy:.8f} free_energy={free:.8f} pbc="T T T"'
        )
        forces = atoms.calc.results["forces"]
        for k, symbol in enumerate(atoms.get_chemical_symbols()):
            x, y, z = atoms.positions[k]
            fx, fy, fz = forces[k]
            mask = "F" if fixed[k] else "T"
            out.append(
                f"{symbol:<2} {x:15.8f} {y:15.8f} {z:15.8f} {mask} {atoms.get_tags()[k]} "
                f"{fx:15.8f} {fy:15.8f} {fz:15.8f}"
            )
        atoms.info["fixed_mask"] = fixed
    return "\n".join(out) + "\n"


OC20_LINES = (
    "random1331004,frame44,-0.14780\nrandom2181546,frame0,-1.25\nrandom2181546,frame7,-1.25\n"
)


@pytest.fixture
def oc20_shard(tmp_path):
    """``0.extxyz.xz`` + ``0.txt.xz``, as the S2EF download holds them."""
    frames = oc20_frames()
    xyz, txt = tmp_path / "0.extxyz.xz", tmp_path / "0.txt.xz"
    with lzma.open(xyz, "wt") as handle:
        handle.write(oc20_extxyz_text(frames))
    with lzma.open(txt, "wt") as handle:
        handle.write(OC20_LINES)
    return xyz, frames


@pytest.fixture
def oc20_builders():
    """``(frames(n, seed), extxyz_text(frames), lines)`` for tests that write their own shards."""
    return oc20_frames, oc20_extxyz_text, OC20_LINES
