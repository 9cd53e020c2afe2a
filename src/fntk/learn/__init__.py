"""Learning from labels: fine-tuning rounds on the labelled set, readouts and evaluation.

(Not acquisition: choosing what to label is :mod:`fntk.select` and :mod:`fntk.pipeline`.)

- :class:`LabelledSet`: structures with reference energies and forces, checked once.
- :func:`finetune` with :class:`FinetuneOptions`: one round from the pretrained weights, with a
  least-squares per-element energy shift (:class:`EnergyShift`) and early stopping.
- :func:`evaluate`, :func:`evaluate_splits`: energy and force MAE/RMSE per split.
"""

from fntk.learn.e0 import EnergyShift, fit_energy_shift
from fntk.learn.evaluate import ErrorMetrics, evaluate, evaluate_splits
from fntk.learn.finetune import FinetuneResult, TrainingRecord, finetune
from fntk.learn.labelled import LabelledSet
from fntk.learn.options import FinetuneOptions

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
