"""Checks of a selection's inputs before anything is created or computed (no model needed).

Every pool and training structure is read and validated once, and the pool's candidates (pool
structures that are neither in the training set nor a repeat of an earlier pool structure) are
counted, so a bad frame, ``n = 0`` or an ``n`` the pool cannot meet is one clear error before
the output folder exists and before the model loads. Reading is cheap next to featurising
(milliseconds against seconds per structure).
"""

from __future__ import annotations

from collections.abc import Sequence

from fntk.errors import InputError
from fntk.io import duplicate_key, expand_paths, iter_frames
from fntk.pipeline.options import RunOptions


def check_selection_inputs(pool: Sequence[str], train: Sequence[str], options: RunOptions) -> int:
    """Validate every structure of ``pool`` and ``train``; return the number of candidates.

    Raises
    ------
    InputError
        A file or frame that cannot be read or given to a model; ``options.n == 0``; or
        ``options.n`` larger than the candidates (including a pool that is entirely training
        structures). All three cases of ``n`` are the same error, exit status 1 in the CLI.
    """
    if options.n == 0:
        raise InputError("asked for n=0: nothing to pick", hint="pass -n 1 or more")
    pool_files = expand_paths(pool)
    train_files = expand_paths(train) if train else []
    train_prints = (
        {duplicate_key(atoms) for _, _, atoms in iter_frames(train_files)} if train_files else set()
    )
    seen: set[str] = set()
    n_frames = n_train_copies = n_repeats = 0
    for _, _, atoms in iter_frames(pool_files):
        n_frames += 1
        fingerprint = duplicate_key(atoms)
        if fingerprint in train_prints:
            n_train_copies += 1
        elif fingerprint in seen:
            n_repeats += 1
        else:
            seen.add(fingerprint)
    if options.n > len(seen):
        excluded = []
        if n_train_copies:
            excluded.append(f"{n_train_copies} already in the training set")
        if n_repeats:
            excluded.append(f"{_count(n_repeats, 'repeat')} of an earlier pool structure")
        held = _count(len(seen), "structure")
        if excluded:
            held = (
                f"{_count(len(seen), 'new structure')} ({n_frames} in all, {', '.join(excluded)})"
            )
        raise InputError(
            f"asked for n={options.n} but the pool holds only {held}",
            file=", ".join(pool_files),
            hint="lower -n or add pool files",
        )
    return len(seen)


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")
