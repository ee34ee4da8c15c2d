"""Evaluation for the TOFU and MUSE unlearning benchmarks.

- :mod:`trl_unlearn.evaluation.metrics`: pure metric functions (open-unlearning definitions).
- :mod:`trl_unlearn.evaluation.tofu` / :mod:`trl_unlearn.evaluation.muse`: log I/O and
  ``summarize`` reproducing open-unlearning's ``TOFU_SUMMARY.json`` / ``MUSE_SUMMARY.json``.
- :func:`metric_module_path` / :func:`list_metric_modules`: bundled ``evaluate`` modules.

Importing this package does not import torch or transformers.
"""

from trl_unlearn.evaluation.modules import list_metric_modules, metric_module_path

__all__ = ["list_metric_modules", "metric_module_path"]
