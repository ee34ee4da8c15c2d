"""MUSE: the evaluator and open-unlearning's ``MUSE_EVAL.json`` / ``MUSE_SUMMARY.json`` in one import.

- :class:`MUSEEvaluator` runs the benchmark on a model (:mod:`trl_unlearn.evaluation.muse_evaluator`);
- :func:`summarize`, :func:`load_open_unlearning_log`, :func:`save_results`,
  :func:`save_summary` and the other summary functions are the pure functions of
  :mod:`trl_unlearn.evaluation.muse_summary`, which the evaluator computes its aggregates with.

Both modules import the summary module, never each other, so the package has no import cycle.
Code that only reads logs can import :mod:`~trl_unlearn.evaluation.muse_summary` without torch.
"""

from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator
from trl_unlearn.evaluation.muse_summary import (
    EVAL_FILENAME,
    ROUGE_METRICS,
    SUMMARY_FILENAME,
    aggregate_values,
    load_open_unlearning_log,
    save_results,
    save_summary,
    summarize,
)

__all__ = [
    "MUSEEvaluator",
    "EVAL_FILENAME",
    "ROUGE_METRICS",
    "SUMMARY_FILENAME",
    "aggregate_values",
    "load_open_unlearning_log",
    "save_results",
    "save_summary",
    "summarize",
]
