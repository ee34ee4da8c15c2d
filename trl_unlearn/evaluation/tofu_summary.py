"""TOFU results: open-unlearning log I/O and the ``TOFU_SUMMARY.json`` aggregates.

:func:`summarize` turns per-example values (an OU ``TOFU_EVAL.json``, or the same layout written
by :class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator`) into the numbers OU reports in
``TOFU_SUMMARY.json``, recomputing every aggregate from the per-example values with
:mod:`trl_unlearn.evaluation.metrics`.

Log keys read (per-example fields in brackets)
-----------------------------------------------
- ``forget_Q_A_Prob`` [prob], ``forget_Q_A_ROUGE`` [rougeL_recall]: their means;
- ``forget_Q_A_PARA_Prob`` and ``forget_Q_A_PERT_Prob`` [avg_loss] (fallback:
  ``forget_truth_ratio`` [score]): per-example forget truth ratios -> ``forget_quality``;
- ``retain_Q_A_Prob``, ``retain_Q_A_ROUGE``, ``retain_Q_A_PARA_Prob``/``_PERT_Prob``,
  ``ra_Q_A_Prob``, ``ra_Q_A_PERT_Prob``, ``ra_Q_A_ROUGE`` and ``wf_*`` likewise: the nine
  ``model_utility`` components;
- ``exact_memorization`` [score]: mean (``None`` skipped); ``extraction_strength`` [score]: mean;
- ``mia_*`` [forget/holdout score]: AUCs; ``mia_min_k`` -> ``privleak``.

Pure functions: importing this module imports neither torch nor transformers;
:mod:`trl_unlearn.evaluation.tofu` exports them together with the evaluator.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from trl_unlearn.evaluation import metrics as M
from trl_unlearn.evaluation.spec import TOFU, TOFU_MODEL_UTILITY_COMPONENTS
from trl_unlearn.evaluation.results import (
    PathLike,
    as_results,
    has_metric,
    load_log,
    per_example,
    per_example_by_index,
    privacy_summary,
    save_log,
)

__all__ = [
    "EVAL_FILENAME",
    "SUMMARY_FILENAME",
    "MODEL_UTILITY_COMPONENTS",
    "load_open_unlearning_log",
    "save_results",
    "save_summary",
    "summarize",
    "aggregate_values",
    "forget_quality_value",
    "truth_ratio_values",
    "model_utility_components",
]

#: ``summary_format`` values: OU's current summaries report ``forget_truth_ratio`` (a top-level
#: metric of its TOFU suite); the "legacy" ones (OU's published Llama-3.2 logs) do not.
SUMMARY_FORMATS = ("current", "legacy")

EVAL_FILENAME = TOFU.eval_file
SUMMARY_FILENAME = TOFU.summary_file

#: The metrics that only have an aggregate value (no per-example values).
AGGREGATES = ("forget_quality", "model_utility", "privleak")

#: The nine aggregates whose harmonic mean is the model utility, under their OU log names.
MODEL_UTILITY_COMPONENTS = TOFU_MODEL_UTILITY_COMPONENTS

# Per split: (log key of the reference answer's loss, log key of the perturbed answers' losses,
# stored truth-ratio log key used when the losses are absent).
_TRUTH_RATIO_SOURCES = {
    "forget": ("forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob", "forget_truth_ratio"),
    "retain": ("retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob", "retain_Truth_Ratio"),
    "ra": ("ra_Q_A_Prob", "ra_Q_A_PERT_Prob", "ra_Truth_Ratio"),
    "wf": ("wf_Q_A_Prob", "wf_Q_A_PERT_Prob", "wf_Truth_Ratio"),
}

# Keys whose presence means the results carry some model-utility input.
_UTILITY_INPUT_KEYS = frozenset(m for split in ("retain", "ra", "wf") for m in TOFU.groups[split])


def load_open_unlearning_log(path: PathLike) -> dict[str, Any]:
    """Read an open-unlearning ``TOFU_EVAL.json`` (per-example values).

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file, or the directory that contains ``TOFU_EVAL.json``.

    Returns
    -------
    dict
        The log in OU's layout (metric -> ``{"agg_value", "value_by_index"}``, MIA metrics with
        ``forget``/``holdout``/``auc``), ready for :func:`summarize`.
    """
    return load_log(path, EVAL_FILENAME)


def save_results(results: Mapping[str, Any], path: PathLike) -> Any:
    """Write results in OU's layout to ``path`` (a file, or a directory -> ``TOFU_EVAL.json``)."""
    return save_log(results, path, EVAL_FILENAME)


def save_summary(summary: Mapping[str, float], path: PathLike) -> Any:
    """Write a :func:`summarize` output (a file, or a directory -> ``TOFU_SUMMARY.json``)."""
    return save_log(summary, path, SUMMARY_FILENAME)


def truth_ratio_values(results: Mapping[str, Any], split: str = "forget") -> np.ndarray:
    """Per-example truth ratios of one TOFU split.

    Recomputed from the reference and perturbed answers' ``avg_loss`` when the log has them,
    otherwise read from the stored per-example truth ratios.

    Parameters
    ----------
    results : Mapping
        Evaluation log (OU layout).
    split : {"forget", "retain", "ra", "wf"}
        ``ra`` = real authors, ``wf`` = world facts.

    Returns
    -------
    numpy.ndarray
        ``[n_examples]`` truth ratios in log order.
    """
    try:
        correct_key, wrong_key, stored_key = _TRUTH_RATIO_SOURCES[split]
    except KeyError:
        raise ValueError(
            f"Unknown TOFU split {split!r}; use one of {sorted(_TRUTH_RATIO_SOURCES)}."
        ) from None
    if has_metric(results, correct_key) and has_metric(results, wrong_key):
        correct = per_example_by_index(results, correct_key, "avg_loss")
        wrong = per_example_by_index(results, wrong_key, "avg_loss")
        if correct.keys() != wrong.keys():
            raise ValueError(
                f"{correct_key!r} and {wrong_key!r} cover different examples "
                f"({len(correct)} vs {len(wrong)}); they must come from the same split."
            )
        idx = [i for i in correct if correct[i] is not None and wrong[i] is not None]
        return M.truth_ratios([correct[i] for i in idx], [wrong[i] for i in idx])
    if has_metric(results, stored_key):
        stored = per_example(results, stored_key, "score")
        return np.asarray([s for s in stored if s is not None], dtype=np.float64)
    raise KeyError(
        f"no {split} truth ratios in the results: need {correct_key!r} and {wrong_key!r} "
        f"(per-example avg_loss) or {stored_key!r} (per-example score)"
    )


def _normalised_probabilities(results: Mapping[str, Any], prefix: str) -> list[float]:
    correct_key, wrong_key = f"{prefix}_Q_A_Prob", f"{prefix}_Q_A_PERT_Prob"
    if has_metric(results, correct_key) and has_metric(results, wrong_key):
        correct = per_example_by_index(results, correct_key, "prob")
        wrong = per_example_by_index(results, wrong_key, "prob")
        if correct.keys() != wrong.keys():
            raise ValueError(f"{correct_key!r} and {wrong_key!r} cover different examples.")
        return [
            M.normalised_probability(correct[i], wrong[i])
            for i in correct
            if correct[i] is not None and wrong[i] is not None
        ]
    stored_key = f"{prefix}_Q_A_Prob_normalised"
    if has_metric(results, stored_key):
        return per_example(results, stored_key, "prob")
    raise KeyError(
        f"no {prefix} option-normalised probabilities: need {correct_key!r} and {wrong_key!r} "
        f"(per-example prob) or {stored_key!r}"
    )


def _utility_components(results: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Computable model-utility components and descriptions of the missing inputs."""
    out: dict[str, float] = {}
    missing: list[str] = []
    for prefix in ("retain", "ra", "wf"):
        prob_name = "retain_Q_A_Prob" if prefix == "retain" else f"{prefix}_Q_A_Prob_normalised"
        try:
            if prefix == "retain":
                out[prob_name] = M.mean_score(per_example(results, "retain_Q_A_Prob", "prob"))
            else:
                out[prob_name] = M.mean_score(_normalised_probabilities(results, prefix))
        except KeyError as err:
            missing.append(str(err.args[0]))
        try:
            out[f"{prefix}_Q_A_ROUGE"] = M.mean_score(
                per_example(results, f"{prefix}_Q_A_ROUGE", "rougeL_recall")
            )
        except KeyError as err:
            missing.append(str(err.args[0]))
        try:
            out[f"{prefix}_Truth_Ratio"] = M.true_better(truth_ratio_values(results, prefix))
        except KeyError as err:
            missing.append(str(err.args[0]))
    return {name: out[name] for name in MODEL_UTILITY_COMPONENTS if name in out}, missing


def _missing_utility_message(missing: list[str]) -> str:
    return (
        "cannot compute TOFU model_utility, missing inputs: " + "; ".join(missing)
        + ". Evaluate the retain, real_authors and world_facts splits (Prob, ROUGE and"
        " perturbed Prob) to get it."
    )


def model_utility_components(results: Mapping[str, Any]) -> dict[str, float]:
    """The nine aggregates of TOFU model utility, recomputed from per-example values.

    Returns
    -------
    dict
        :data:`MODEL_UTILITY_COMPONENTS` -> value: mean ``prob`` (retain) or option-normalised
        probability (real authors, world facts), mean ROUGE-L recall, and the ``true_better``
        truth-ratio aggregate.

    Raises
    ------
    KeyError
        Naming every missing input, when a component cannot be computed.
    """
    components, missing = _utility_components(results)
    if missing:
        raise KeyError(_missing_utility_message(missing))
    return components


def forget_quality_value(results: Mapping[str, Any], retain_reference: Any) -> float | None:
    """TOFU forget quality: the KS test of the forget truth ratios against the retain model's.

    Parameters
    ----------
    results : Mapping
        Evaluation log with the forget truth ratios (see :func:`truth_ratio_values`).
    retain_reference : Mapping, str, os.PathLike or None
        The retain model's log on the same forget split; ``None`` gives ``None`` (as OU).

    Raises
    ------
    ValueError
        When either side lacks forget truth ratios, or they cover different numbers of questions.
    """
    if retain_reference is None:
        return None
    reference = as_results(retain_reference, EVAL_FILENAME, "retain_reference")
    try:
        model_ratios = truth_ratio_values(results, "forget")
    except KeyError:
        raise ValueError(
            "forget_quality needs the evaluated model's forget truth ratios, but the results "
            "have neither forget_Q_A_PARA_Prob/forget_Q_A_PERT_Prob nor forget_truth_ratio."
        ) from None
    try:
        reference_ratios = truth_ratio_values(reference, "forget")
    except KeyError as err:
        raise ValueError(
            f"retain_reference has no per-example forget truth ratios ({err.args[0]}); pass "
            "the TOFU_EVAL.json of the retain model evaluated on the same forget split."
        ) from None
    if len(reference_ratios) != len(model_ratios):
        raise ValueError(
            f"retain_reference has {len(reference_ratios)} forget truth ratios but the results "
            f"have {len(model_ratios)}; both must be evaluated on the same forget split (and without `limit`)."
        )
    return M.forget_quality(model_ratios, reference_ratios)


def aggregate_values(
    results: Mapping[str, Any], retain_reference: Any = None, names: Iterable[str] | None = None
) -> dict[str, float | None]:
    """TOFU's aggregate-only metrics whose inputs are in ``results``, as the evaluator stores them.

    ``forget_quality`` (``None`` without a reference, as OU) when the forget truth ratios are
    there, ``model_utility`` when all its inputs are, ``privleak`` when ``mia_min_k`` is; only
    ``names`` when given. The same functions as :func:`summarize`, so a log and an evaluation agree.
    """
    names = set(AGGREGATES if names is None else names)
    values: dict[str, float | None] = {}
    if "forget_quality" in names and has_metric(results, "forget_truth_ratio"):
        values["forget_quality"] = forget_quality_value(results, retain_reference)
    if "model_utility" in names:
        components, missing = _utility_components(results)
        if not missing:
            values["model_utility"] = M.model_utility(list(components.values()))
    if "privleak" in names and "mia_min_k" in results:
        values["privleak"] = privacy_summary(results, _reference_or_none(retain_reference), "retain_reference")["privleak"]
    return values


def _reference_or_none(retain_reference: Any) -> dict[str, Any] | None:
    return None if retain_reference is None else as_results(retain_reference, EVAL_FILENAME, "retain_reference")


def summarize(
    results: Any,
    retain_reference: Any = None,
    *,
    include_components: bool = False,
    summary_format: str = "current",
) -> dict[str, float]:
    """Aggregate TOFU per-example results into OU's ``TOFU_SUMMARY.json`` values.

    Every value is recomputed from per-example values (never copied from ``agg_value``); MIA
    AUCs are recomputed from the per-example ``forget``/``holdout`` attack scores. A key appears
    only when its inputs are in ``results``, as in OU's summaries.

    Parameters
    ----------
    results : Mapping, str, os.PathLike or object
        Evaluation log in OU's layout, its path, or a results object with ``to_dict()``.
    retain_reference : Mapping, str, os.PathLike or object, optional
        Evaluation log of the model trained on the retain split only, on the same forget split
        (OU: ``retain_logs_path``). Needed for ``forget_quality`` (its per-example forget truth
        ratios) and used for ``privleak`` (its ``mia_min_k`` AUC). Without it
        ``forget_quality`` is omitted (OU reports ``None`` and leaves it out of the summary) and
        ``privleak`` uses a reference AUC of 0.5.
    include_components : bool
        Also return ``forget_truth_ratio`` (``closer_to_1_better`` aggregate) and the nine
        :data:`MODEL_UTILITY_COMPONENTS`. OU keeps these in ``TOFU_EVAL.json`` only, so they are
        off by default and the default keys match ``TOFU_SUMMARY.json`` exactly.
    summary_format : {"current", "legacy"}
        ``"current"``: the keys of open-unlearning's current TOFU suite, which reports
        ``forget_truth_ratio`` (``closer_to_1_better`` aggregate) whenever the forget truth ratios
        were computed. ``"legacy"``: OU's earlier summaries without it (the published
        Llama-3.2 TOFU logs), to compare with those key for key.

    Returns
    -------
    dict
        Sorted by key, among ``exact_memorization``, ``extraction_strength``,
        ``forget_Q_A_Prob``, ``forget_Q_A_ROUGE``, ``forget_quality``, ``forget_truth_ratio``, ``mia_gradnorm``,
        ``mia_loss``, ``mia_min_k``, ``mia_min_k_plus_plus``, ``mia_reference``, ``mia_zlib``,
        ``model_utility``, ``privleak``.

    Raises
    ------
    ValueError
        If ``results`` holds no TOFU metric, or ``retain_reference`` lacks forget truth ratios.

    Warns
    -----
    UserWarning
        If only part of the model-utility inputs are present: ``model_utility`` is left out and
        the message lists the missing inputs.
    """
    if summary_format not in SUMMARY_FORMATS:
        raise ValueError(f"summary_format must be one of {SUMMARY_FORMATS}, got {summary_format!r}")
    results = as_results(results, EVAL_FILENAME, "results")
    summary: dict[str, float] = {}

    if has_metric(results, "forget_Q_A_Prob"):
        summary["forget_Q_A_Prob"] = M.mean_score(per_example(results, "forget_Q_A_Prob", "prob"))
    if has_metric(results, "forget_Q_A_ROUGE"):
        summary["forget_Q_A_ROUGE"] = M.mean_score(
            per_example(results, "forget_Q_A_ROUGE", "rougeL_recall")
        )
    for name in ("exact_memorization", "extraction_strength"):
        if has_metric(results, name):
            summary[name] = M.mean_score(per_example(results, name, "score"))

    forget_ratios = None
    try:
        forget_ratios = truth_ratio_values(results, "forget")
    except KeyError:
        pass
    reference = _reference_or_none(retain_reference)
    if reference is not None:
        summary["forget_quality"] = forget_quality_value(results, reference)

    if _UTILITY_INPUT_KEYS & results.keys():
        components, missing = _utility_components(results)
        if missing:
            warnings.warn(_missing_utility_message(missing) + " model_utility is left out.", stacklevel=2)
        else:
            summary["model_utility"] = M.model_utility(list(components.values()))
        if include_components:
            summary.update(components)
    if (include_components or summary_format == "current") and forget_ratios is not None:
        summary["forget_truth_ratio"] = M.closer_to_1_better(forget_ratios)

    summary.update(privacy_summary(results, reference, "retain_reference"))

    if not summary:
        raise ValueError(
            "summarize found no TOFU metric in the results (expected keys such as "
            "forget_Q_A_Prob, forget_truth_ratio, mia_min_k); is this a TOFU_EVAL.json?"
        )
    return dict(sorted(summary.items()))
