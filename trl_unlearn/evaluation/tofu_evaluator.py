"""Run the TOFU benchmark on a model: :class:`TOFUEvaluator`.

The evaluator turns the TOFU splits into tokenised examples (:mod:`.prompts`), asks the engine
(:mod:`.engine`) for everything at once, each distinct (prompt, answer) scored in **one** forward
pass and each distinct prompt generated once, and assembles per-example values in
open-unlearning's ``TOFU_EVAL.json`` layout with the pure functions of :mod:`.metrics`. The
aggregates come from :func:`trl_unlearn.evaluation.tofu.summarize`, the same code that reads OU's
logs, so logs of either tool mix.

Which split feeds which metric (as in OU's ``configs/eval/tofu_metrics``):

=====================================  ========================================================
``forget_Q_A_Prob`` / ``_ROUGE``       ``<forget>_perturbed``: question -> ``answer``
``forget_Q_A_PARA_Prob``               same rows -> ``paraphrased_answer``
``forget_Q_A_PERT_Prob``               same rows -> each of ``perturbed_answer``
``forget_truth_ratio``                 PERT vs PARA (``closer_to_1_better``)
``retain_*``                           ``retain_perturbed`` likewise (``true_better``)
``ra_*`` / ``wf_*``                    ``real_authors_perturbed`` / ``world_facts_perturbed``:
                                       ``answer`` vs ``perturbed_answer`` (Prob, normalised
                                       Prob, ROUGE, Truth ratio against the answer)
``exact_memorization``,                ``<forget>_perturbed`` answers (labels minus the EOS)
``extraction_strength``
``mia_*``                              forget answers vs holdout answers
=====================================  ========================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


from . import metrics as M
from . import tofu_summary as tofu
from .base import BenchmarkEvaluator, index_values, stopwatch
from .data import as_rows, check_forget_split, holdout_split_for, load_tofu_config, require_columns
from .engine import SequenceScores
from .options import EvalOptions
from .prompts import EncodedExample, PromptFormat, decode_ground_truth, decode_prompt, encode_example
from .spec import TOFU

logger = logging.getLogger(__name__)

_SPLITS = ("forget", "retain", "ra", "wf")  # ordered: every rank must build the same work list
_SPLIT_CONFIGS = {"retain": "retain_perturbed", "ra": "real_authors_perturbed", "wf": "world_facts_perturbed"}
_MEMORIZATION = set(TOFU.groups["memorization"])
_MIA = {m for m in TOFU.metrics if m.startswith("mia_")}
# Metrics a retain reference model must provide (forget quality and privleak anchors).
_REFERENCE_METRICS = ("forget_truth_ratio", "mia_min_k")


@dataclass(frozen=True)
class QAItem:
    """One TOFU row, tokenised: the answer, the paraphrased answer and the perturbed answers."""

    answer: EncodedExample
    paraphrase: EncodedExample | None
    perturbed: tuple[EncodedExample, ...]


def encode_rows(tokenizer, rows: Sequence[Mapping[str, Any]], fmt: PromptFormat, paraphrase: bool, perturbed: bool) -> list[QAItem]:
    """Tokenise TOFU rows into :class:`QAItem` (``question`` with each answer column)."""
    items = []
    for row in rows:
        q = row["question"]
        perturbed_answers = row["perturbed_answer"] if perturbed else ()
        if isinstance(perturbed_answers, str):
            perturbed_answers = [perturbed_answers]
        items.append(
            QAItem(
                answer=encode_example(tokenizer, q, row["answer"], fmt),
                paraphrase=encode_example(tokenizer, q, row["paraphrased_answer"], fmt) if paraphrase else None,
                perturbed=tuple(encode_example(tokenizer, q, a, fmt) for a in perturbed_answers),
            )
        )
    return items


def _prob_entry(scores: Sequence[SequenceScores]) -> dict[str, Any]:
    per = [{"prob": s.prob, "avg_loss": s.avg_loss} for s in scores]
    return {"agg_value": M.mean_score([p["prob"] for p in per]), "value_by_index": index_values(per)}


def _multi_prob_entry(scores: Sequence[Sequence[SequenceScores]]) -> dict[str, Any]:
    per = [{"prob": [s.prob for s in row], "avg_loss": [s.avg_loss for s in row]} for row in scores]
    return {"agg_value": M.mean_score([p["prob"] for p in per]), "value_by_index": index_values(per)}


class TOFUEvaluator(BenchmarkEvaluator):
    """The TOFU benchmark (Maini et al., 2024) as open-unlearning evaluates it.

    Parameters
    ----------
    forget_split : {"forget01", "forget05", "forget10"}
        The forget split; its ``_perturbed`` config supplies the forget questions.
    data_dir : str or Path, optional
        Folder with the TOFU JSON-lines files (``forget10_perturbed.json``, ...). Without it the
        data is loaded from the Hub (``locuslab/TOFU``).
    holdout : "auto", None, str, datasets.Dataset, list of dict
        Holdout questions for the MIA metrics (``question``/``answer`` columns). ``"auto"``
        loads ``holdoutXX`` from the Hub, or from ``data_dir`` when the file is there (it is not
        in the local copy: MIA metrics are then skipped); ``None`` skips them; a string names a
        TOFU config.
    prompt_format : PromptFormat, optional
        Prompt style; default OU's chat setup (system prompt "You are a helpful assistant.",
        ``date_string="10 Apr 2025"``). Use :meth:`PromptFormat.tags` for tag-style models.
    metrics : iterable of str, optional
        OU metric names or groups (``"forget"``, ``"retain"``, ``"ra"``, ``"wf"``,
        ``"memorization"``, ``"mia"``) to compute; their inputs are added automatically.
        Default: everything OU's TOFU eval reports that the given data allows.
    reference : path, dict, model or (model, tokenizer), optional
        The retain model, for ``forget_quality`` and ``privleak``: an OU ``TOFU_EVAL.json`` (or
        its folder), a results dict of ours, or the retain model itself (evaluated once, cached).
        ``retain_reference=`` is a deprecated alias.
    reference_model : PreTrainedModel, optional
        Model for ``mia_reference`` (loss difference); the metric is computed only with it.
    max_new_tokens : int
        Greedy generation budget for ROUGE (OU: 200).
    options : EvalOptions, optional
        How the evaluation runs (batch sizes, ``limit``, ``distributed``, chunk sizes,
        ``attention_mask_mode``, ``mia_k``, ``gradnorm_p``, ``progress``, ...); every field is
        also accepted as a keyword argument (``batch_size=32``). TOFU defaults: ``batch_size``
        16, ``generation_batch_size`` ``max(batch_size, 64)``, ``share_prompts`` on,
        ``position_chunk_size`` ``None``.

    Examples
    --------
    >>> evaluator = TOFUEvaluator("forget10", data_dir="../shared/data/tofu")  # doctest: +SKIP
    >>> results = evaluator.evaluate(model, tokenizer)                        # doctest: +SKIP
    >>> evaluator.summarize(results)["model_utility"]                         # doctest: +SKIP
    """

    spec = TOFU
    dataset_id = TOFU.dataset_ids[0]
    summarize_log = staticmethod(tofu.summarize)
    aggregate_values = staticmethod(tofu.aggregate_values)
    option_defaults = {
        "batch_size": 16,
        "generation_batch_size": lambda o: max(o.batch_size, 64),
        "share_prompts": True,
    }
    positive_arguments = ("max_new_tokens",)

    def __init__(
        self,
        forget_split: str = "forget10",
        data_dir: str | os.PathLike | None = None,
        *,
        holdout: Any = "auto",
        prompt_format: PromptFormat | None = None,
        metrics: Iterable[str] | None = None,
        reference: Any = None,
        reference_model: Any = None,
        max_new_tokens: int = 200,
        options: EvalOptions | None = None,
        **kwargs: Any,
    ):
        self.forget_split = check_forget_split(forget_split)
        self.data_dir = data_dir
        self.holdout = holdout
        self.prompt_format = prompt_format or PromptFormat()
        self.max_new_tokens = max_new_tokens
        self._init_options(metrics, reference, reference_model, options, kwargs)
        self._rows: dict[str, list[dict[str, Any]] | None] | None = None
        self._encoded: dict[tuple[int, str], list[QAItem]] = {}
        self._tokenizers: dict[int, Any] = {}

    # ------------------------------------------------------------------ data
    def _load_split(self, config: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        rows = as_rows(load_tofu_config(config, self.data_dir), config)
        require_columns(rows, columns, f"TOFU config {config!r}")
        return rows[: self.limit] if self.limit is not None else rows

    def _load_holdout(self) -> list[dict[str, Any]] | None:
        spec = self.holdout
        if spec is None:
            return None
        if spec == "auto":
            config = holdout_split_for(self.forget_split)
            if self.data_dir is not None and not any(
                os.path.isfile(os.path.join(self.data_dir, config + suffix)) for suffix in (".json", ".jsonl")
            ):
                logger.info("no %s file in %s: MIA metrics skipped (pass holdout= to compute them)", config, self.data_dir)
                return None
            spec = config
        rows = as_rows(load_tofu_config(spec, self.data_dir), spec) if isinstance(spec, str) else as_rows(spec, "holdout")
        require_columns(rows, ("question", "answer"), "holdout data")
        return rows[: self.limit] if self.limit is not None else rows

    def rows(self) -> dict[str, list[dict[str, Any]] | None]:
        """The raw rows of every split (loaded once, then cached)."""
        if self._rows is None:
            qa_pp = ("question", "answer", "paraphrased_answer", "perturbed_answer")
            qa_p = ("question", "answer", "perturbed_answer")
            self._rows = {
                "forget": self._load_split(f"{self.forget_split}_perturbed", qa_pp),
                "retain": self._load_split(_SPLIT_CONFIGS["retain"], qa_pp),
                "ra": self._load_split(_SPLIT_CONFIGS["ra"], qa_p),
                "wf": self._load_split(_SPLIT_CONFIGS["wf"], qa_p),
                "holdout": self._load_holdout(),
            }
        return self._rows

    def _rows_for(self, split: str) -> list[dict[str, Any]] | None:
        if self._rows is not None:
            return self._rows[split]
        return self.rows()[split]

    def _items(self, tokenizer, split: str) -> list[QAItem]:
        self._tokenizers[id(tokenizer)] = tokenizer  # keeps the id valid while cached
        key = (id(tokenizer), split)
        if key not in self._encoded:
            rows = self._rows_for(split)
            with_para = split in ("forget", "retain")
            with_pert = split != "holdout"
            self._encoded[key] = encode_rows(tokenizer, rows, self.prompt_format, with_para, with_pert)
        return self._encoded[key]

    # --------------------------------------------------------------- metrics
    def metrics_to_compute(self, holdout_available: bool | None = None) -> set[str]:
        """The metric keys :meth:`evaluate` will produce with the current data and models."""
        if holdout_available is None:
            holdout_available = self._rows_for("holdout") is not None
        if self.requested_metrics is None:
            wanted = set(TOFU.metrics)
            if not holdout_available:
                wanted -= _MIA | {"privleak"}
            if self.reference_model is None:
                wanted.discard("mia_reference")
            return wanted
        wanted = set(self.requested_metrics)
        mia = wanted & (_MIA | {"privleak"})
        if mia and not holdout_available:
            raise ValueError(
                f"{sorted(mia)} need holdout data, which is not available; pass "
                "`holdout=` (a TOFU holdout config name, a dataset or rows) or drop the MIA metrics"
            )
        if "mia_reference" in wanted and self.reference_model is None:
            raise ValueError("mia_reference needs `reference_model=`; pass one or drop the metric")
        return wanted

    # -------------------------------------------------------------- reference and evaluation
    def _check_reference_fits(self, reference: Mapping[str, Any]) -> None:
        """Forget quality compares row by row: the reference must cover as many forget rows."""
        if "forget_quality" not in self.metrics_to_compute():
            return
        from .results import has_metric

        key = next((k for k in ("forget_Q_A_PARA_Prob", "forget_truth_ratio") if has_metric(reference, k)), None)
        if key is None:
            raise ValueError(
                "retain_reference has no per-example forget truth ratios (forget_Q_A_PARA_Prob/forget_Q_A_PERT_Prob "
                "or forget_truth_ratio); pass the TOFU_EVAL.json of the retain model evaluated on the same forget split"
            )
        n_reference, n_rows = len(reference[key]["value_by_index"]), len(self._rows_for("forget"))
        if n_reference != n_rows:
            limited = f" (limit={self.limit})" if self.limit is not None else ""
            raise ValueError(
                f"retain_reference covers {n_reference} forget questions but this evaluation has {n_rows} "
                f"({self.forget_split}{limited}); forget quality compares them one by one. Pass the TOFU_EVAL.json "
                f"of the retain model evaluated on {self.forget_split}"
                + (", or evaluate without `limit` / `--eval_limit`." if limited else ".")
            )

    def _evaluate_reference_model(self, model, tokenizer) -> dict[str, Any]:
        wanted = TOFU.expand_metrics(_REFERENCE_METRICS if self._rows_for("holdout") is not None else ("forget_truth_ratio",))
        return self._evaluate(model, tokenizer, wanted, explicit=True)

    def _evaluate(self, model, tokenizer, wanted: set[str], explicit: bool) -> dict[str, Any]:
        timings: dict[str, float] = {}
        with stopwatch(timings, "encode"):
            items = {s: self._items(tokenizer, s) for s in _SPLITS if any(m.startswith(s + "_") for m in wanted)}
            if wanted & _MEMORIZATION:
                items["forget"] = self._items(tokenizer, "forget")
            mia_wanted = set(self._available_mia(model, wanted & _MIA, explicit))
            if mia_wanted:
                items["forget"] = self._items(tokenizer, "forget")
                items["holdout"] = self._items(tokenizer, "holdout")

        # ---- scoring: every distinct example once ----------------------------------------
        # One engine call per split (timed separately, so a run reports where its time went);
        # an example already scored by an earlier split is reused, which is why the splits that
        # need Min-k%++ vocabulary statistics go first.
        minkpp = "mia_min_k_plus_plus" in mia_wanted
        lookup: dict[Any, SequenceScores] = {}
        for split in sorted(items, key=lambda s: s not in ("forget", "holdout")):
            vocab_stats = minkpp and split in ("forget", "holdout")
            to_score: dict[Any, EncodedExample] = {}
            for item in items[split]:
                candidates = [item.answer]
                if item.paraphrase is not None and f"{split}_Q_A_PARA_Prob" in wanted:
                    candidates.append(item.paraphrase)
                if f"{split}_Q_A_PERT_Prob" in wanted:
                    candidates.extend(item.perturbed)
                for e in candidates:
                    if e.key not in lookup or (vocab_stats and e is item.answer and lookup[e.key].vocab_mean is None):
                        to_score[e.key] = e
            with stopwatch(timings, f"score/{split}"):
                examples = list(to_score.values())
                lookup.update(zip(to_score, self._score(model, tokenizer, examples, [vocab_stats] * len(examples))))

        # ---- generation for ROUGE --------------------------------------------------------
        gen_by_prompt: dict[tuple[int, ...], Any] = {}
        for split in ("forget", "retain", "ra", "wf"):
            if f"{split}_Q_A_ROUGE" in wanted:
                prompts = [item.answer.prompt_ids for item in items[split] if item.answer.prompt_ids not in gen_by_prompt]
                with stopwatch(timings, f"generate/{split}"):
                    gens = self._generate(model, tokenizer, prompts, max_new_tokens=self.max_new_tokens)
                    gen_by_prompt.update(zip(prompts, gens))

        results: dict[str, Any] = {}
        with stopwatch(timings, "aggregate"):
            for split in ("forget", "retain", "ra", "wf"):
                if split in items:
                    self._split_metrics(results, split, items[split], lookup, gen_by_prompt, tokenizer, wanted)
            if wanted & _MEMORIZATION:
                self._memorization(results, [lookup[i.answer.key] for i in items["forget"]], wanted)
        if mia_wanted:
            sides = {side: [i.answer for i in items[side]] for side in ("forget", "holdout")}
            self._mia(results, model, tokenizer, sides, lookup, mia_wanted, timings)
        self.last_timings = timings
        return dict(sorted(results.items()))

    # ------------------------------------------------------------ engine calls


    # --------------------------------------------------------- per-metric views
    def _split_metrics(self, results, split, items, lookup, gen_by_prompt, tokenizer, wanted) -> None:
        answers = [lookup[i.answer.key] for i in items]
        if f"{split}_Q_A_Prob" in wanted:
            results[f"{split}_Q_A_Prob"] = _prob_entry(answers)
        if f"{split}_Q_A_PARA_Prob" in wanted:
            results[f"{split}_Q_A_PARA_Prob"] = _prob_entry([lookup[i.paraphrase.key] for i in items])
        if f"{split}_Q_A_PERT_Prob" in wanted:
            results[f"{split}_Q_A_PERT_Prob"] = _multi_prob_entry([[lookup[p.key] for p in i.perturbed] for i in items])
        if f"{split}_Q_A_ROUGE" in wanted:
            per = []
            for item in items:
                gen = gen_by_prompt[item.answer.prompt_ids]
                truth = decode_ground_truth(tokenizer, item.answer)
                per.append(
                    {
                        **M.rouge_scores(truth, gen.text),
                        "input": decode_prompt(tokenizer, item.answer),
                        "ground_truth": truth,
                        "generation": gen.text,
                    }
                )
            results[f"{split}_Q_A_ROUGE"] = {
                "agg_value": M.mean_score([p["rougeL_recall"] for p in per]),
                "value_by_index": index_values(per),
            }
        if split in ("ra", "wf") and f"{split}_Q_A_Prob_normalised" in wanted:
            per = [
                {"prob": M.normalised_probability(a.prob, [lookup[p.key].prob for p in item.perturbed])}
                for a, item in zip(answers, items)
            ]
            results[f"{split}_Q_A_Prob_normalised"] = {
                "agg_value": M.mean_score([p["prob"] for p in per]),
                "value_by_index": index_values(per),
            }
        tr_key = "forget_truth_ratio" if split == "forget" else f"{split}_Truth_Ratio"
        if tr_key in wanted:
            correct = [lookup[(i.paraphrase or i.answer).key].avg_loss for i in items]
            wrong = [[lookup[p.key].avg_loss for p in i.perturbed] for i in items]
            ratios = M.truth_ratios(correct, wrong)
            aggregator = "closer_to_1_better" if split == "forget" else "true_better"
            results[tr_key] = {
                "agg_value": M.aggregate_truth_ratio(ratios, aggregator),
                "value_by_index": index_values([{"score": float(r)} for r in ratios]),
            }
