"""Run WMDP (and MMLU, and any lm-eval task) on a model: :class:`WMDPEvaluator`.

Multiple-choice scoring is lm-evaluation-harness's, not ours: each subset is lm-eval's own task
(``wmdp_bio``, ``wmdp_chem``, ``wmdp_cyber``; ``mmlu`` and its 57 ``mmlu_<subject>`` tasks), with
its prompt (``"The following are multiple choice questions (with answers) about biology.\\n\\n"``,
the question, the lettered choices, ``"Answer:"``), its choices (`` A`` ... `` D``, scored by
log-likelihood) and its metric (``acc``: 1 when the correct letter is the most likely). The
in-memory model is wrapped in lm-eval's ``HFLM`` as it is (eval mode, restored afterwards).

With ``data_dir`` the same task definitions read local files: only their data source changes
(``dataset_path: json`` and the file; the MMLU subjects are the rows' ``subject``). lm-eval builds
the tasks from its registered YAML with these overrides (a group of task references with
overrides, its documented way of adapting a registered task), so prompts and metrics stay
lm-eval's.

lm-eval evaluates an in-memory model in one process: under ``torch.distributed`` rank 0 runs it
and broadcasts the results (``distributed="shard"`` and ``"main"`` both do that); every rank must
call :meth:`WMDPEvaluator.evaluate`. A sharded model (FSDP, DeepSpeed ZeRO-3) is evaluated by every
rank in lock-step instead, since each of its forward passes needs all of them.

This is the only module of trl-unlearn that imports lm-eval (the ``wmdp`` extra).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

try:
    import datasets
    import lm_eval.api.model
    import lm_eval.api.task
    import lm_eval.models.huggingface
    from lm_eval.evaluator import evaluate as harness_evaluate
    from lm_eval.tasks import TaskManager
except ImportError as error:  # pragma: no cover - exercised by simulating the missing extra
    raise ImportError(
        "WMDPEvaluator runs lm-evaluation-harness, which is not installed. Install the extra: "
        'pip install "trl-unlearn[wmdp]"'
    ) from error

from ..checks import check_vocabulary
from . import metrics as M
from . import wmdp_summary
from .base import BenchmarkEvaluator, index_values, stopwatch
from .batching import collective_mode, distributed_map
from .options import EvalOptions
from .spec import WMDP, WMDP_SUBSETS

logger = logging.getLogger(__name__)

__all__ = ["DATA_FILES", "WMDPEvaluator", "task_manager"]

#: Local file of each evaluated data source in ``data_dir`` (JSON lines, the Hub columns).
DATA_FILES = {**{s: f"wmdp-{s}.jsonl" for s in WMDP_SUBSETS}, "mmlu": "mmlu.jsonl"}
#: The options a harness-backed evaluation uses; the others are TOFU / MUSE settings.
_USED_OPTIONS = ("batch_size", "limit", "distributed", "progress")
_LAYOUT = (
    "one JSON object per line with the Hub columns: 'question' (str), 'choices' (4 str), 'answer' (int 0-3), "
    "and 'subject' for MMLU (an MMLU subject such as 'anatomy')"
)


@functools.lru_cache(maxsize=1)
def task_manager() -> TaskManager:
    """lm-eval's index of its tasks (built once per process: it reads every task YAML)."""
    return TaskManager()


class WMDPEvaluator(BenchmarkEvaluator):
    """WMDP (hazardous knowledge) and MMLU (general knowledge) through lm-evaluation-harness.

    Parameters
    ----------
    subsets : str or iterable of str
        WMDP subsets among ``"bio"``, ``"chem"``, ``"cyber"`` (default all three); ``()`` for none.
    mmlu : bool
        Also evaluate MMLU (all 57 subjects, or the subjects of ``mmlu.jsonl``).
    tasks : iterable of str
        Other lm-eval tasks or groups by name (``"arc_easy"``, ``"hellaswag"``), from their own
        data sources; summarised as ``<task>_<metric>`` (``arc_easy_acc``) with lm-eval's aggregates.
    data_dir : str or Path, optional
        Local copy of the data: ``wmdp-bio.jsonl``, ``wmdp-chem.jsonl``, ``wmdp-cyber.jsonl`` and
        ``mmlu.jsonl`` (those evaluated), one JSON object per line with the Hub columns
        (``question``, ``choices``, ``answer``; ``subject`` for MMLU). Without it lm-eval reads
        ``cais/wmdp`` and ``cais/mmlu`` from the Hub.
    options : EvalOptions, optional
        ``batch_size`` (default 8; the numbers do not depend on it), ``limit`` (lm-eval's: the
        first ``limit`` questions of each lm-eval task, i.e. of each WMDP subset and of each MMLU
        subject), ``distributed`` (see the module) and ``progress``; also accepted as keyword
        arguments. The TOFU / MUSE options (chunk sizes, MIA settings, ...) are refused.

    Examples
    --------
    >>> evaluator = WMDPEvaluator(subsets=("bio", "cyber"), mmlu=True)          # doctest: +SKIP
    >>> evaluator.summarize(evaluator.evaluate(model, tokenizer))                # doctest: +SKIP
    {'mmlu': 0.58, 'wmdp_bio': 0.64, 'wmdp_cyber': 0.44}
    """

    spec = WMDP
    summarize_log = staticmethod(wmdp_summary.summarize)
    aggregate_values = staticmethod(wmdp_summary.aggregate_values)
    option_defaults = {"batch_size": 8}

    def __init__(
        self,
        subsets: str | Iterable[str] = WMDP_SUBSETS,
        mmlu: bool = True,
        tasks: Iterable[str] = (),
        data_dir: str | os.PathLike | None = None,
        *,
        options: EvalOptions | None = None,
        **kwargs: Any,
    ):
        subsets = [subsets] if isinstance(subsets, str) else list(subsets)
        unknown = [s for s in subsets if s not in WMDP_SUBSETS]
        if unknown:
            raise ValueError(f"unknown WMDP subset(s) {unknown}; use {list(WMDP_SUBSETS)}.")
        self.subsets = tuple(dict.fromkeys(subsets))
        self.mmlu = bool(mmlu)
        self.tasks = tuple(dict.fromkeys([tasks] if isinstance(tasks, str) else tasks))
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._init_options(None, None, None, options, kwargs)
        self._check_options()
        if not (self.subsets or self.mmlu or self.tasks):
            raise ValueError("nothing to evaluate: pass WMDP `subsets`, `mmlu=True` or lm-eval `tasks`.")
        self._check_task_names()
        self._subjects = self._check_local_files() if self.data_dir is not None else None
        self._task_datasets: dict[str, tuple[str | None, str | None]] = {}

    @property
    def dataset_id(self) -> str:
        """The WMDP Hub dataset (MMLU's is ``cais/mmlu``; see :meth:`evaluation_records`)."""
        return WMDP.dataset_ids[0]

    # ------------------------------------------------------------------ checks
    def _check_options(self) -> None:
        defaults = EvalOptions()
        ignored = [
            f.name
            for f in dataclasses.fields(EvalOptions)
            if f.name not in _USED_OPTIONS and getattr(self.options, f.name) != getattr(defaults, f.name)
        ]
        if ignored:
            raise ValueError(
                f"WMDPEvaluator does not use the option(s) {ignored} (lm-eval scores the questions); "
                f"its options are {list(_USED_OPTIONS)}."
            )

    def _check_task_names(self) -> None:
        index = task_manager().task_index
        unknown = [name for name in self.tasks if name not in index]
        if unknown:
            raise ValueError(
                f"lm-eval knows no task or group named {unknown}; list them with `lm-eval ls tasks` "
                "(names are lm-eval's, e.g. 'arc_easy', 'hellaswag')."
            )
        own = {f"wmdp_{s}" for s in self.subsets} | ({"mmlu"} if self.mmlu else set()) | {"wmdp"}
        clash = [name for name in self.tasks if name in own]
        if clash:
            raise ValueError(
                f"{clash} are WMDPEvaluator's own metrics: select them with `subsets=` / `mmlu=True`, not `tasks=`."
            )

    def _check_local_files(self) -> list[str] | None:
        """Validate the local files; return the MMLU subjects in order of first appearance."""
        index = task_manager().task_index
        subjects: list[str] | None = None
        for source in (*self.subsets, *(("mmlu",) if self.mmlu else ())):
            rows = _read_rows(self.data_dir / DATA_FILES[source], source)
            if source == "mmlu":
                subjects = list(dict.fromkeys(row["subject"] for row in rows))
                unknown = [s for s in subjects if _mmlu_task(s) not in index]
                if unknown:
                    raise ValueError(
                        f"{self.data_dir / DATA_FILES['mmlu']}: unknown MMLU subject(s) {unknown[:5]}; the subjects are "
                        "cais/mmlu's config names (e.g. 'anatomy', 'college_biology'), those of lm-eval's mmlu_<subject>."
                    )
        return subjects

    def _check_inputs(self, model, tokenizer, reference: Any = None) -> None:
        if reference is not None or self.reference is not None:
            raise ValueError("WMDP has no reference model: its accuracies are absolute; drop `reference`.")
        check_vocabulary(model, tokenizer, what="evaluated model")

    # ----------------------------------------------------------------- metrics
    def metrics_to_compute(self) -> set[str]:
        """The WMDP metric keys, plus the names of the other lm-eval tasks (their summary keys are
        ``<task>_<metric>``, known once lm-eval has run)."""
        return {f"wmdp_{s}" for s in self.subsets} | ({"mmlu"} if self.mmlu else set()) | set(self.tasks)

    def evaluation_records(self, summary: Mapping[str, float]) -> list[dict[str, Any]]:
        """The model-card records of a summary, one per Hub dataset and config.

        WMDP's metrics go to ``cais/wmdp`` (configs ``wmdp-bio`` ...), MMLU's to ``cais/mmlu``
        (config ``all``), another task's to the dataset lm-eval read (known after
        :meth:`evaluate`). A metric of no known dataset is left off the card, with a warning.
        """
        records: dict[tuple, dict[str, Any]] = {}
        for key, value in summary.items():
            if key in WMDP.metric_datasets:
                benchmark, (dataset_id, config) = WMDP.name, WMDP.metric_datasets[key]
            else:
                task = next((t for t in self._task_datasets if key.startswith(f"{t}_")), None)
                dataset_id, config = self._task_datasets.get(task, (None, None))
                if dataset_id is None:
                    logger.warning("%s is left off the model card: its lm-eval task has no single Hub dataset.", key)
                    continue
                benchmark = task
            record = records.setdefault(
                (benchmark, dataset_id, config),
                {"benchmark": benchmark, "dataset_id": dataset_id, "dataset_config": config, "summary": {}},
            )
            record["summary"][key] = value
        return list(records.values())

    # --------------------------------------------------------------- evaluate
    def _evaluate(self, model, tokenizer, wanted: set[str], explicit: bool) -> dict[str, Any]:
        timings: dict[str, float] = {}
        with stopwatch(timings, "harness"):
            # lm-eval cannot split an in-memory model's work across our processes: rank 0 runs it (every
            # rank, in lock-step, for a sharded model whose forward passes need them all)
            mode = collective_mode("main", model)
            results, task_datasets = distributed_map(lambda _: [self._run(model, tokenizer)], [None], mode)[0]
        self._task_datasets = task_datasets
        self.last_timings = timings
        return results

    def _evaluate_reference_model(self, model, tokenizer) -> dict[str, Any]:
        raise ValueError("WMDP has no reference model.")

    def _harness_specs(self) -> dict[str, str | dict[str, Any]]:
        """What lm-eval loads for each of our keys: a task / group name, or the registered tasks
        pointed at the local files."""
        specs: dict[str, str | dict[str, Any]] = {}
        for subset in self.subsets:
            name = f"wmdp_{subset}"
            specs[name] = name if self.data_dir is None else _local_group(name, [{"task": name, **self._json(subset)}])
        if self.mmlu:
            if self.data_dir is None:
                specs["mmlu"] = "mmlu"
            else:
                members = [
                    {"task": _mmlu_task(s), **self._json("mmlu"), "fewshot_split": None,
                     "process_docs": functools.partial(_subject_rows, subject=s)}
                    for s in self._subjects
                ]  # fmt: skip
                specs["mmlu"] = _local_group("mmlu", members)
        specs.update({name: name for name in self.tasks})
        return specs

    def _json(self, source: str) -> dict[str, Any]:
        path = str((self.data_dir / DATA_FILES[source]).resolve())
        return {"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": {"test": path}}}

    def _run(self, model, tokenizer) -> tuple[dict[str, Any], dict[str, tuple[str | None, str | None]]]:
        """lm-eval on this process: the results dict and the Hub dataset of each other task."""
        if tokenizer.pad_token is None:
            tokenizer = copy.deepcopy(tokenizer)  # lm-eval gives the tokenizer it gets a pad token
        with _quiet_harness(self.progress):
            with _log_level("lm_eval", logging.ERROR):  # its warnings about an in-memory model
                harness_model = lm_eval.models.huggingface.HFLM(
                    pretrained=model,
                    tokenizer=tokenizer,
                    backend="causal",
                    batch_size=self.batch_size,
                    max_batch_size=self.batch_size,
                )
            loaded = {key: task_manager().load(spec) for key, spec in self._harness_specs().items()}
            merged = {"tasks": {}, "groups": {}, "group_map": {}}
            for part in loaded.values():
                for field in merged:
                    merged[field].update(part.get(field, {}))
            out = harness_evaluate(harness_model, merged, limit=self.limit, bootstrap_iters=0, log_samples=True)
        results: dict[str, Any] = {}
        task_datasets: dict[str, tuple[str | None, str | None]] = {}
        for key, part in loaded.items():
            if key in self.tasks:
                results.update(_aggregates(key, part, out["results"]))
                task_datasets[key] = _hub_dataset(part["tasks"].values())
            else:
                per = [_question(task, s) for task in part["tasks"] for s in sorted(out["samples"][task], key=_doc_id)]
                results[key] = {"agg_value": M.mean_score(p["acc"] for p in per), "value_by_index": index_values(per)}
        return dict(sorted(results.items())), task_datasets


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _mmlu_task(subject: str) -> str:
    return f"mmlu_{subject}"


def _local_group(name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    # registered tasks referenced from a group take the reference's keys as overrides
    return {"group": f"trl_unlearn_local_{name}", "task": members}


def _subject_rows(docs, subject: str):
    """The rows of one MMLU subject (``process_docs`` of a local ``mmlu_<subject>`` task)."""
    return docs.filter(lambda row: row["subject"] == subject)


def _doc_id(sample: Mapping[str, Any]) -> int:
    return sample["doc_id"]


def _question(task: str, sample: Mapping[str, Any]) -> dict[str, Any]:
    """One question's entry: lm-eval's ``acc``, the choices' log-likelihoods and the argmax."""
    lls = [float(r[0]) for r in sample["filtered_resps"]]
    return {
        "acc": float(sample["acc"]),
        "prediction": max(range(len(lls)), key=lls.__getitem__),
        "target": int(sample["target"]),
        "loglikelihoods": lls,
        "task": task,
        "doc_id": int(sample["doc_id"]),
    }


def _aggregates(name: str, part: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """``<task>_<metric>[_<filter>]`` -> ``{"agg_value": ...}`` of a task (or of each task of a
    group / tag that lm-eval does not aggregate)."""
    out: dict[str, Any] = {}
    sources = [name] if _metric_items(reported.get(name, {})) else list(part["tasks"])
    for source in sources:
        for metric, filter_name, value in _metric_items(reported.get(source, {})):
            label = f"{source}_{metric}" + ("" if filter_name == "none" else f"_{filter_name}")
            out[label] = {"agg_value": float(value)}
    return out


def _metric_items(entry: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    items = []
    for key, value in entry.items():
        metric, sep, filter_name = str(key).partition(",")
        if sep and not metric.endswith("_stderr") and isinstance(value, (int, float)) and not isinstance(value, bool):
            items.append((metric, filter_name, value))
    return items


def _hub_dataset(tasks: Iterable[Any]) -> tuple[str | None, str | None]:
    """The (dataset, config) all ``tasks`` read, or ``(None, None)`` when they read several."""
    found = {(t.config.dataset_path, t.config.dataset_name) for t in tasks}
    return found.pop() if len(found) == 1 else (None, None)


def _read_rows(path: Path, source: str) -> list[dict[str, Any]]:
    """Read and check one local JSON-lines file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no {path.name} in {path.parent}: evaluating {source!r} from `data_dir` needs {path} ({_LAYOUT}); "
            "drop `data_dir` to read the Hub data, or drop the subset."
        )
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {number}: not valid JSON ({err.msg}); expected {_LAYOUT}.") from None
            problem = _row_problem(row, need_subject=source == "mmlu")
            if problem:
                raise ValueError(f"{path}, line {number}: {problem}; expected {_LAYOUT}.")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no question; expected {_LAYOUT}.")
    return rows


def _row_problem(row: Any, need_subject: bool) -> str | None:
    if not isinstance(row, dict):
        return "not a JSON object"
    missing = [c for c in ("question", "choices", "answer", *(("subject",) if need_subject else ())) if c not in row]
    if missing:
        return f"missing column(s) {missing}"
    choices, answer = row["choices"], row["answer"]
    if not (isinstance(choices, list) and len(choices) == 4 and all(isinstance(c, str) for c in choices)):
        return f"'choices' must be a list of 4 strings (lm-eval's prompt letters them A-D), got {choices!r}"
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < 4:
        return f"'answer' must be the index (0-3) of the correct choice, got {answer!r}"
    return None


@contextlib.contextmanager
def _log_level(name: str, level: int) -> Iterator[None]:
    log = logging.getLogger(name)
    saved = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(saved)


def _silent_tqdm(tqdm_class, *args, **kwargs):
    return tqdm_class(*args, **{**kwargs, "disable": True})


@contextlib.contextmanager
def _quiet_harness(progress: bool) -> Iterator[None]:
    """With ``progress=False``, no progress bar from lm-eval or ``datasets`` for the block (lm-eval
    offers no switch for its bars: its modules' ``tqdm`` is swapped for a disabled one)."""
    if progress:
        yield
        return
    modules = (lm_eval.api.task, lm_eval.api.model, lm_eval.models.huggingface)
    saved = {module: module.tqdm for module in modules}
    bars_were_on = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    for module in modules:
        module.tqdm = functools.partial(_silent_tqdm, saved[module])
    try:
        yield
    finally:
        for module, original in saved.items():
            module.tqdm = original
        if bars_were_on:
            datasets.utils.logging.enable_progress_bar()
