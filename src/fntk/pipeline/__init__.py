"""The selection job (``fntk select``): options, the streamed run, and its output files.

:mod:`~fntk.pipeline.options` parses options once (defaults, config file, flags);
:mod:`~fntk.pipeline.job` streams files through features, scoring and selection;
:mod:`~fntk.pipeline.preflight` reads and checks the inputs once before anything is created;
:mod:`~fntk.pipeline.outputs` writes selected.xyz, scores.csv, run.json and the report;
:func:`next_batch` is the whole job from Python.
"""

from fntk.pipeline.batch import next_batch, run_and_write
from fntk.pipeline.job import (
    Progress,
    SelectRun,
    reference_atom_count,
    run_selection,
    with_loss_weights,
)
from fntk.pipeline.options import (
    FLAGS,
    ExecutionOptions,
    RunOptions,
    apply_flags,
    build_run_options,
    load_run_options,
    read_config,
)
from fntk.pipeline.outputs import OUTPUT_NAMES, run_folder, selection_record, write_outputs
from fntk.pipeline.preflight import InputScan, check_selection_inputs, scan_inputs

__all__ = [
    "FLAGS",
    "OUTPUT_NAMES",
    "ExecutionOptions",
    "InputScan",
    "Progress",
    "RunOptions",
    "SelectRun",
    "apply_flags",
    "build_run_options",
    "check_selection_inputs",
    "load_run_options",
    "next_batch",
    "read_config",
    "reference_atom_count",
    "run_and_write",
    "run_folder",
    "run_selection",
    "scan_inputs",
    "selection_record",
    "with_loss_weights",
    "write_outputs",
]
