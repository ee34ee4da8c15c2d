"""Reading, writing and querying evaluation logs in open-unlearning's JSON layout.

An evaluation log (``TOFU_EVAL.json`` / ``MUSE_EVAL.json``) maps metric names to entries of one
of three shapes::

    {"forget_Q_A_Prob": {"agg_value": 0.88,
                         "value_by_index": {"0": {"prob": 0.87, "avg_loss": 0.13}, ...}},
     "mia_min_k": {"forget":  {"agg_value": ..., "value_by_index": {"0": {"score": ...}}},
                   "holdout": {"agg_value": ..., "value_by_index": {...}},
                   "auc": 0.99, "agg_value": 0.99},
     "model_utility": {"agg_value": 0.59}}

``value_by_index`` keys are the dataset row indices as strings. The same plain ``dict`` layout is
used by trl-unlearn's own evaluators, so logs from either source go through the same
``summarize`` functions. Only :mod:`json` is used (never pickle).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trl_unlearn.evaluation.metrics import mia_auc, privleak
from trl_unlearn.evaluation.spec import BENCHMARKS

__all__ = [
    "check_benchmark",
    "load_log",
    "save_log",
    "as_results",
    "has_metric",
    "per_example",
    "per_example_by_index",
    "mia_scores",
    "mia_aucs",
    "reference_min_k_auc",
    "privacy_summary",
    "compare_logs",
]

PathLike = str | os.PathLike


def _resolve(path: PathLike, filename: str) -> Path:
    path = Path(path)
    return path / filename if path.is_dir() else path


def check_benchmark(results: Mapping[str, Any], filename: str, what: str = "results") -> None:
    """Refuse a log of the other benchmark (``filename`` ``"TOFU_EVAL.json"`` expects TOFU keys).

    Raises
    ------
    ValueError
        When ``results`` holds keys only the other benchmark writes.
    """
    benchmark = filename.split("_")[0].upper()
    if benchmark not in BENCHMARKS:
        return
    for other, spec in BENCHMARKS.items():
        foreign = sorted(k for k in results if other != benchmark and str(k).startswith(spec.exclusive_prefixes))
        if foreign:
            raise ValueError(
                f"{what} is a {other} log (it has {', '.join(foreign[:3])}), not a {benchmark} one. Summarize it with "
                f"trl_unlearn.evaluation.{other.lower()}.summarize, or pass the {filename} of a {benchmark} evaluation."
            )


def load_log(path: PathLike, filename: str) -> dict[str, Any]:
    """Load an evaluation log.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file, or a directory containing ``filename``.
    filename : str
        Default file name inside a directory (``"TOFU_EVAL.json"``, ``"MUSE_EVAL.json"``).

    Returns
    -------
    dict
        The log, metric name -> entry.
    """
    file = _resolve(path, filename)
    if not file.is_file():
        raise FileNotFoundError(
            f"No evaluation log at {file}. Pass the path of an open-unlearning {filename} "
            "(or of the directory holding it)."
        )
    with open(file, encoding="utf-8") as fh:
        try:
            logs = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{file}, line {err.lineno}: not valid JSON ({err.msg}); the file is truncated or corrupt. "
                "Re-run the evaluation that wrote it (or download it again)."
            ) from None
    if not isinstance(logs, dict):
        raise ValueError(f"{file} is not an evaluation log: expected a JSON object of metrics.")
    check_benchmark(logs, filename, str(file))
    return logs


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # torch tensors, without importing torch
        return _jsonable(obj.tolist())
    return obj


def save_log(results: Mapping[str, Any], path: PathLike, filename: str) -> Path:
    """Write ``results`` as JSON with OU's formatting (metrics sorted, indent 4).

    Parameters
    ----------
    results : Mapping
        Log in the OU layout; NumPy scalars/arrays are converted to Python values.
    path : str or os.PathLike
        Target file, or an existing directory (the file is then ``path / filename``).
    filename : str
        File name used when ``path`` is a directory.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    file = _resolve(path, filename)
    file.parent.mkdir(parents=True, exist_ok=True)
    data = _jsonable(dict(sorted(dict(results).items())))
    with open(file, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=4)
    return file


def as_results(results: Any, filename: str, what: str = "results") -> dict[str, Any]:
    """Normalise the accepted forms of evaluation results to the OU ``dict`` layout.

    Parameters
    ----------
    results : Mapping, str, os.PathLike or object
        A log dict, the path of a log file / directory, or an object exposing ``to_dict()``
        (results objects of trl-unlearn's evaluators).
    filename : str
        Default log file name for directory paths.
    what : str
        Name used in error messages.
    """
    out: Any = None
    if isinstance(results, (str, os.PathLike)):
        out = load_log(results, filename)
    elif isinstance(results, Mapping):
        out = results
    elif callable(getattr(results, "to_dict", None)):
        out = results.to_dict()
    if isinstance(out, Mapping):
        check_benchmark(out, filename, what)
        return dict(out)
    raise TypeError(
        f"{what} must be an evaluation log dict, the path of a {filename}, or an object with "
        f"to_dict(); got {type(results).__name__}."
    )


def has_metric(results: Mapping[str, Any], metric: str) -> bool:
    """Whether ``results`` holds per-example values for ``metric``."""
    entry = results.get(metric)
    return isinstance(entry, Mapping) and isinstance(entry.get("value_by_index"), Mapping)


def per_example_by_index(results: Mapping[str, Any], metric: str, field: str) -> dict[str, Any]:
    """``{index: value}`` of one per-example field, in log order.

    Raises
    ------
    KeyError
        If the metric or its per-example values are absent.
    ValueError
        If an example lacks ``field``.
    """
    entry = results.get(metric)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("value_by_index"), Mapping):
        raise KeyError(f"the results have no per-example values for {metric!r}")
    out = {}
    for idx, value in entry["value_by_index"].items():
        if value is None:
            out[str(idx)] = None
            continue
        if not isinstance(value, Mapping) or field not in value:
            raise ValueError(
                f"{metric!r} example {idx} has no {field!r} field; is this an open-unlearning log?"
            )
        out[str(idx)] = value[field]
    _warn_non_finite(metric, field, list(out.values()))
    return out


def _warn_non_finite(metric: str, field: str, values: list[Any]) -> None:
    """Say so when per-example values are NaN/inf: every aggregate computed from them is."""
    bad = 0
    for value in values:
        try:
            bad += int(value is not None and not np.isfinite(np.asarray(value, dtype=np.float64)).all())
        except (TypeError, ValueError):
            continue
    if bad:
        warnings.warn(
            f"{metric!r}: {bad} of {len(values)} per-example {field!r} values are NaN or infinite, so its aggregate "
            "is not a number. The evaluated model probably has non-finite weights or logits; check the training run.",
            stacklevel=3,
        )


def per_example(results: Mapping[str, Any], metric: str, field: str) -> list[Any]:
    """Per-example values of ``metric[field]`` in log order (``None`` entries kept)."""
    return list(per_example_by_index(results, metric, field).values())


def mia_scores(results: Mapping[str, Any], metric: str) -> tuple[list[float], list[float]]:
    """Per-example forget and holdout attack scores of an MIA metric (``mia_*``)."""
    entry = results.get(metric)
    try:
        forget = entry["forget"]["value_by_index"]
        holdout = entry["holdout"]["value_by_index"]
    except (TypeError, KeyError):
        raise KeyError(
            f"{metric!r} has no per-example 'forget'/'holdout' attack scores in the results"
        ) from None
    scores = [v["score"] for v in forget.values()], [v["score"] for v in holdout.values()]
    _warn_non_finite(metric, "score", scores[0] + scores[1])
    return scores


def mia_aucs(results: Mapping[str, Any]) -> dict[str, float]:
    """AUC of every ``mia_*`` metric present, recomputed from its per-example scores."""
    out = {}
    for name in sorted(results):
        entry = results[name]
        if name.startswith("mia_") and isinstance(entry, Mapping) and "forget" in entry:
            forget, holdout = mia_scores(results, name)
            out[name] = mia_auc(forget, holdout)
    return out


def reference_min_k_auc(reference: Mapping[str, Any] | None, what: str = "reference") -> float:
    """Min-K% AUC of the reference (retain / retrain) model, the anchor of privleak.

    Recomputed from the reference log's per-example ``mia_min_k`` scores. Without a reference,
    or when it has no such scores, returns 0.5 like open-unlearning (with a warning in the
    second case, as a reference was passed but cannot be used).
    """
    if reference is None:
        return 0.5
    try:
        return mia_auc(*mia_scores(reference, "mia_min_k"))
    except KeyError:
        warnings.warn(
            f"The {what} log has no per-example mia_min_k scores; privleak uses a reference AUC "
            "of 0.5 (as open-unlearning does). Evaluate that model with the mia_min_k metric "
            "for a calibrated privleak.",
            stacklevel=3,
        )
        return 0.5


def privacy_summary(
    results: Mapping[str, Any], reference: Mapping[str, Any] | None, what: str = "reference"
) -> dict[str, float]:
    """MIA AUCs of ``results`` plus ``privleak`` (when ``mia_min_k`` is present).

    Shared by the TOFU and MUSE summaries: ``privleak`` compares the ``mia_min_k`` AUC with
    :func:`reference_min_k_auc` of ``reference``.
    """
    out = mia_aucs(results)
    if "mia_min_k" in out:
        out["privleak"] = privleak(out["mia_min_k"], reference_min_k_auc(reference, what))
    return out


def _relative_difference(value: float, reference: float) -> float:
    if value == reference:  # also two infinities of the same sign
        return 0.0
    return abs(value - reference) / max(abs(reference), 1e-12)


def compare_logs(results: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per-example agreement of two logs of the same model and data (e.g. ours vs open-unlearning's).

    For every metric with ``value_by_index`` in both logs, over the row indices both have: the
    largest relative difference ``|ours - reference| / |reference|`` of each numeric field (lists
    element by element) and, for text fields (``generation``, ``ground_truth``, ``input``), the
    share of rows whose texts are identical.

    Returns
    -------
    dict
        ``{metric: {"rows": n, field: worst relative difference, f"{field}_identical": share}}``.
    """
    report: dict[str, dict[str, float]] = {}
    for metric in sorted(set(results) & set(reference)):
        ours = results[metric].get("value_by_index") if isinstance(results[metric], Mapping) else None
        theirs = reference[metric].get("value_by_index") if isinstance(reference[metric], Mapping) else None
        if not ours or not theirs:
            continue
        rows = [i for i in theirs if i in ours]
        entry: dict[str, float] = {"rows": len(rows)}
        for field in sorted(theirs[rows[0]]) if rows else ():
            pairs = [(ours[i].get(field), theirs[i].get(field)) for i in rows]
            if all(isinstance(b, str) for _, b in pairs):
                entry[f"{field}_identical"] = sum(a == b for a, b in pairs) / len(pairs)
                continue
            worst = 0.0
            for a, b in pairs:
                a_values, b_values = (a, b) if isinstance(b, list) else ([a], [b])
                if a_values is None or len(a_values) != len(b_values):
                    worst = float("inf")
                    continue
                for x, y in zip(a_values, b_values):
                    if x is None or y is None:
                        worst = max(worst, 0.0 if x is y else float("inf"))
                    else:
                        worst = max(worst, _relative_difference(float(x), float(y)))
            entry[field] = worst
        report[metric] = entry
    return report
