"""WMDP results: log I/O and the ``WMDP_SUMMARY.json`` aggregates.

:func:`summarize` turns the per-example values of a WMDP evaluation (``WMDP_EVAL.json``, written
by :class:`~trl_unlearn.evaluation.wmdp_evaluator.WMDPEvaluator`) into one accuracy per metric:

- ``wmdp_bio``, ``wmdp_chem``, ``wmdp_cyber``, ``mmlu`` [acc]: the mean per-question accuracy
  (lm-evaluation-harness scores each question, 1 when the answer letter has the highest
  log-likelihood); MMLU's mean runs over every question of every subject, which is lm-eval's
  ``mmlu`` group accuracy (weighted by subject size);
- any other lm-eval task asked for by name: its aggregates as lm-eval reports them, under
  ``<task>_<metric>`` (``arc_easy_acc``, ``arc_easy_acc_norm``), kept as ``agg_value`` entries.

:class:`~trl_unlearn.evaluation.wmdp_evaluator.WMDPEvaluator` (the ``wmdp`` extra) runs the
benchmark; :mod:`trl_unlearn.evaluation.wmdp` exports both. Importing this module imports neither
lm-eval nor torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trl_unlearn.evaluation import metrics as M
from trl_unlearn.evaluation.results import PathLike, as_results, has_metric, load_log, per_example, save_log
from trl_unlearn.evaluation.spec import WMDP

__all__ = [
    "EVAL_FILENAME",
    "SUMMARY_FILENAME",
    "aggregate_values",
    "load_log_file",
    "save_results",
    "save_summary",
    "summarize",
]

EVAL_FILENAME = WMDP.eval_file
SUMMARY_FILENAME = WMDP.summary_file


def load_log_file(path: PathLike) -> dict[str, Any]:
    """Read a ``WMDP_EVAL.json`` (a file, or the directory that holds it)."""
    return load_log(path, EVAL_FILENAME)


def save_results(results: Mapping[str, Any], path: PathLike) -> Any:
    """Write results to ``path`` (a file, or a directory -> ``WMDP_EVAL.json``)."""
    return save_log(results, path, EVAL_FILENAME)


def save_summary(summary: Mapping[str, float], path: PathLike) -> Any:
    """Write a :func:`summarize` output (a file, or a directory -> ``WMDP_SUMMARY.json``)."""
    return save_log(summary, path, SUMMARY_FILENAME)


def aggregate_values(results: Mapping[str, Any], reference: Any = None, names: Iterable[str] | None = None) -> dict:
    """WMDP has no aggregate-only metric (every accuracy is a mean of per-question values)."""
    return {}


def summarize(results: Any, reference: Any = None) -> dict[str, float]:
    """One number per metric of a WMDP evaluation.

    Parameters
    ----------
    results : Mapping, str, os.PathLike or object
        A results dict of :class:`WMDPEvaluator`, or the path of its ``WMDP_EVAL.json``.
    reference : None
        WMDP compares with no reference model; anything else is refused.

    Returns
    -------
    dict
        Sorted by key: ``wmdp_bio`` / ``wmdp_chem`` / ``wmdp_cyber`` / ``mmlu`` (mean per-question
        accuracy) for the metrics evaluated, and ``<task>_<metric>`` of the other lm-eval tasks.

    Raises
    ------
    ValueError
        If a reference is given, or ``results`` holds no WMDP or lm-eval value.
    """
    if reference is not None:
        raise ValueError("WMDP has no reference model: its accuracies are absolute; drop `reference`.")
    results = as_results(results, EVAL_FILENAME, "results")
    summary: dict[str, float] = {}
    for name, entry in results.items():
        if has_metric(results, name):
            summary[name] = M.mean_score(per_example(results, name, "acc"))
        elif isinstance(entry, Mapping) and "agg_value" in entry:
            summary[name] = entry["agg_value"]
    if not summary:
        raise ValueError(
            "summarize found no WMDP metric in the results (expected keys such as wmdp_bio, wmdp_cyber, mmlu); "
            "is this a WMDP_EVAL.json?"
        )
    return dict(sorted(summary.items()))

