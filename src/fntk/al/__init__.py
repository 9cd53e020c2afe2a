"""Active learning: fine-tuning rounds on the labelled set and their evaluation.

- :class:`LabelledSet`: structures with reference energies and forces, checked once.
- :func:`finetune` with :class:`FinetuneOptions`: one round from the pretrained weights, with a
  least-squares per-element energy shift (:class:`EnergyShift`) and early stopping.
- :func:`evaluate`, :func:`evaluate_splits`: energy and force MAE/RMSE per split.
"""

from fntk.al.e0 import EnergyShift, fit_energy_shift
from fntk.al.evaluate import ErrorMetrics, evaluate, evaluate_splits
from fntk.al.finetune import FinetuneResult, TrainingRecord, finetune
from fntk.al.labelled import LabelledSet
from fntk.al.options import FinetuneOptions

__all__ = [
    "EnergyShift",
    "ErrorMetrics",
    "FinetuneOptions",
    "FinetuneResult",
    "LabelledSet",
    "TrainingRecord",
    "evaluate",
    "evaluate_splits",
    "finetune",
    "fit_energy_shift",
]
