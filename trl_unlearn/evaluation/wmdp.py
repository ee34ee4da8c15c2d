"""WMDP: the evaluator and the ``WMDP_EVAL.json`` / ``WMDP_SUMMARY.json`` functions in one import.

- :class:`WMDPEvaluator` runs WMDP and MMLU through lm-evaluation-harness
  (:mod:`trl_unlearn.evaluation.wmdp_evaluator`); importing this module therefore needs the
  ``wmdp`` extra (``pip install "trl-unlearn[wmdp]"``, named by the ``ImportError`` otherwise);
- :func:`summarize`, :func:`save_results`, :func:`save_summary`, :func:`load_log_file` are the
  pure functions of :mod:`trl_unlearn.evaluation.wmdp_summary`, which reads logs without lm-eval.
"""

from trl_unlearn.evaluation.wmdp_evaluator import WMDPEvaluator
from trl_unlearn.evaluation.wmdp_summary import (
    EVAL_FILENAME,
    SUMMARY_FILENAME,
    aggregate_values,
    load_log_file,
    save_results,
    save_summary,
    summarize,
)

__all__ = [
    "WMDPEvaluator",
    "EVAL_FILENAME",
    "SUMMARY_FILENAME",
    "aggregate_values",
    "load_log_file",
    "save_results",
    "save_summary",
    "summarize",
]
