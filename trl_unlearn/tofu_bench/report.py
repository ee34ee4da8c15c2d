"""The ``tofu-bench`` report: summary rows, the validity check, ``results.json`` / ``results.md``,
the forget-quality vs model-utility plot, the forget-quality curves and the unlearned models' cards."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

#: Columns of every row of ``results.json`` / ``results.md`` (the summary keys first).
ROW_METRICS = ("forget_quality", "model_utility", "forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_truth_ratio",
               "extraction_strength")
#: Extra summary keys kept in the rows when the evaluation produced them.
EXTRA_METRICS = ("exact_memorization", "privleak", "mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus",
                 "mia_gradnorm")
_HEADERS = {"forget_quality": "forget quality", "model_utility": "model utility", "forget_Q_A_Prob": "forget Prob",
            "forget_Q_A_ROUGE": "forget ROUGE", "forget_truth_ratio": "forget truth ratio",
            "extraction_strength": "extraction strength", "wall_seconds": "wall s"}


class BenchValidityError(RuntimeError):
    """The fine-tuned target does not know the forget authors clearly better than the retain model."""


def summary_row(results: Mapping[str, Any], retain_results: Mapping[str, Any]) -> dict[str, Any]:
    """The report's metrics of one model, from its per-example results and the retain model's.

    ``forget_truth_ratio`` comes from :func:`trl_unlearn.evaluation.tofu.summarize`'s component
    option, which also covers summaries that leave it out by default.
    """
    from ..evaluation.tofu_summary import summarize

    summary = summarize(results, retain_reference=retain_results, include_components=True)
    return {k: summary.get(k) for k in ROW_METRICS} | {k: summary[k] for k in EXTRA_METRICS if k in summary}


def validity(target: Mapping[str, Any], retain: Mapping[str, Any], config) -> dict[str, Any]:
    """Gaps between target and retain model on the forget authors, and whether they pass."""
    prob_gap = target["forget_Q_A_Prob"] - retain["forget_Q_A_Prob"]
    rouge_gap = target["forget_Q_A_ROUGE"] - retain["forget_Q_A_ROUGE"]
    fq = target["forget_quality"]
    checks = {
        "forget_prob_gap": {"value": prob_gap, "threshold": config.min_forget_prob_gap,
                            "passed": prob_gap >= config.min_forget_prob_gap},
        "forget_rouge_gap": {"value": rouge_gap, "threshold": config.min_forget_rouge_gap,
                             "passed": rouge_gap >= config.min_forget_rouge_gap},
        "target_forget_quality": {"value": fq, "threshold": config.max_target_forget_quality,
                                  "passed": fq is not None and fq <= config.max_target_forget_quality},
    }
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}


def format_validity(report: Mapping[str, Any]) -> str:
    c = report["checks"]
    return (
        f"forget Prob gap (target - retain) {c['forget_prob_gap']['value']:+.3f} "
        f"(need >= {c['forget_prob_gap']['threshold']:g}), forget ROUGE gap {c['forget_rouge_gap']['value']:+.3f} "
        f"(need >= {c['forget_rouge_gap']['threshold']:g}), target-vs-retain forget quality "
        f"{_fmt_fq(c['target_forget_quality']['value'])} (need <= {c['target_forget_quality']['threshold']:g})"
    )


def raise_if_invalid(report: Mapping[str, Any], config) -> None:
    """Raise :class:`BenchValidityError` naming the failed numbers and what to change."""
    if report["passed"]:
        return
    failed = [name for name, c in report["checks"].items() if not c["passed"]]
    raise BenchValidityError(
        "the fine-tuned target does not know the forget authors clearly better than the retain model, so the "
        f"benchmark would measure nothing. Failed: {', '.join(failed)}; {format_validity(report)}. Fine-tune "
        f"harder: raise --finetune_epochs (now {config.finetune_epochs:g}) or --finetune_learning_rate (now "
        f"{config.finetune_learning_rate:g}); or, knowingly, relax --min_forget_prob_gap / --min_forget_rouge_gap / "
        "--max_target_forget_quality (or --check_validity false). The fine-tuned models stay cached."
    )


# ------------------------------------------------------------------------------------- provenance
def versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "transformers", "trl", "trl-unlearn", "datasets", "peft", "accelerate"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The package checkout's commit (``+dirty`` with local changes), or None outside a git checkout."""
    package = Path(__file__).resolve().parents[1]

    def git(*args):
        return subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != package.parent:
            return None  # an installed copy inside some other repository
        return git("describe", "--always", "--dirty=+dirty", "--abbrev=40") or None
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------------------- files
def _fmt_fq(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}" if value >= 1e-3 else f"{value:.2e}"


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key == "forget_quality":
        return _fmt_fq(value)
    if key == "wall_seconds":
        return f"{value:.0f}"
    return f"{value:.3f}"


def results_markdown(payload: Mapping[str, Any]) -> str:
    """``results.md``: the table, the validity numbers, the command and the settings source."""
    columns = ROW_METRICS + ("wall_seconds",)
    lines = [
        "# TOFU benchmark (trl-unlearn tofu-bench)",
        "",
        f"Command: `{payload['command']}`  ",
        f"Commit: `{payload['commit']}`; " + ", ".join(f"{k} {v}" for k, v in payload["versions"].items()),
        "",
        "| model | " + " | ".join(_HEADERS[c] for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in payload["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(c, row.get(c)) for c in columns) + " |")
    data = payload["settings"]["data"]
    lines += [
        "",
        f"Forget quality is the KS-test p-value of each model's forget truth ratios against the retain model's "
        f"({data['forget_rows']} forget rows of {data['forget_authors']} author(s); {data['authors']} authors "
        "fine-tuned).",
        "",
        f"Validity check: {format_validity(payload['validity'])}.",
        "",
        f"Method settings: {payload['settings']['settings_source']}. Selection rule: {payload['selection_rule']}.",
    ]
    if payload.get("sweep"):
        sweep = payload["sweep"]
        lines += ["", f"Sweep grid: `{json.dumps(sweep['grid'])}` ({sweep['wall_seconds']:.0f} s in all).", "",
                  "| method | grid point | forget quality | model utility | selected |", "|---|---|---:|---:|---|"]
        for method, points in sweep["points"].items():
            for p in points:
                lines.append(f"| {method} | `{json.dumps(p['grid_point'])}` | {_fmt_fq(p['forget_quality'])} | "
                             f"{_fmt('model_utility', p['model_utility'])} | {'yes' if p['selected'] else ''} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_safe(value: float | None) -> float | None:
    return None if value is None else max(float(value), 1e-300)


def plot_tradeoff(rows: Mapping[str, Mapping[str, Any]], path: str | Path, title: str) -> None:
    """Forget quality (log x) vs model utility (y), one labelled point per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, row in rows.items():
        fq, mu = _log_safe(row.get("forget_quality")), row.get("model_utility")
        if fq is None or mu is None:
            continue
        marker, color = {"target": ("s", "#555555"), "retain": ("*", "#1e8449")}.get(name, ("o", None))
        ax.scatter([fq], [mu], marker=marker, s=80 if marker == "*" else 45, color=color, zorder=3)
        ax.annotate(name, (fq, mu), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("forget quality (KS p-value vs retain model, log scale)")
    ax.set_ylabel("model utility")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(curves: Mapping[str, list[Mapping[str, Any]]], path: str | Path, title: str) -> None:
    """Forget quality (log y) over the fraction of training done, one line per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for method, points in curves.items():
        xs = [p["progress"] for p in points if p.get("forget_quality") is not None]
        ys = [_log_safe(p["forget_quality"]) for p in points if p.get("forget_quality") is not None]
        if xs:
            ax.plot(xs, ys, "o-", label=method)
    ax.set_yscale("log")
    ax.set_xlabel("fraction of unlearning steps done")
    ax.set_ylabel("forget quality (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def update_model_card(model_dir: str | Path, summary: Mapping[str, Any], forget_split: str) -> None:
    """Put the bench's TOFU summary on the unlearned model's ``README.md`` (metadata and table)."""
    from huggingface_hub import ModelCard

    from ..model_card import eval_results_from_summary, merge_eval_results, replace_results_section

    path = Path(model_dir) / "README.md"
    if not path.is_file():
        return
    card = ModelCard.load(path)
    values = {k: v for k, v in summary.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
    new = eval_results_from_summary("TOFU", None, forget_split, values)
    card.data.eval_results = merge_eval_results(card.data.eval_results, new)
    card.text = replace_results_section(card.text, card.data.eval_results)
    card.save(path)
