"""TOFU: the evaluator and open-unlearning's ``TOFU_EVAL.json`` / ``TOFU_SUMMARY.json`` in one import.

- :class:`TOFUEvaluator` runs the benchmark on a model (:mod:`trl_unlearn.evaluation.tofu_evaluator`);
- :func:`summarize`, :func:`load_open_unlearning_log`, :func:`save_results`,
  :func:`save_summary` and the other summary functions are the pure functions of
  :mod:`trl_unlearn.evaluation.tofu_summary`, which the evaluator computes its aggregates with.

Both modules import the summary module, never each other, so the package has no import cycle.
Code that only reads logs can import :mod:`~trl_unlearn.evaluation.tofu_summary` without torch.
"""

from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator
from trl_unlearn.evaluation.tofu_summary import (
    EVAL_FILENAME,
    MODEL_UTILITY_COMPONENTS,
    SUMMARY_FILENAME,
    aggregate_values,
    forget_quality_value,
    load_open_unlearning_log,
    model_utility_components,
    save_results,
    save_summary,
    summarize,
    truth_ratio_values,
)

__all__ = [
    "TOFUEvaluator",
    "EVAL_FILENAME",
    "MODEL_UTILITY_COMPONENTS",
    "SUMMARY_FILENAME",
    "aggregate_values",
    "forget_quality_value",
    "load_open_unlearning_log",
    "model_utility_components",
    "save_results",
    "save_summary",
    "summarize",
    "truth_ratio_values",
]
