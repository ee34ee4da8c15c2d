"""Run the MUSE benchmark on a model: :class:`MUSEEvaluator`.

The MUSE counterpart of :class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator`, built
from the same parts: examples are tokenised as open-unlearning (OU) does, the engine
(:mod:`.engine`) scores every distinct sequence once and generates from every distinct prompt
once, the per-example values come from the pure functions of :mod:`.metrics`, and the results
are a ``MUSE_EVAL.json``-layout dict that :func:`trl_unlearn.evaluation.muse.summarize` (the code
that reads OU's logs) aggregates.

Which split feeds which metric (as in OU's ``configs/eval/muse_metrics``):

=================================  ==============================================================
``forget_verbmem_ROUGE``           ``verbmem/forget``: greedy continuation of ``prompt`` (128 new
                                   tokens), ROUGE-L F1 against ``gt``
``forget_knowmem_ROUGE``           ``knowmem/forget_qa`` with the ``forget_qa_icl`` pairs as
                                   in-context examples (32 new tokens, stop strings), ROUGE-L F1
``retain_knowmem_ROUGE``           ``knowmem/retain_qa`` with ``retain_qa_icl``, likewise
``exact_memorization``,            ``verbmem/forget`` teacher-forced: ``prompt + " " + gt``, the
``extraction_strength``            ``gt`` tokens labelled, the last labelled position dropped
``mia_*``                          ``privleak/forget`` (members) vs ``privleak/holdout``: each text
                                   tokenised with the tokenizer's special tokens (BOS), truncated
                                   to ``max_length`` tokens after them, every token after the
                                   first labelled
``privleak``                       ``mia_min_k`` AUC against the retrain model's
=================================  ==============================================================

Tokenisation follows OU's ``CompletionDataset``: ``full = tokenizer(prefix + sep + text)`` and
``prefix_ids = tokenizer(prefix)`` (special tokens added, e.g. Llama-2's BOS), ``full`` cut to
``len(prefix_ids) + max_length`` tokens and the first ``max(len(prefix_ids), 1)`` positions
unlabelled (no EOS is appended). For raw text the prefix is empty, so with a BOS-adding tokenizer
the sequence is ``BOS + text[:max_length]`` with every text token labelled. Per-token metrics
(Min-k%, Min-k%++, exact memorisation, extraction strength, gradnorm) drop the last labelled
position, as OU's ``tokenwise_logprobs`` does for the longest row of a right-padded batch (OU keeps
it for shorter rows, which makes its values depend on the batch; here they never do). Long texts
are scored by :func:`~trl_unlearn.evaluation.engine.score_examples` with ``position_chunk_size``, which never holds a
``[batch, length, vocab]`` logits tensor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..ops import IGNORE_INDEX
from . import metrics as M
from . import muse_summary as muse
from .base import BenchmarkEvaluator, index_values, stopwatch
from .muse_data import MUSE_COLUMNS, check_corpus, load_muse_rows, muse_dataset_id
from .options import EvalOptions
from .prompts import EncodedExample, PromptFormat, decode_ground_truth, decode_prompt, encode_example
from .spec import MUSE

logger = logging.getLogger(__name__)

__all__ = [
    "MUSEEvaluator",
    "KNOWMEM_STOP_STRINGS",
    "encode_completion",
    "encode_knowmem",
    "completion_ground_truth",
]

_MEMORIZATION = MUSE.groups["memorization"]
_MIA = MUSE.groups["mia"]

#: Where OU cuts MUSE knowledge-memorisation generations.
KNOWMEM_STOP_STRINGS = ("\n\n", "\nQuestion", "Question:")

# (subset, split) of every data source the evaluator reads, by a short name.
_SOURCES = {
    "verbmem": ("verbmem", "forget"),
    "forget_qa": ("knowmem", "forget_qa"),
    "forget_qa_icl": ("knowmem", "forget_qa_icl"),
    "retain_qa": ("knowmem", "retain_qa"),
    "retain_qa_icl": ("knowmem", "retain_qa_icl"),
    "privleak_forget": ("privleak", "forget"),
    "privleak_holdout": ("privleak", "holdout"),
}
_KNOWMEM = {"forget_knowmem_ROUGE": ("forget_qa", "forget_qa_icl"), "retain_knowmem_ROUGE": ("retain_qa", "retain_qa_icl")}


# --------------------------------------------------------------------------------------------
# tokenisation (OU's CompletionDataset / QADataset conventions)
# --------------------------------------------------------------------------------------------
def encode_completion(
    tokenizer, prefix: str, text: str, max_length: int = 2048, insert_space: bool = False
) -> EncodedExample:
    """Tokenise a (prefix, text) pair the way OU's ``CompletionDataset`` does.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerBase
        Special tokens are added (Llama-2: BOS), as OU does.
    prefix : str
        Unscored context (verbmem ``prompt``; ``""`` for raw text).
    text : str
        The scored continuation (verbmem ``gt``; a privleak / raw ``text``).
    max_length : int
        Tokens kept after the prefix tokens.
    insert_space : bool
        Join prefix and text with a space (OU: verbmem yes, raw text no).

    Returns
    -------
    EncodedExample
        ``prompt_ids`` = the prefix tokens; ``input_ids`` = ``tokenizer(prefix + sep + text)`` cut
        to ``len(prompt_ids) + max_length``; ``labels`` = ``input_ids`` with the first
        ``max(len(prompt_ids), 1)`` positions masked (the first token is never scored).
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    full = list(tokenizer(prefix + (" " if insert_space else "") + text, add_special_tokens=True)["input_ids"])
    prefix_ids = list(tokenizer(prefix, add_special_tokens=True)["input_ids"])
    full = full[: len(prefix_ids) + max_length]
    masked = min(max(len(prefix_ids), 1), len(full))
    labels = [IGNORE_INDEX] * masked + full[masked:]
    return EncodedExample(prompt_ids=tuple(prefix_ids), input_ids=tuple(full), labels=tuple(labels))


def encode_knowmem(
    tokenizer, row: Mapping[str, str], icl_rows: Sequence[Mapping[str, str]], fmt: PromptFormat
) -> EncodedExample:
    """A knowmem question with its in-context pairs, via :func:`~.prompts.encode_example`.

    With OU's base-model format (:meth:`PromptFormat.question_answer`) the prompt reads
    ``"Question: {q}\\nAnswer: {a}\\n\\n"`` per in-context pair, then ``"Question: {q}\\nAnswer: "``.
    """
    questions = [r["question"] for r in icl_rows] + [row["question"]]
    answers = [r["answer"] for r in icl_rows] + [row["answer"]]
    return encode_example(tokenizer, questions, answers, fmt)


def completion_ground_truth(tokenizer, example: EncodedExample) -> str:
    """ROUGE reference of a completion as OU derives it: the labelled tokens decoded, minus the
    decoded prompt (a no-op unless the prompt text recurs), stripped."""
    prompt = tokenizer.decode(list(example.prompt_ids), skip_special_tokens=True, clean_up_tokenization_spaces=True)
    target = tokenizer.decode(
        [t for t in example.labels if t != IGNORE_INDEX], skip_special_tokens=True, clean_up_tokenization_spaces=True
    )
    return target.replace(prompt, "").strip() if prompt else target.strip()


# --------------------------------------------------------------------------------------------
# evaluator
# --------------------------------------------------------------------------------------------
class MUSEEvaluator(BenchmarkEvaluator):
    """The MUSE benchmark (Shi et al., 2024) as open-unlearning evaluates it.

    Parameters
    ----------
    corpus : {"news", "books"}
        MUSE-News (BBC articles) or MUSE-Books (Harry Potter).
    data_dir : str or Path, optional
        Local copy of the corpus, ``<data_dir>/<subset>/<split>.json`` (layout in
        :mod:`trl_unlearn.evaluation.muse_data`). Without it the data is loaded from the Hub.
    revision : str, optional
        Hub revision of the dataset (older MUSE-Books revisions name the retain splits
        ``retain2_qa`` / ``retain2``; both namings are handled).
    prompt_format : PromptFormat, optional
        Knowmem prompt style; default OU's base-model format
        :meth:`PromptFormat.question_answer` (``"Question: ...\\nAnswer: "``, max length 512).
    metrics : iterable of str, optional
        OU metric names or groups (``"verbmem"``, ``"knowmem"``, ``"rouge"``, ``"memorization"``,
        ``"mia"``); their inputs are added automatically. Default: everything OU's MUSE eval
        reports (``mia_reference`` only with ``reference_model``).
    reference : path, dict, model or (model, tokenizer), optional
        The retrain model (trained on the retain data only) for ``privleak``: an OU
        ``MUSE_EVAL.json`` (or its folder), a results dict of ours, or the model itself
        (evaluated once on ``mia_min_k``, cached). Without it ``privleak`` uses an AUC of 0.5.
        ``retrain_reference=`` is a deprecated alias.
    reference_model : PreTrainedModel, optional
        Model for ``mia_reference`` (OU: the retrain model); scored with the evaluated
        model's tokenizer.
    verbmem_max_new_tokens, knowmem_max_new_tokens : int
        Generation budgets (OU: 128 and 32).
    knowmem_stop_strings : sequence of str
        Where knowmem generations stop and are cut (OU: ``"\\n\\n"``, ``"\\nQuestion"``,
        ``"Question:"``).
    max_length : int
        Tokens kept after the prefix (privleak texts, verbmem ``gt``; OU: 2048).
    options : EvalOptions, optional
        How the evaluation runs (batch sizes, ``limit``, ``distributed``, chunk sizes,
        ``attention_mask_mode``, ``mia_k``, ``gradnorm_p``, ``progress``, ...); every field is
        also accepted as a keyword argument (``batch_size=4``). MUSE defaults: ``batch_size`` 8,
        ``generation_batch_size`` ``batch_size``, ``position_chunk_size`` 512 (2048-token texts),
        ``share_prompts`` off. ``limit`` keeps the in-context pairs.

    Examples
    --------
    >>> evaluator = MUSEEvaluator("news", reference="MUSE-News_retrain/MUSE_EVAL.json")  # doctest: +SKIP
    >>> results = evaluator.evaluate(model, tokenizer)                                          # doctest: +SKIP
    >>> evaluator.summarize(results)["privleak"]                                                # doctest: +SKIP
    """

    spec = MUSE
    summarize_log = staticmethod(muse.summarize)
    aggregate_values = staticmethod(muse.aggregate_values)
    option_defaults = {
        "batch_size": 8,
        "generation_batch_size": lambda o: o.batch_size,
        "position_chunk_size": 512,
        "share_prompts": False,
    }
    positive_arguments = ("verbmem_max_new_tokens", "knowmem_max_new_tokens", "max_length")

    def __init__(
        self,
        corpus: str = "news",
        data_dir: str | os.PathLike | None = None,
        *,
        revision: str | None = None,
        prompt_format: PromptFormat | None = None,
        metrics: Iterable[str] | None = None,
        reference: Any = None,
        reference_model: Any = None,
        verbmem_max_new_tokens: int = 128,
        knowmem_max_new_tokens: int = 32,
        knowmem_stop_strings: Sequence[str] = KNOWMEM_STOP_STRINGS,
        max_length: int = 2048,
        options: EvalOptions | None = None,
        **kwargs: Any,
    ):
        self.corpus = check_corpus(corpus)
        self.data_dir = data_dir
        self.revision = revision
        self.prompt_format = prompt_format or PromptFormat.question_answer()
        self.verbmem_max_new_tokens = verbmem_max_new_tokens
        self.knowmem_max_new_tokens = knowmem_max_new_tokens
        self.knowmem_stop_strings = tuple(knowmem_stop_strings)
        self.max_length = max_length
        self._init_options(metrics, reference, reference_model, options, kwargs)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._encoded: dict[tuple[int, str], list[EncodedExample]] = {}
        self._tokenizers: dict[int, Any] = {}

    @property
    def dataset_id(self) -> str:
        """Hub dataset of the corpus (``muse-bench/MUSE-News`` or ``muse-bench/MUSE-Books``)."""
        return muse_dataset_id(self.corpus)

    # ------------------------------------------------------------------ data
    def rows(self, source: str) -> list[dict[str, Any]]:
        """Raw rows of one data source (``"verbmem"``, ``"forget_qa"``, ``"forget_qa_icl"``,
        ``"retain_qa"``, ``"retain_qa_icl"``, ``"privleak_forget"``, ``"privleak_holdout"``),
        loaded once; ``limit`` applies except to in-context pairs."""
        if source not in _SOURCES:
            raise ValueError(f"unknown MUSE data source {source!r}; use one of {list(_SOURCES)}")
        if source not in self._rows:
            subset, split = _SOURCES[source]
            limit = None if source.endswith("_icl") else self.limit
            self._rows[source] = load_muse_rows(
                self.corpus, subset, split, self.data_dir, self.revision, limit=limit, columns=MUSE_COLUMNS[subset]
            )
        return self._rows[source]

    def examples(self, tokenizer, source: str) -> list[EncodedExample]:
        """Tokenised examples of a data source (cached per tokenizer)."""
        self._tokenizers[id(tokenizer)] = tokenizer  # keeps the id valid while cached
        key = (id(tokenizer), source)
        if key not in self._encoded:
            rows = self.rows(source)
            if source == "verbmem":
                encoded = [encode_completion(tokenizer, r["prompt"], r["gt"], self.max_length, insert_space=True) for r in rows]
            elif source.startswith("privleak"):
                encoded = [encode_completion(tokenizer, "", r["text"], self.max_length) for r in rows]
            else:
                icl = self.rows(source + "_icl")
                encoded = [encode_knowmem(tokenizer, r, icl, self.prompt_format) for r in rows]
            self._encoded[key] = encoded
        return self._encoded[key]

    # --------------------------------------------------------------- metrics
    def metrics_to_compute(self) -> set[str]:
        """The metric keys :meth:`evaluate` will produce with the current options."""
        if self.requested_metrics is None:
            wanted = set(MUSE.metrics)
            if self.reference_model is None:
                wanted.discard("mia_reference")
            return wanted
        wanted = set(self.requested_metrics)
        if "mia_reference" in wanted and self.reference_model is None:
            raise ValueError("mia_reference needs `reference_model=` (OU: the retrain model); pass one or drop the metric")
        return wanted

    # -------------------------------------------------------------- evaluate
    def _evaluate_reference_model(self, model, tokenizer) -> dict[str, Any]:
        return self._evaluate(model, tokenizer, {"mia_min_k"}, explicit=True)

    # ------------------------------------------------------------ internals
    def _evaluate(self, model, tokenizer, wanted: set[str], explicit: bool) -> dict[str, Any]:
        timings: dict[str, float] = {}
        with stopwatch(timings, "encode"):
            mia_wanted = self._available_mia(model, [m for m in _MIA if m in wanted], explicit)
            memorization = [m for m in _MEMORIZATION if m in wanted]
            verbmem = self.examples(tokenizer, "verbmem") if memorization or "forget_verbmem_ROUGE" in wanted else []
            privleak = (
                {side: self.examples(tokenizer, f"privleak_{side}") for side in ("forget", "holdout")} if mia_wanted else {}
            )
            knowmem = {
                m: self.examples(tokenizer, _KNOWMEM[m][0])
                for m in ("forget_knowmem_ROUGE", "retain_knowmem_ROUGE")
                if m in wanted
            }

        # ---- one scoring pass over every distinct sequence (ordered: same work on every rank)
        to_score: list[EncodedExample] = []
        vocab: list[bool] = []
        if memorization:
            to_score += verbmem
            vocab += [False] * len(verbmem)
        minkpp = "mia_min_k_plus_plus" in mia_wanted
        for side in ("forget", "holdout"):
            for example in privleak.get(side, ()):
                to_score.append(example)
                vocab.append(minkpp)
        with stopwatch(timings, "score"):
            scored = self._score(model, tokenizer, to_score, vocab)
        lookup = {e.key: s for e, s in zip(to_score, scored)}

        # ---- generation ------------------------------------------------------------------------
        results: dict[str, Any] = {}
        with stopwatch(timings, "generate"):
            if "forget_verbmem_ROUGE" in wanted:
                gens = self._generate(
                    model, tokenizer, [e.prompt_ids for e in verbmem], max_new_tokens=self.verbmem_max_new_tokens
                )
                truths = [completion_ground_truth(tokenizer, e) for e in verbmem]
                results["forget_verbmem_ROUGE"] = _rouge_entry(tokenizer, verbmem, truths, gens)
            for name, examples in knowmem.items():
                gens = self._generate(
                    model,
                    tokenizer,
                    [e.prompt_ids for e in examples],
                    max_new_tokens=self.knowmem_max_new_tokens,
                    stop_strings=self.knowmem_stop_strings,
                )
                truths = [decode_ground_truth(tokenizer, e) for e in examples]
                results[name] = _rouge_entry(tokenizer, examples, truths, gens)

        if memorization:
            self._memorization(results, [lookup[e.key] for e in verbmem], memorization)
        if mia_wanted:
            self._mia(results, model, tokenizer, privleak, lookup, mia_wanted, timings)
        self.last_timings = timings
        return dict(sorted(results.items()))



def _rouge_entry(tokenizer, examples: Sequence[EncodedExample], truths: Sequence[str], generations) -> dict[str, Any]:
    per = []
    for example, truth, gen in zip(examples, truths, generations):
        per.append(
            {
                **M.rouge_scores(truth, gen.text),
                "input": decode_prompt(tokenizer, example),
                "ground_truth": truth,
                "generation": gen.text,
            }
        )
    return {"agg_value": M.mean_score([p["rougeL_f1"] for p in per]), "value_by_index": index_values(per)}
