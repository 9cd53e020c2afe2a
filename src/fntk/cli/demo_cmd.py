"""``fntk demo``: the main job on a generated adsorbate pool with the embedded default model."""

from __future__ import annotations

from fntk.cli.types import Device, ModelSpec, OutDir, Overwrite, Seed


def demo(
    output: OutDir = "demo-output",
    model: ModelSpec = "sevennet-0",
    device: Device = "auto",
    overwrite: Overwrite = False,
    seed: Seed = 0,
) -> None:
    """Generate a small EMT-labelled adsorbate pool and run fntk on it, offline."""
    import time

    import typer

    from fntk.cli.outdir import prepare_output_dir
    from fntk.cli.progress import progress_bar
    from fntk.data import make_adsorbate_structures
    from fntk.io import iter_chunks, write_extxyz
    from fntk.models import load_backend
    from fntk.predict import predict_chunk

    out = prepare_output_dir(output, overwrite=overwrite)
    train = make_adsorbate_structures(24, seed=seed)
    pool = make_adsorbate_structures(
        200, seed=seed + 1, adsorbates=("H", "O", "OH", "CO", "N", "CH2"), label=False
    )
    write_extxyz(out / "train.xyz", train)
    write_extxyz(out / "pool.xyz", pool)
    typer.echo(f"wrote {len(train)} EMT-labelled training and {len(pool)} pool structures to {out}")

    start = time.perf_counter()
    backend = load_backend(model, device=device)
    predicted = []
    with progress_bar() as bar:
        task = bar.add_task(f"{backend.spec} energies+forces", total=len(pool))
        for chunk in iter_chunks([str(out / "pool.xyz")], 50, species=backend.species):
            predicted.extend(predict_chunk(backend, chunk, batch_size=16))
            bar.advance(task, len(chunk))
    write_extxyz(out / "pool_predicted.xyz", predicted)
    elapsed = time.perf_counter() - start
    typer.echo(
        f"{backend.spec} predicted energies and forces of {len(pool)} structures in "
        f"{elapsed:.1f} s -> {out / 'pool_predicted.xyz'}"
    )
