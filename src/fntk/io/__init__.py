"""Structure I/O: chunked streaming from any ASE format, validation, labels, atomic writing."""

from fntk.io.labels import Labels, read_labels
from fntk.io.outdir import check_output_dir, prepare_output_dir
from fntk.io.read import (
    StructureChunk,
    count_frames,
    expand_paths,
    iter_chunks,
    iter_frames,
    iter_frames_at,
    read_frame_at,
    read_structures,
)
from fntk.io.validate import (
    MIN_DISTANCE_ANGSTROM,
    duplicate_key,
    structure_fingerprint,
    validate_structure,
)
from fntk.io.write import (
    atomic_write_npz,
    atomic_write_text,
    atomic_write_with,
    check_not_input,
    check_writable_file,
    write_extxyz,
)

__all__ = [
    "MIN_DISTANCE_ANGSTROM",
    "Labels",
    "StructureChunk",
    "atomic_write_npz",
    "atomic_write_text",
    "atomic_write_with",
    "check_not_input",
    "check_output_dir",
    "check_writable_file",
    "count_frames",
    "duplicate_key",
    "expand_paths",
    "iter_chunks",
    "iter_frames",
    "iter_frames_at",
    "prepare_output_dir",
    "read_frame_at",
    "read_labels",
    "read_structures",
    "structure_fingerprint",
    "validate_structure",
    "write_extxyz",
]
