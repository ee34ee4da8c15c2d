"""Evaluation for the TOFU, MUSE and WMDP unlearning benchmarks.

- :class:`TOFUEvaluator` / :class:`MUSEEvaluator` run a benchmark on a model (imported on first
  use: they need torch and transformers), with :class:`EvalOptions`; :class:`WMDPEvaluator` runs
  WMDP and MMLU through lm-evaluation-harness (the ``wmdp`` extra);
- :mod:`trl_unlearn.evaluation.spec`: one declarative spec per benchmark (metrics, groups,
  datasets, citation);
- :mod:`trl_unlearn.evaluation.tofu` / :mod:`trl_unlearn.evaluation.muse`: each benchmark's
  evaluator with its log I/O and ``summarize`` reproducing open-unlearning's
  ``TOFU_SUMMARY.json`` / ``MUSE_SUMMARY.json`` (the pure functions live in ``tofu_summary`` /
  ``muse_summary``, which import neither torch nor transformers); :mod:`trl_unlearn.evaluation.wmdp`
  likewise (its pure functions in ``wmdp_summary``, which imports no lm-eval);
- :mod:`trl_unlearn.evaluation.metrics`: pure metric functions (open-unlearning definitions);
- :func:`metric_module_path` / :func:`list_metric_modules`: bundled ``evaluate`` modules.

Importing this package does not import torch or transformers.
"""

from trl_unlearn.evaluation.modules import list_metric_modules, metric_module_path

__all__ = ["EvalOptions", "MUSEEvaluator", "TOFUEvaluator", "WMDPEvaluator", "list_metric_modules", "metric_module_path"]

_LAZY = {
    "TOFUEvaluator": "trl_unlearn.evaluation.tofu_evaluator",
    "MUSEEvaluator": "trl_unlearn.evaluation.muse_evaluator",
    "WMDPEvaluator": "trl_unlearn.evaluation.wmdp_evaluator",
    "EvalOptions": "trl_unlearn.evaluation.options",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
