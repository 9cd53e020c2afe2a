"""``fntk predict``: energies and forces of a model for every structure, as extended XYZ."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fntk.cli.types import BatchSize, Device, Dtype, ModelSpec, StructureFiles


def predict(
    files: StructureFiles,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .xyz file.")],
    model: ModelSpec = "sevennet-0",
    device: Device = "auto",
    batch_size: BatchSize = 4,
    dtype: Dtype = "float32",
    chunk_size: Annotated[int, typer.Option(min=1, help="Structures read at a time.")] = 256,
    max_memory: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="GB of estimated working memory per batch; batches are split to fit, a "
            "structure that alone exceeds it is refused.",
            show_default="80% of free memory",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUTPUT if it exists (never an input).")
    ] = False,
) -> None:
    """Predict energies and forces; write them to OUTPUT as extended XYZ (inputs untouched).

    Predictions go under the keys fntk_energy (info) and fntk_forces (arrays), so they are
    never read back as reference labels; info also records the model spec (fntk_model) and
    dtype (fntk_dtype).
    """
    import torch

    from fntk.cli.progress import progress_bar
    from fntk.io import (
        check_not_input,
        check_writable_file,
        count_frames,
        expand_paths,
        iter_chunks,
        write_extxyz,
    )
    from fntk.models import check_model_spec, load_backend
    from fntk.predict import available_memory_bytes, predict_chunk

    check_model_spec(model)
    inputs = expand_paths(files)
    check_not_input(output, inputs)
    check_writable_file(output)
    if not output.name.lower().endswith((".xyz", ".extxyz")):
        from fntk.errors import InputError

        raise InputError(
            "predictions are written as extended XYZ, but the output name says otherwise",
            file=str(output),
            hint="name it .xyz or .extxyz",
        )
    if output.exists() and not overwrite:
        from fntk.errors import InputError

        raise InputError(
            "output file exists", file=str(output), hint="pass --overwrite or choose another -o"
        )
    max_bytes: int | None
    if max_memory is not None:
        max_bytes = int(max_memory * 1e9)
    else:
        free = available_memory_bytes()
        max_bytes = int(0.8 * free) if free else None
    total = count_frames(inputs)  # reads every file once: bad files fail before the model loads
    backend = load_backend(model, device=device, dtype=getattr(torch, dtype))
    written = []
    with progress_bar() as bar:
        task = bar.add_task("predicting", total=total)
        for chunk in iter_chunks(inputs, chunk_size, species=backend.species):
            written.extend(
                predict_chunk(backend, chunk, batch_size=batch_size, max_bytes=max_bytes)
            )
            bar.advance(task, len(chunk))
    write_extxyz(output, written, protected=inputs)
    typer.echo(f"wrote {len(written)} structures with {backend.spec} predictions to {output}")
