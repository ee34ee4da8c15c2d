"""Model cards for unlearned models: method, data, training procedure and benchmark results.

The trainers write ``README.md`` from trl-unlearn's own template
(``trl_unlearn/templates/model_card.md``), not TRL's: besides the base model, the method and its
hyper-parameters, the forget/retain data and the citations, the card carries the latest TOFU / MUSE
summaries twice, once as a readable Markdown table and once as ``model-index`` evaluation results in
the YAML metadata (``huggingface_hub.ModelCardData(eval_results=[EvalResult(...)])``), which the Hub
indexes.

Everything here is pure (:func:`eval_results_from_summary`, :func:`merge_eval_results`,
:func:`render_results_markdown`, :func:`build_model_card_data`, :func:`render_model_card`): plain
values in, no network. Benchmark names, datasets, citations and metric display names come from
:mod:`trl_unlearn.evaluation.spec`. The trainers' :class:`~trl_unlearn.trainer.card.ModelCardMixin`
gathers the values and writes the card; :mod:`trl_unlearn.hub` reuses these functions to add
results to a card already on the Hub.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .evaluation.spec import (
    BENCHMARKS,
    benchmark_of_dataset,
    benchmark_spec,
    canonical_dataset_id,
    dataset_id_for,
    metric_display_name,
    normalize_benchmark,
)

logger = logging.getLogger(__name__)

__all__ = [
    "RESULTS_END",
    "RESULTS_START",
    "UNLEARNING_TASK_NAME",
    "UNLEARNING_TASK_TYPE",
    "build_model_card_data",
    "canonical_dataset_id",
    "eval_results_from_records",
    "eval_results_from_summary",
    "latest_records",
    "merge_eval_results",
    "metric_display_name",
    "render_model_card",
    "render_results_markdown",
    "replace_results_section",
]

#: ``task.type`` of every ``model-index`` entry written by trl-unlearn. Unlearning benchmarks score a
#: causal LM's generations and likelihoods, so the Hub's ``text-generation`` task is used.
UNLEARNING_TASK_TYPE = "text-generation"
#: ``task.name`` of every ``model-index`` entry written by trl-unlearn; it also marks the entries that
#: the readable results table shows.
UNLEARNING_TASK_NAME = "Machine unlearning"
#: Markers around the results section of the card body, so that it can be regenerated in place.
RESULTS_START = "<!-- trl-unlearn:results:start -->"
RESULTS_END = "<!-- trl-unlearn:results:end -->"

TEMPLATE_PATH = "templates/model_card.md"

_TRL_BIBTEX = """@software{vonwerra2020trl,
  title   = {{TRL: Transformers Reinforcement Learning}},
  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan
             and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallou{\\'e}dec, Quentin},
  license = {Apache-2.0},
  url     = {https://github.com/huggingface/trl},
  year    = {2020}
}"""

_NON_HUB_DATASET_NAMES = {"json", "csv", "parquet", "text", "arrow", "generator", "pandas", "webdataset"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


# --------------------------------------------------------------------------------------------------
# Evaluation results
# --------------------------------------------------------------------------------------------------


def _dataset_pretty_name(benchmark: str, dataset_id: str, dataset_config: str | None) -> str:
    repo_name = dataset_id.split("/")[-1]
    # "MUSE-News" says more than "MUSE"; "wmdp" says less than "WMDP"
    more_specific = repo_name.upper().startswith(benchmark.upper()) and len(repo_name) > len(benchmark)
    base = repo_name if more_specific else benchmark
    return f"{base} ({dataset_config})" if dataset_config else base


def _metric_value(key: str, value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    try:
        number = float(value)  # numpy scalars, 0-d tensors
    except (TypeError, ValueError):
        logger.warning("Skipping metric %r: value %r is not a number.", key, value)
        return None
    if not math.isfinite(number):
        logger.warning("Skipping metric %r: value %r is not finite and cannot go in model-index.", key, value)
        return None
    return number


def eval_results_from_summary(
    benchmark: str,
    dataset_id: str | None,
    dataset_config: str | None,
    summary: Mapping[str, Any],
    *,
    dataset_split: str | None = None,
    dataset_revision: str | None = None,
) -> list[EvalResult]:
    """Turn one benchmark summary into ``model-index`` evaluation results.

    Parameters
    ----------
    benchmark : str
        ``"TOFU"``, ``"MUSE"``, ``"WMDP"`` or another benchmark name.
    dataset_id : str or None
        Hub dataset evaluated on (``"locuslab/TOFU"``); ``None`` infers it for TOFU. The metrics
        of the spec's ``metric_datasets`` (WMDP's ``wmdp_bio`` ... ``mmlu``) always carry their
        own dataset and config (``cais/wmdp`` config ``wmdp-bio``, ``cais/mmlu`` config ``all``).
    dataset_config : str or None
        Dataset configuration, e.g. the forget split ``"forget10"``.
    summary : mapping of str to float
        Flat summary as returned by ``trl_unlearn.evaluation.tofu.summarize`` /
        ``trl_unlearn.evaluation.muse.summarize`` (open-unlearning's ``*_SUMMARY.json`` keys).
        ``None`` and non-finite values are skipped.
    dataset_split : str, optional
        Dataset split, if it is worth recording.
    dataset_revision : str, optional
        Dataset revision (git sha) evaluated on.

    Returns
    -------
    list of huggingface_hub.EvalResult
        One result per metric, in the summary's order: ``task_type`` is :data:`UNLEARNING_TASK_TYPE`,
        ``metric_type`` the summary key and ``metric_name`` its readable name.

    Raises
    ------
    ValueError
        If the summary is empty or holds no numeric value.
    """
    if not isinstance(summary, Mapping):
        raise TypeError(f"`summary` must be a mapping of metric names to numbers, got {type(summary).__name__}.")
    if not summary:
        raise ValueError(f"The {benchmark} summary is empty: there are no results to record.")
    name = normalize_benchmark(benchmark)
    spec = benchmark_spec(name)
    own_datasets = spec.metric_datasets if spec is not None else {}
    if any(key not in own_datasets for key in summary):
        dataset_id = dataset_id_for(name, dataset_id)
    results = []
    for key, raw in summary.items():
        value = _metric_value(key, raw)
        if value is None:
            continue
        metric_dataset, metric_config = own_datasets.get(key, (dataset_id, dataset_config))
        results.append(
            EvalResult(
                task_type=UNLEARNING_TASK_TYPE,
                task_name=UNLEARNING_TASK_NAME,
                dataset_type=metric_dataset,
                dataset_name=_dataset_pretty_name(
                    metric_dataset.split("/")[-1].upper() if key in own_datasets else name, metric_dataset, metric_config
                ),
                dataset_config=metric_config,
                dataset_split=dataset_split,
                dataset_revision=dataset_revision,
                metric_type=str(key),
                metric_name=metric_display_name(str(key)),
                metric_value=value,
            )
        )
    if not results:
        raise ValueError(f"The {benchmark} summary holds no numeric value: {dict(summary)!r}.")
    return results


def latest_records(records: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """Keep the latest record per (benchmark, dataset, config), in order of first appearance.

    Parameters
    ----------
    records : iterable of dict
        Records as appended by the evaluation callback to ``trainer.eval_results``:
        ``{"benchmark", "dataset_id", "dataset_config", "summary"}`` (``"dataset_split"`` optional).

    Returns
    -------
    list of dict
    """
    latest: dict[tuple, Mapping[str, Any]] = {}
    for record in records or ():
        if not isinstance(record, Mapping) or "benchmark" not in record or "summary" not in record:
            raise ValueError(
                "Each evaluation record needs at least 'benchmark' and 'summary' keys "
                f"(plus 'dataset_id' and 'dataset_config'), got {record!r}."
            )
        key = (
            normalize_benchmark(record["benchmark"]),
            record.get("dataset_id"),
            record.get("dataset_config"),
            record.get("dataset_split"),
        )
        latest.pop(key, None)  # re-insert: a newer result moves to the end
        latest[key] = record
    return list(latest.values())


def eval_results_from_records(records: Iterable[Mapping[str, Any]] | None) -> list[EvalResult]:
    """``model-index`` results for the latest record of each benchmark / dataset / config.

    Parameters
    ----------
    records : iterable of dict
        See :func:`latest_records`.

    Returns
    -------
    list of huggingface_hub.EvalResult
    """
    return [
        result
        for record in latest_records(records)
        for result in eval_results_from_summary(
            record["benchmark"], record.get("dataset_id"), record.get("dataset_config"), record["summary"],
            dataset_split=record.get("dataset_split"), dataset_revision=record.get("dataset_revision"),
        )
    ]


def _evaluation_key(result: EvalResult) -> tuple:
    return result.task_type, result.dataset_type, result.dataset_config, result.dataset_split, result.dataset_revision


def merge_eval_results(existing: Sequence[EvalResult] | None, new: Sequence[EvalResult]) -> list[EvalResult]:
    """Replace the results of the evaluations in ``new`` and keep every other existing result.

    An evaluation is identified by task type, dataset id, config, split and revision: all the
    existing metrics of an evaluation that ``new`` reports are dropped (a re-evaluation replaces the
    previous numbers, including metrics it no longer reports), the rest is kept in order and the
    new results are appended.

    Parameters
    ----------
    existing : sequence of EvalResult or None
        Results already on the card (``card.data.eval_results``).
    new : sequence of EvalResult
        Results to add.

    Returns
    -------
    list of huggingface_hub.EvalResult
    """
    replaced = {_evaluation_key(result) for result in new}
    kept = [result for result in existing or () if _evaluation_key(result) not in replaced]
    return kept + list(new)


def _format_metric(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _cell(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_results_markdown(eval_results: Sequence[EvalResult] | None) -> str:
    """The readable results section of a card, between :data:`RESULTS_START` and :data:`RESULTS_END`.

    Only results written by trl-unlearn (``task_name == UNLEARNING_TASK_NAME``) are shown; each
    evaluation (dataset, config, split) gets its own table.

    Parameters
    ----------
    eval_results : sequence of EvalResult or None

    Returns
    -------
    str
        Markdown, markers included.
    """
    groups: dict[tuple, list[EvalResult]] = {}
    for result in eval_results or ():
        if result.task_name != UNLEARNING_TASK_NAME:
            continue
        groups.setdefault(_evaluation_key(result), []).append(result)
    lines = [RESULTS_START]
    if not groups:
        lines += [
            "No benchmark results were recorded for this model yet. Results of a later TOFU / MUSE evaluation "
            "can be added with `trl_unlearn.hub.push_results_to_hub`.",
        ]
    for results in groups.values():
        first = results[0]
        benchmark = benchmark_of_dataset(first.dataset_type)
        where = [f"[`{first.dataset_type}`](https://huggingface.co/datasets/{first.dataset_type})"]
        if first.dataset_config:
            where.append(f"config `{first.dataset_config}`")
        if first.dataset_split:
            where.append(f"split `{first.dataset_split}`")
        lines += [
            "",
            f"### {first.dataset_name}",
            "",
            f"{benchmark + ' benchmark' if benchmark else 'Evaluated'} on " + ", ".join(where) + ".",
            "",
            "| Metric | Key | Value |",
            "|---|---|---:|",
        ]
        for result in results:
            name = result.metric_name or metric_display_name(result.metric_type)
            lines.append(f"| {_cell(name)} | `{_cell(result.metric_type)}` | {_format_metric(result.metric_value)} |")
    lines.append(RESULTS_END)
    return "\n".join(lines)


def replace_results_section(text: str, eval_results: Sequence[EvalResult] | None) -> str:
    """Regenerate the results section of a card body, or append one if the body has none.

    Parameters
    ----------
    text : str
        Card body (``card.text``), without the YAML block.
    eval_results : sequence of EvalResult or None
        All the card's results (after merging).

    Returns
    -------
    str
        The new body.
    """
    section = render_results_markdown(eval_results)
    start, end = text.find(RESULTS_START), text.find(RESULTS_END)
    if start != -1 and end > start:
        return text[:start] + section + text[end + len(RESULTS_END) :]
    body = text.rstrip("\n")
    return f"{body}\n\n## Unlearning evaluation\n\n{section}\n"


# --------------------------------------------------------------------------------------------------
# Card rendering
# --------------------------------------------------------------------------------------------------


def _is_hub_id(name: Any) -> bool:
    return (
        isinstance(name, str)
        and bool(_HUB_ID.match(name))
        and name.split("/")[-1].lower() not in _NON_HUB_DATASET_NAMES
        and not os.path.exists(name)
    )


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(item for item in items if item is not None))


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def build_model_card_data(
    *,
    model_name: str,
    base_model: str | None = None,
    tags: Iterable[str] | None = None,
    datasets: Iterable[str] | None = None,
    eval_results: Sequence[EvalResult] | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    library_name: str = "transformers",
    pipeline_tag: str = "text-generation",
) -> ModelCardData:
    """The YAML metadata of an unlearned model's card.

    Parameters
    ----------
    model_name : str
        Model name, also the ``model-index`` name.
    base_model : str, optional
        Hub id of the model before unlearning.
    tags : iterable of str, optional
        Tags, de-duplicated in order.
    datasets : iterable of str, optional
        Hub ids of the datasets used (local names are dropped).
    eval_results : sequence of EvalResult, optional
        ``model-index`` results.
    license, language : optional
        Passed through to the metadata.
    library_name : str
        ``"transformers"``, or ``"peft"`` for adapters.
    pipeline_tag : str
        Hub pipeline tag.

    Returns
    -------
    huggingface_hub.ModelCardData
    """
    dataset_ids = [name for name in _unique(canonical_dataset_id(d) for d in datasets or ()) if _is_hub_id(name)]
    return ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=dataset_ids or None,
        tags=_unique(tags or ()) or None,
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        license=license,
        language=language,
        eval_results=list(eval_results) if eval_results else None,
    )


def _format_hyperparameter(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v.value if isinstance(v, enum.Enum) else v) for v in value) or "[]"
    else:
        text = str(value)
    return f"`{_cell(text)}`"


def _rows(values: Mapping[str, Any] | Sequence[tuple[str, Any]] | None, formatter) -> list[dict[str, str]]:
    items = values.items() if isinstance(values, Mapping) else (values or ())
    return [{"name": _cell(name), "value": formatter(value)} for name, value in items]


def _describe_dataset(info: Mapping[str, Any] | None) -> str:
    if not info:
        return "not used."
    name, config, split, rows = (info.get(k) for k in ("name", "config", "split", "num_rows"))
    name = canonical_dataset_id(name)
    if _is_hub_id(name):
        parts = [f"[{name}](https://huggingface.co/datasets/{name})"]
    elif isinstance(name, str) and name.lower() in _NON_HUB_DATASET_NAMES:
        parts = [f"local {name.lower()} files"]
    elif name:
        parts = [f"`{_cell(name)}`"]
    else:
        parts = ["a dataset built in memory"]
    if config and config != "default":
        parts.append(f"config `{_cell(config)}`")
    if split:
        parts.append(f"split `{_cell(split)}`")
    text = ", ".join(parts)
    if isinstance(rows, int):
        text += f" ({rows:,} examples)"
    return text + "."


_FRAMEWORKS = (("trl-unlearn", "trl-unlearn"), ("TRL", "trl"), ("Transformers", "transformers"), ("PyTorch", "torch"),
               ("Datasets", "datasets"), ("Tokenizers", "tokenizers"), ("PEFT", "peft"), ("Evaluate", "evaluate"))


def _framework_versions() -> list[dict[str, str]]:
    rows = []
    for label, package in _FRAMEWORKS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            rows.append({"name": label, "value": metadata.version(package)})
    return rows


def _citations(paper: Mapping[str, Any] | None, method_name: str, benchmarks: Iterable[str]) -> list[dict]:
    citations = []
    if paper and paper.get("citation"):
        citations.append({"label": f"Cite {method_name} as", "bibtex": str(paper["citation"]).strip()})
    for name in benchmarks:
        citations.append({"label": f"Cite the {name} benchmark as", "bibtex": BENCHMARKS[name].citation})
    citations.append({"label": "Cite TRL as", "bibtex": _TRL_BIBTEX})
    return citations


def _template_path() -> Path:
    return Path(str(resources.files("trl_unlearn").joinpath(TEMPLATE_PATH)))


def render_model_card(
    *,
    model_name: str,
    method_name: str,
    base_model: str | None = None,
    hub_model_id: str | None = None,
    paper: Mapping[str, Any] | None = None,
    method_hyperparameters: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    dataset_info: Mapping[str, Any] | None = None,
    eval_results: Sequence[EvalResult] | None = None,
    tags: Iterable[str] | None = None,
    datasets: Iterable[str] | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    is_peft: bool = False,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """Render the card of an unlearned model from trl-unlearn's template.

    Parameters
    ----------
    model_name : str
        Name of the unlearned model (title, ``model-index`` name).
    method_name : str
        Display name of the method, e.g. ``"NPO"``.
    base_model : str, optional
        Hub id of the model before unlearning.
    hub_model_id : str, optional
        Repository id used in the usage snippet; defaults to ``model_name``.
    paper : mapping, optional
        ``{"title", "id" (arXiv id), "citation" (BibTeX)}`` of the method's paper.
    method_hyperparameters : mapping, optional
        Hyper-parameters of the objective (β, loss weights, retain loss, DiPO's preference settings).
    training : mapping or sequence of (name, value), optional
        Training settings shown as they are (see :func:`training_settings`).
    dataset_info : mapping, optional
        ``{"forget": {"name", "config", "split", "num_rows"}, "retain": {...} or None}``.
    eval_results : sequence of EvalResult, optional
        Results for ``model-index`` and the results table (see :func:`eval_results_from_records`).
    tags : iterable of str, optional
        Card tags.
    datasets : iterable of str, optional
        Extra dataset ids for the metadata; the forget/retain datasets are added automatically.
    license, language : optional
        Metadata.
    is_peft : bool
        The repository holds a PEFT adapter (changes ``library_name`` and the usage snippet).
    template_path : path, optional
        Another Jinja template; defaults to ``trl_unlearn/templates/model_card.md``.

    Returns
    -------
    huggingface_hub.ModelCard
    """
    dataset_info = dataset_info or {}
    forget, retain = dataset_info.get("forget"), dataset_info.get("retain")
    data_names = [canonical_dataset_id(info.get("name")) for info in (forget, retain) if info]
    card_data = build_model_card_data(
        model_name=model_name,
        base_model=base_model,
        tags=tags,
        datasets=[*data_names, *_as_list(datasets)],
        eval_results=eval_results,
        license=license,
        language=language,
        library_name="peft" if is_peft else "transformers",
    )
    benchmark_names = _unique(
        [benchmark_of_dataset(r.dataset_type) for r in eval_results or ()]
        + [benchmark_of_dataset(name) for name in data_names if isinstance(name, str)]
    )
    paper = paper or {}
    base_model_link = f"[{base_model}](https://huggingface.co/{base_model})" if base_model else None
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path or _template_path()),
        model_name=model_name,
        base_model=base_model,
        base_model_link=base_model_link,
        hub_model_id=hub_model_id or model_name,
        method_name=method_name,
        paper_title=paper.get("title") or method_name,
        paper_id=paper.get("id"),
        is_peft=is_peft,
        results_section=render_results_markdown(eval_results),
        data_items=[
            {"role": "Forget set", "description": _describe_dataset(forget)},
            {"role": "Retain set", "description": _describe_dataset(retain)},
        ],
        method_rows=_rows(method_hyperparameters, _format_hyperparameter),
        training_rows=_rows(training, _cell),
        framework_versions=_framework_versions(),
        citations=_citations(paper, method_name, benchmark_names),
    )
