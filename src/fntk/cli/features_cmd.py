"""``fntk features``: compute feature blocks of a pool and write them to a resumable store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fntk.cli.types import (
    DEFAULT_MAP,
    BatchSize,
    Device,
    Dim,
    MapChoice,
    ModelSpec,
    ParameterGroupName,
    Seed,
    StructureFiles,
    finite_number,
    given_flags,
)
from fntk.options import ComputeDtype

_SELECT_FLAGS = (
    "group",
    "dim",
    "seed",
    "energy_weight",
    "forces_weight",
    "dtype",
    "batch_size",
    "chunk_size",
    "device",
)
"""The flags this command shares with ``fntk select`` (:func:`fntk.pipeline.apply_flags`)."""


def features(
    ctx: typer.Context,
    files: StructureFiles,
    output: Annotated[Path, typer.Option("--output", "-o", help="Feature store directory.")],
    map_name: MapChoice = DEFAULT_MAP,
    model: ModelSpec = "sevennet-0",
    group: ParameterGroupName = "readout",
    dim: Dim = None,
    seed: Seed = 0,
    force_weight: Annotated[
        float | None,
        typer.Option(
            "--force-weight",
            min=0.0,
            callback=finite_number,
            help="lambda (Angstrom) of the joint map; give it to keep several stores on one "
            "lambda.",
            show_default="sqrt(w_F / (3 N w_E)), N the mean atom count of FILES",
        ),
    ] = None,
    energy_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            callback=finite_number,
            help="Loss weight w_E of per-atom energies, 1/(eV/atom)^2.",
        ),
    ] = 1.0,
    forces_weight: Annotated[
        float,
        typer.Option(
            min=0.0, callback=finite_number, help="Loss weight w_F of force components, 1/(eV/A)^2."
        ),
    ] = 100.0,
    dtype: Annotated[
        ComputeDtype, typer.Option("--dtype", help="Model and feature dtype.")
    ] = "float32",
    batch_size: BatchSize = 8,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Structures per stored chunk.")
    ] = 256,
    device: Device = "auto",
) -> None:
    """Compute features of FILES into the feature store OUTPUT; rerunning resumes.

    The store is the one `fntk select --store OUTPUT` reads: chunks are keyed by each file's
    content hash, so features made here (e.g. on a GPU node) are reused by later selections.
    """
    from pydantic import ValidationError

    from fntk.cli.progress import progress_bar
    from fntk.errors import invalid_options
    from fntk.features import default_options, load_backend_for
    from fntk.features.store import check_store_folder
    from fntk.io import check_output_dir
    from fntk.models import check_model_spec
    from fntk.pipeline import build_run_options
    from fntk.pipeline.featurize import ChunkFeaturizer, open_store
    from fntk.pipeline.options import joint_weight_at
    from fntk.pipeline.preflight import count_frames

    # the flags of `fntk select` map onto the options as there; --force-weight is this
    # command's own (a lambda shared by several stores)
    given = given_flags(ctx, _SELECT_FLAGS, locals())
    run_options = build_run_options(features=map_name, model=model, **given)
    options = run_options.features
    if force_weight is not None:
        try:
            fields = options.model_dump(exclude={"name"})
            options = default_options(map_name, **fields, force_weight=force_weight)
        except ValidationError as exc:
            raise invalid_options(exc, "feature option") from None

    # every frame read and validated before the model loads and the store folder is created
    check_model_spec(model)
    check_store_folder(output, flag="-o")  # a store may join any folder, not a file
    check_output_dir(output, overwrite=True)
    total, n_atoms = count_frames(files)
    if force_weight is None:
        options = joint_weight_at(run_options, n_atoms).features
    backend = load_backend_for(model, options)
    store = open_store(output, backend, options, chunk_size)
    featurizer = ChunkFeaturizer(backend, options, chunk_size, store)
    with progress_bar() as bar:
        task = bar.add_task(f"{options.name} features", total=total)
        for chunk, _ in featurizer.chunks(files):
            bar.advance(task, len(chunk))
    typer.echo(
        f"{options.name} features: {featurizer.computed_chunks} chunks computed, "
        f"{featurizer.reused_chunks} already in {output} ({store.n_features} columns)"
    )
