"""What the benchmark evaluators share: :class:`BenchmarkEvaluator`.

:class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator` and
:class:`~trl_unlearn.evaluation.muse_evaluator.MUSEEvaluator` differ in their data and in which
metric reads which split; the plumbing around the engine is the same and lives here:

- deduplicated, length-sorted, rank-sharded scoring (:meth:`BenchmarkEvaluator._score`) and
  generation (:meth:`BenchmarkEvaluator._generate`);
- the memorisation metrics and the membership-inference attacks, computed from one set of scores
  (:meth:`BenchmarkEvaluator._memorization`, :meth:`BenchmarkEvaluator._mia`);
- retain/retrain references given as a log, a results dict or a model
  (:meth:`BenchmarkEvaluator._resolve_reference`), summaries and saving in OU's file layout.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..checks import check_positive, check_vocabulary
from ..ops import key_masked_token_id
from . import metrics as M
from .engine import SequenceScores, gradient_norms, score_examples
from .generation import generate_greedy
from .prompts import EncodedExample, decode_target

logger = logging.getLogger(__name__)

__all__ = ["BenchmarkEvaluator", "index_values", "is_model_like", "mia_entry", "resolve_metrics", "eval_mode", "stopwatch"]


def index_values(values: Sequence[Any]) -> dict[str, Any]:
    """OU's ``value_by_index``: row index (as a string) -> value."""
    return {str(i): v for i, v in enumerate(values)}


def mia_entry(forget: Sequence[float], holdout: Sequence[float]) -> dict[str, Any]:
    """One attack's entry in OU's layout: per-example scores of both sides and the AUC."""
    auc = M.mia_auc(forget, holdout)
    return {
        "forget": {"agg_value": float(np.mean(forget)), "value_by_index": index_values([{"score": s} for s in forget])},
        "holdout": {"agg_value": float(np.mean(holdout)), "value_by_index": index_values([{"score": s} for s in holdout])},
        "auc": auc,
        "agg_value": auc,
    }


def min_k_plus_plus(scores: SequenceScores, k: float) -> float:
    """Min-k%++ of one sequence from its scores (labels minus the EOS, OU's variance floor)."""
    s = scores.without_last()
    sigma = np.sqrt(np.maximum(s.vocab_var.astype(np.float64), M.MIN_K_PLUS_PLUS_MIN_VARIANCE))
    return M.min_k_plus_plus_score(s.log_probs, s.vocab_mean, sigma, k=k)


def is_model_like(obj: Any) -> bool:
    """A model, or a ``(model, tokenizer)`` pair (as opposed to a path or a results dict)."""
    if isinstance(obj, tuple) and len(obj) == 2:
        obj = obj[0]
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


@contextlib.contextmanager
def eval_mode(model) -> Iterator[None]:
    """Put ``model`` in eval mode for the block, then restore its training flag."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def stopwatch(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's wall-clock seconds to ``timings[key]`` (evaluators' ``last_timings``)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def resolve_metrics(
    requested: Iterable[str],
    *,
    known: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    dependencies: Mapping[str, Sequence[str]],
    benchmark: str,
) -> set[str]:
    """Resolve metric and group names and add the metrics each one is computed from.

    A single string is one name (``"forget"``, not its letters).

    Raises
    ------
    ValueError
        On an unknown name (the message lists the valid ones), or no name at all.
    """
    requested = [requested] if isinstance(requested, str) else list(requested)
    if not requested:
        raise ValueError(
            f"`metrics` is empty, so the {benchmark} evaluation would compute nothing: pass metric or group names "
            f"(e.g. {sorted(groups)[:3]}), or `metrics=None` for everything."
        )
    out: set[str] = set()
    stack: list[str] = []
    for name in requested:
        if name in groups:
            stack.extend(groups[name])
        elif name in known:
            stack.append(name)
        else:
            raise ValueError(f"unknown {benchmark} metric {name!r}; use metric names {list(known)} or groups {sorted(groups)}")
    while stack:
        name = stack.pop()
        if name not in out:
            out.add(name)
            stack.extend(dependencies.get(name, ()))
    return out


class BenchmarkEvaluator:
    """Base of the benchmark evaluators (not used on its own).

    Subclasses set the class attributes, the instance attributes listed below, and implement
    :meth:`_scorer` and :meth:`_evaluate_reference_model`.

    Instance attributes read here: ``batch_size``, ``generation_batch_size``, ``distributed``,
    ``vocab_chunk_size``, ``mia_k``, ``gradnorm_p``, ``attention_mask_mode``, ``reference_model`` (MIA reference attack), the reference spec
    named by ``reference_name``, ``_reference_results`` (cache) and ``last_timings``.
    """

    #: Benchmark name (model cards, :class:`UnlearningEvalCallback`).
    benchmark: ClassVar[str]
    #: Module of this package with ``summarize``, ``save_results`` and ``save_summary``.
    results_module: ClassVar[str]
    #: Name of the constructor argument holding the forget-quality / privleak reference.
    reference_name: ClassVar[str]
    #: OU's per-example results file name.
    results_file: ClassVar[str]
    #: Constructor arguments that must be positive integers.
    positive_arguments: ClassVar[tuple[str, ...]] = ("batch_size", "generation_batch_size", "vocab_chunk_size")

    # ---------------------------------------------------------------- argument checks
    def _check_arguments(self) -> None:
        """Reject constructor arguments that would compute something else than asked (end of ``__init__``)."""
        for name in self.positive_arguments:
            check_positive(name, getattr(self, name))
        check_positive("limit", self.limit, allow_none=True)
        if not (isinstance(self.mia_k, (int, float)) and 0 < self.mia_k <= 1):
            raise ValueError(f"`mia_k` is the fraction of tokens of the Min-k% attacks and must be in (0, 1], got {self.mia_k!r}.")
        check_positive("gradnorm_p", self.gradnorm_p, integer=False)

    def _check_inputs(self, model, tokenizer, reference: Any = None) -> None:
        """Before any scoring: the models match the tokenizer, and a reference log loads and fits."""
        check_vocabulary(model, tokenizer, what="evaluated model")
        if self.reference_model is not None:
            check_vocabulary(model, other=self.reference_model, other_what="`reference_model`")
        spec = reference if reference is not None else self._reference_spec
        if is_model_like(spec):
            ref_model, ref_tokenizer = spec if isinstance(spec, tuple) else (spec, tokenizer)
            check_vocabulary(ref_model, ref_tokenizer, what=f"{self.reference_name} model")
        else:
            self.check_reference(reference)

    def check_reference(self, reference: Any = None) -> None:
        """Load the reference log (``reference``, else the constructor's) and check that it fits
        this evaluation, so that a wrong one fails before the scoring, not after it.

        Raises
        ------
        FileNotFoundError, ValueError
            No log at the path; a log of the other benchmark; a log that cannot be compared.
        """
        spec = reference if reference is not None else self._reference_spec
        if spec is None or is_model_like(spec):
            return
        self._check_reference_fits(self._resolve_reference(None, reference))

    def _check_reference_fits(self, reference: Mapping[str, Any]) -> None:
        """Benchmark-specific checks of a loaded reference log (none by default)."""

    # ---------------------------------------------------------------- engine calls
    @staticmethod
    def _pad_id(tokenizer) -> int:
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def _masked_id(self, tokenizer) -> int | None:
        """The token id hidden as an attention key everywhere (``attention_mask_mode``)."""
        return key_masked_token_id(tokenizer, self.attention_mask_mode)

    def _score(self, model, tokenizer, examples: Sequence[EncodedExample], vocab: Sequence[bool]) -> list[SequenceScores]:
        """Scores of ``examples`` in order (see :func:`~trl_unlearn.evaluation.engine.score_examples`)."""
        return score_examples(
            model,
            examples,
            batch_size=self.batch_size,
            pad_token_id=self._pad_id(tokenizer),
            vocab_stats=list(vocab),
            vocab_chunk_size=self.vocab_chunk_size,
            position_chunk_size=self.position_chunk_size,
            share_prompts=self.share_prompts,
            masked_token_id=self._masked_id(tokenizer),
            distributed=self.distributed,
            progress=self.progress,
        )

    def _generate(self, model, tokenizer, prompts, *, max_new_tokens: int, stop_strings: Sequence[str] = ()):
        """Greedy generations for ``prompts`` in order (see :func:`~trl_unlearn.evaluation.generation.generate_greedy`)."""
        return generate_greedy(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            stop_strings=stop_strings,
            batch_size=self.generation_batch_size,
            compact=self.compact_generation,
            masked_token_id=self._masked_id(tokenizer),
            distributed=self.distributed,
            progress=self.progress,
        )

    # ------------------------------------------------------------ shared metrics
    @staticmethod
    def _memorization(results: dict[str, Any], scores: Sequence[SequenceScores], wanted: Iterable[str]) -> None:
        """Exact memorisation and extraction strength from the answers' scores (labels minus
        the EOS, as OU), added to ``results`` in place."""
        trimmed = [s.without_last() for s in scores]
        for name, fn in (("exact_memorization", M.exact_memorization), ("extraction_strength", M.extraction_strength)):
            if name in wanted:
                per = [{"score": fn(s.predictions, s.targets)} for s in trimmed]
                results[name] = {"agg_value": M.mean_score([p["score"] for p in per]), "value_by_index": index_values(per)}

    @staticmethod
    def _available_mia(model, mia_wanted: Iterable[str], explicit: bool) -> list[str]:
        """``mia_wanted`` without gradnorm when the model has no trainable parameter and the
        metrics were not asked for by name (then the engine's error explains the fix)."""
        mia = list(mia_wanted)
        if "mia_gradnorm" in mia and not explicit and not any(p.requires_grad for p in model.parameters()):
            logger.warning("mia_gradnorm skipped: the model has no parameter with requires_grad=True")
            mia.remove("mia_gradnorm")
        return mia

    def _mia(
        self,
        results: dict[str, Any],
        model,
        tokenizer,
        sides: Mapping[str, Sequence[EncodedExample]],
        lookup: Mapping[Any, SequenceScores],
        wanted: Iterable[str],
        timings: dict[str, float],
    ) -> None:
        """The membership-inference attacks on ``sides["forget"]`` vs ``sides["holdout"]``,
        added to ``results`` in place; loss, zlib and Min-k read ``lookup``, the reference
        attack scores with ``self.reference_model``, gradnorm runs one backward per example."""
        wanted = set(wanted)
        scores = {side: [lookup[e.key] for e in examples] for side, examples in sides.items()}
        per_attack: dict[str, dict[str, list[float]]] = {}
        if "mia_loss" in wanted:
            per_attack["mia_loss"] = {side: [M.loss_score(s.avg_loss) for s in ss] for side, ss in scores.items()}
        if "mia_zlib" in wanted:
            per_attack["mia_zlib"] = {
                side: [M.zlib_score(s.avg_loss, decode_target(tokenizer, e)) for s, e in zip(scores[side], examples)]
                for side, examples in sides.items()
            }
        if "mia_min_k" in wanted:
            per_attack["mia_min_k"] = {
                side: [M.min_k_score(s.without_last().log_probs, k=self.mia_k) for s in ss] for side, ss in scores.items()
            }
        if "mia_min_k_plus_plus" in wanted:
            per_attack["mia_min_k_plus_plus"] = {
                side: [min_k_plus_plus(s, self.mia_k) for s in ss] for side, ss in scores.items()
            }
        all_examples = [e for side in ("forget", "holdout") for e in sides[side]]
        if "mia_reference" in wanted:
            with stopwatch(timings, "reference"):
                with eval_mode(self.reference_model):
                    ref_scores = self._score(self.reference_model, tokenizer, all_examples, [False] * len(all_examples))
                ref = {e.key: s for e, s in zip(all_examples, ref_scores)}
                per_attack["mia_reference"] = {
                    side: [M.reference_score(s.avg_loss, ref[e.key].avg_loss) for s, e in zip(scores[side], examples)]
                    for side, examples in sides.items()
                }
        if "mia_gradnorm" in wanted:
            with stopwatch(timings, "gradnorm"):
                norms = gradient_norms(
                    model,
                    all_examples,
                    p=self.gradnorm_p,
                    position_chunk_size=self.position_chunk_size or 512,
                    masked_token_id=self._masked_id(tokenizer),
                    distributed=self.distributed,
                    progress=self.progress,
                )
                per_attack["mia_gradnorm"] = {
                    "forget": norms[: len(sides["forget"])], "holdout": norms[len(sides["forget"]) :]
                }
        for name, side_scores in per_attack.items():
            results[name] = mia_entry(side_scores["forget"], side_scores["holdout"])

    # ------------------------------------------------------------- references and files
    @classmethod
    def _results_functions(cls):
        return importlib.import_module(f"{__package__}.{cls.results_module}")

    @property
    def _reference_spec(self) -> Any:
        return getattr(self, self.reference_name)

    def _evaluate_reference_model(self, model, tokenizer) -> dict[str, Any]:
        """Evaluate a reference model for what the summary needs from it."""
        raise NotImplementedError

    def _resolve_reference(self, tokenizer, override: Any = None) -> dict[str, Any] | None:
        """The reference as a results dict: an OU log / our results (path or dict) as read, a
        model (or ``(model, tokenizer)``) evaluated; the constructor's reference is cached."""
        from .results import as_results

        spec = override if override is not None else self._reference_spec
        if spec is None:
            return None
        if override is None and self._reference_results is not None:
            return self._reference_results
        if is_model_like(spec):
            ref_model, ref_tokenizer = spec if isinstance(spec, tuple) else (spec, tokenizer)
            if ref_tokenizer is None:
                raise ValueError(f"evaluating a {self.reference_name} model needs its tokenizer: pass (model, tokenizer)")
            with eval_mode(ref_model):
                reference = self._evaluate_reference_model(ref_model, ref_tokenizer)
        else:
            reference = as_results(spec, self.results_file, self.reference_name)
        if override is None:
            self._reference_results = reference
        return reference

    def _summarize(self, results: Any, reference: Any = None, **kwargs) -> dict[str, float]:
        """The benchmark's ``summarize`` with ``reference``, else the evaluator's own (a model
        reference is used once :meth:`evaluate` has evaluated it)."""
        if reference is None:
            reference = self._reference_results
        if reference is None and self._reference_spec is not None and not is_model_like(self._reference_spec):
            reference = self._reference_spec
        return self._results_functions().summarize(results, reference, **kwargs)

    @classmethod
    def save(cls, results: Mapping[str, Any], folder: str | os.PathLike, summary: Mapping[str, float] | None = None) -> None:
        """Write OU's per-example file (``TOFU_EVAL.json`` / ``MUSE_EVAL.json``) to ``folder``,
        and the summary file (``*_SUMMARY.json``) when ``summary`` is given."""
        functions = cls._results_functions()
        os.makedirs(folder, exist_ok=True)
        functions.save_results(results, folder)
        if summary is not None:
            functions.save_summary(summary, folder)

