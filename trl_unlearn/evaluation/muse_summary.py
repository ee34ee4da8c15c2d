"""MUSE results: open-unlearning log I/O and the ``MUSE_SUMMARY.json`` aggregates.

:func:`summarize` turns per-example values (an OU ``MUSE_EVAL.json``, or the same layout written
by trl-unlearn's MUSE evaluator) into the numbers of OU's ``MUSE_SUMMARY.json``, recomputed with
the same functions as the TOFU summary (:mod:`trl_unlearn.evaluation.metrics`).

Log keys read (per-example fields in brackets)
-----------------------------------------------
- ``forget_verbmem_ROUGE``, ``forget_knowmem_ROUGE``, ``retain_knowmem_ROUGE`` [rougeL_f1]:
  mean ROUGE-L F1 (MUSE reports F1, TOFU recall);
- ``exact_memorization``, ``extraction_strength`` [score]: means;
- ``mia_*`` [forget/holdout score]: AUCs; ``mia_min_k`` against the retrain model's -> ``privleak``.

:class:`~trl_unlearn.evaluation.muse_evaluator.MUSEEvaluator` runs the benchmark on a model and
produces such logs. Pure functions: importing this module imports neither torch nor transformers;
:mod:`trl_unlearn.evaluation.muse` exports them together with the evaluator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trl_unlearn.evaluation import metrics as M
from trl_unlearn.evaluation.spec import MUSE
from trl_unlearn.evaluation.results import (
    PathLike,
    as_results,
    has_metric,
    load_log,
    per_example,
    privacy_summary,
    save_log,
)

__all__ = [
    "EVAL_FILENAME",
    "SUMMARY_FILENAME",
    "ROUGE_METRICS",
    "load_open_unlearning_log",
    "save_results",
    "save_summary",
    "summarize",
    "aggregate_values",
]

EVAL_FILENAME = MUSE.eval_file
SUMMARY_FILENAME = MUSE.summary_file

#: MUSE's generation metrics; each summarised as the mean per-example ROUGE-L F1.
ROUGE_METRICS = MUSE.groups["rouge"]


def load_open_unlearning_log(path: PathLike) -> dict[str, Any]:
    """Read an open-unlearning ``MUSE_EVAL.json`` (a file, or the directory that holds it)."""
    return load_log(path, EVAL_FILENAME)


def save_results(results: Mapping[str, Any], path: PathLike) -> Any:
    """Write results in OU's layout to ``path`` (a file, or a directory -> ``MUSE_EVAL.json``)."""
    return save_log(results, path, EVAL_FILENAME)


def save_summary(summary: Mapping[str, float], path: PathLike) -> Any:
    """Write a :func:`summarize` output (a file, or a directory -> ``MUSE_SUMMARY.json``)."""
    return save_log(summary, path, SUMMARY_FILENAME)


def aggregate_values(
    results: Mapping[str, Any], retrain_reference: Any = None, names: Iterable[str] | None = None
) -> dict[str, float]:
    """MUSE's aggregate-only metric, ``privleak``, when ``mia_min_k`` is in ``results`` (and in
    ``names`` when given), by the code of :func:`summarize`."""
    if "mia_min_k" not in results or (names is not None and "privleak" not in names):
        return {}
    reference = None if retrain_reference is None else as_results(retrain_reference, EVAL_FILENAME, "retrain_reference")
    return {"privleak": privacy_summary(results, reference, "retrain_reference")["privleak"]}


def summarize(results: Any, retrain_reference: Any = None) -> dict[str, float]:
    """Aggregate MUSE per-example results into OU's ``MUSE_SUMMARY.json`` values.

    Every value is recomputed from per-example values; a key appears only when its inputs are
    in ``results``.

    Parameters
    ----------
    results : Mapping, str, os.PathLike or object
        Evaluation log in OU's layout, its path, or a results object with ``to_dict()``.
    retrain_reference : Mapping, str, os.PathLike or object, optional
        Evaluation log of the retrain model (trained on the retain data only; OU's
        ``retain_logs_path``). Its ``mia_min_k`` AUC is the anchor of ``privleak``; without it
        the anchor is 0.5.

    Returns
    -------
    dict
        Sorted by key, among ``exact_memorization``, ``extraction_strength``,
        ``forget_knowmem_ROUGE``, ``forget_verbmem_ROUGE``, ``mia_gradnorm``, ``mia_loss``,
        ``mia_min_k``, ``mia_min_k_plus_plus``, ``mia_reference``, ``mia_zlib``, ``privleak``,
        ``retain_knowmem_ROUGE``.

    Raises
    ------
    ValueError
        If ``results`` holds no MUSE metric.
    """
    results = as_results(results, EVAL_FILENAME, "results")
    reference = (
        None
        if retrain_reference is None
        else as_results(retrain_reference, EVAL_FILENAME, "retrain_reference")
    )
    summary: dict[str, float] = {}
    for name in ROUGE_METRICS:
        if has_metric(results, name):
            summary[name] = M.mean_score(per_example(results, name, "rougeL_f1"))
    for name in ("exact_memorization", "extraction_strength"):
        if has_metric(results, name):
            summary[name] = M.mean_score(per_example(results, name, "score"))
    summary.update(privacy_summary(results, reference, "retrain_reference"))
    if not summary:
        raise ValueError(
            "summarize found no MUSE metric in the results (expected keys such as "
            "forget_verbmem_ROUGE, forget_knowmem_ROUGE, mia_min_k); is this a MUSE_EVAL.json?"
        )
    return dict(sorted(summary.items()))
