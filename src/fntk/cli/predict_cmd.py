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
) -> None:
    """Predict energies and forces; write them to OUTPUT as extended XYZ (inputs untouched).

    Each structure's info records the model spec (``fntk_model``) and dtype (``fntk_dtype``).
    """
    import torch

    from fntk.cli.progress import progress_bar
    from fntk.io import count_frames, iter_chunks, write_extxyz
    from fntk.models import load_backend
    from fntk.predict import predict_chunk

    backend = load_backend(model, device=device, dtype=getattr(torch, dtype))
    total = count_frames(files)
    written = []
    with progress_bar() as bar:
        task = bar.add_task("predicting", total=total)
        for chunk in iter_chunks(files, chunk_size, species=backend.species):
            written.extend(predict_chunk(backend, chunk, batch_size=batch_size))
            bar.advance(task, len(chunk))
    write_extxyz(output, written, protected=files)
    typer.echo(f"wrote {len(written)} structures with {backend.spec} predictions to {output}")
