"""``evaluate`` metric modules for TOFU and MUSE, one folder per metric.

Each ``<name>/<name>.py`` is an :class:`evaluate.Metric` wrapping the pure functions of
:mod:`trl_unlearn.evaluation.metrics`; load one offline with::

    import evaluate
    from trl_unlearn.evaluation import metric_module_path

    forget_quality = evaluate.load(metric_module_path("tofu_forget_quality"))
    forget_quality.compute(predictions=model_truth_ratios, references=retain_truth_ratios)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["metric_module_path", "list_metric_modules"]

_MODULES_DIR = Path(__file__).resolve().parent


def list_metric_modules() -> list[str]:
    """Names of the bundled ``evaluate`` metric modules, sorted."""
    return sorted(
        child.name
        for child in _MODULES_DIR.iterdir()
        if child.is_dir() and (child / f"{child.name}.py").is_file()
    )


def metric_module_path(name: str) -> str:
    """Local path of a bundled metric module, for ``evaluate.load(path)``.

    Parameters
    ----------
    name : str
        One of :func:`list_metric_modules`.

    Returns
    -------
    str
        The module's directory (``evaluate.load`` finds ``<name>/<name>.py`` inside it).
    """
    path = _MODULES_DIR / name
    if not (path / f"{name}.py").is_file():
        raise ValueError(
            f"No bundled evaluate metric module named {name!r}; available: {list_metric_modules()}."
        )
    return str(path)
