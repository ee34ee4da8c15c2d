"""What the benchmark evaluators share: :class:`BenchmarkEvaluator`.

:class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator` and
:class:`~trl_unlearn.evaluation.muse_evaluator.MUSEEvaluator` differ in their data and in which
metric reads which split; the plumbing around the engine is the same and lives here:

- the options (:class:`~trl_unlearn.evaluation.options.EvalOptions`) and the one ``reference``
  argument (the retain / retrain model: a log, a results dict or a model);
- :meth:`BenchmarkEvaluator.evaluate`: checks, per-example values (the subclass), then the
  aggregate-only metrics by the benchmark's summary code, so that every aggregate has one
  implementation;
- the engine calls (:meth:`BenchmarkEvaluator._score`, :meth:`BenchmarkEvaluator._generate`), the
  memorisation metrics and the membership-inference attacks, computed from one set of scores;
- summaries and saving in OU's file layout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..checks import check_positive, check_vocabulary
from ..ops import key_masked_token_id
from . import metrics as M
from .batching import is_sharded_model
from .engine import SequenceScores, gradient_norms, score_examples
from .generation import generate_greedy
from .options import EvalOptions, take_reference
from .prompts import EncodedExample, decode_target
from .results import as_results, save_log
from .spec import BenchmarkSpec

logger = logging.getLogger(__name__)

__all__ = ["BenchmarkEvaluator", "index_values", "is_model_like", "mia_entry", "eval_mode", "stopwatch"]


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


class BenchmarkEvaluator:
    """Base of the benchmark evaluators (not used on its own).

    Subclasses set :attr:`spec`, :attr:`summarize_log` and :attr:`aggregate_values` (the
    benchmark's pure functions of :mod:`~trl_unlearn.evaluation.tofu` /
    :mod:`~trl_unlearn.evaluation.muse`), call :meth:`_init_options` in their constructor and
    implement :meth:`metrics_to_compute`, :meth:`_evaluate` and :meth:`_evaluate_reference_model`.
    Every :class:`~trl_unlearn.evaluation.options.EvalOptions` field reads as an attribute.
    """

    #: The benchmark (metric names, groups, datasets, file names).
    spec: ClassVar[BenchmarkSpec]
    #: Benchmark-specific defaults of the options left ``None`` (a value or a function of the options).
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: Benchmark-specific constructor arguments that must be positive integers.
    positive_arguments: ClassVar[tuple[str, ...]] = ()

    #: ``summarize(results, reference, **kwargs)`` of the benchmark's open-unlearning logs.
    summarize_log: ClassVar[Callable[..., dict[str, float]]]
    #: ``aggregate_values(results, reference, names)``: the aggregate-only metrics, by the summary's code.
    aggregate_values: ClassVar[Callable[..., dict[str, Any]]]

    def _init_options(self, metrics, reference, reference_model, options, kwargs: dict[str, Any]) -> None:
        """The shared part of the constructors: metrics, reference, options (keywords included)."""
        owner = type(self).__name__
        self.reference = take_reference(reference, kwargs, owner, stacklevel=4)
        self.reference_model = reference_model
        self.options = EvalOptions.resolve(options, kwargs, self.option_defaults, owner)
        self.requested_metrics = None if metrics is None else self.spec.expand_metrics(metrics)
        for name in self.positive_arguments:
            check_positive(name, getattr(self, name))
        #: Seconds spent per phase in the last :meth:`evaluate` call.
        self.last_timings: dict[str, float] = {}
        self._reference_results: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        # the options read as attributes (`evaluator.batch_size`); only called for missing attributes
        if name in EvalOptions.field_names() and "options" in self.__dict__:
            return getattr(self.__dict__["options"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def benchmark(self) -> str:
        """Benchmark name (model cards, :class:`~trl_unlearn.evaluation.callback.UnlearningEvalCallback`)."""
        return self.spec.name

    # ---------------------------------------------------------------- the evaluation
    def metrics_to_compute(self) -> set[str]:
        """The metric keys :meth:`evaluate` will produce with the current data and models."""
        raise NotImplementedError

    def _evaluate(self, model, tokenizer, wanted: set[str], explicit: bool) -> dict[str, Any]:
        """Per-example values of ``wanted`` (``explicit``: the metrics were asked for by name)."""
        raise NotImplementedError

    def evaluate(self, model, tokenizer, reference: Any = None, **legacy: Any) -> dict[str, Any]:
        """Evaluate ``model`` on the benchmark.

        Parameters
        ----------
        model : PreTrainedModel
            The model under test (put in eval mode for the duration, then restored).
        tokenizer : PreTrainedTokenizerBase
            Its tokenizer.
        reference : optional
            Overrides the constructor's ``reference`` for this call (``retain_reference`` /
            ``retrain_reference`` are deprecated aliases).

        Returns
        -------
        dict
            Per-example values and aggregates in OU's ``*_EVAL.json`` layout; accepted by the
            benchmark's ``summarize`` and ``save_results``.
        """
        reference = take_reference(reference, legacy, f"{type(self).__name__}.evaluate")
        _no_more(legacy, "evaluate")
        self._check_inputs(model, tokenizer, reference)
        wanted = self.metrics_to_compute()
        with eval_mode(model):
            results = self._evaluate(model, tokenizer, wanted, explicit=self.requested_metrics is not None)
        values = self.aggregate_values(results, self.reference_results(tokenizer, reference), wanted)
        results.update({name: {"agg_value": value} for name, value in values.items()})
        return dict(sorted(results.items()))

    def summarize(self, results: Any, reference: Any = None, **kwargs: Any) -> dict[str, float]:
        """The benchmark's ``summarize`` with ``reference``, else the evaluator's own (a model
        reference is used once :meth:`evaluate` has evaluated it)."""
        reference = take_reference(reference, kwargs, f"{type(self).__name__}.summarize")
        if reference is None:
            reference = self._reference_results
        if reference is None and self.reference is not None and not is_model_like(self.reference):
            reference = self.reference
        return type(self).summarize_log(results, reference, **kwargs)

    def reference_results(self, tokenizer=None, reference: Any = None, **legacy: Any) -> dict[str, Any] | None:
        """The reference as a results dict: an OU log / our results (path or dict) as read, a
        model (or ``(model, tokenizer)``) evaluated; the constructor's reference is cached."""
        override = take_reference(reference, legacy, f"{type(self).__name__}.reference_results")
        _no_more(legacy, "reference_results")
        spec = override if override is not None else self.reference
        if spec is None:
            return None
        if override is None and self._reference_results is not None:
            return self._reference_results
        if is_model_like(spec):
            ref_model, ref_tokenizer = spec if isinstance(spec, tuple) else (spec, tokenizer)
            if ref_tokenizer is None:
                raise ValueError("evaluating a reference model needs its tokenizer: pass (model, tokenizer)")
            with eval_mode(ref_model):
                result = self._evaluate_reference_model(ref_model, ref_tokenizer)
        else:
            result = as_results(spec, self.spec.eval_file, self.spec.reference_name)
        if override is None:
            self._reference_results = result
        return result

    def _evaluate_reference_model(self, model, tokenizer) -> dict[str, Any]:
        """Evaluate a reference model for what the aggregates need from it."""
        raise NotImplementedError

    # ---------------------------------------------------------------- checks
    def _check_inputs(self, model, tokenizer, reference: Any = None) -> None:
        """Before any scoring: the models match the tokenizer, and a reference log loads and fits."""
        check_vocabulary(model, tokenizer, what="evaluated model")
        if self.reference_model is not None:
            check_vocabulary(model, other=self.reference_model, other_what="`reference_model`")
        spec = reference if reference is not None else self.reference
        if is_model_like(spec):
            ref_model, ref_tokenizer = spec if isinstance(spec, tuple) else (spec, tokenizer)
            check_vocabulary(ref_model, ref_tokenizer, what="reference model")
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
        spec = reference if reference is not None else self.reference
        if spec is None or is_model_like(spec):
            return
        self._check_reference_fits(self.reference_results(None, reference))

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
        """``mia_wanted`` without gradnorm when the model has no trainable parameter or is sharded
        and the metrics were not asked for by name (then the engine's error explains the fix)."""
        mia = list(mia_wanted)
        if "mia_gradnorm" in mia and not explicit and not any(p.requires_grad for p in model.parameters()):
            logger.warning("mia_gradnorm skipped: the model has no parameter with requires_grad=True")
            mia.remove("mia_gradnorm")
        elif "mia_gradnorm" in mia and not explicit and is_sharded_model(model):
            logger.warning("mia_gradnorm skipped: the model is sharded (FSDP / DeepSpeed ZeRO-3)")
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

    @classmethod
    def save(cls, results: Mapping[str, Any], folder: str | os.PathLike, summary: Mapping[str, float] | None = None) -> None:
        """Write OU's per-example file (``TOFU_EVAL.json`` / ``MUSE_EVAL.json``) to ``folder``,
        and the summary file (``*_SUMMARY.json``) when ``summary`` is given."""
        os.makedirs(folder, exist_ok=True)
        save_log(results, folder, cls.spec.eval_file)
        if summary is not None:
            save_log(summary, folder, cls.spec.summary_file)


def _no_more(kwargs: Mapping[str, Any], where: str) -> None:
    if kwargs:
        raise TypeError(f"{where}() got unexpected keyword arguments {sorted(kwargs)}")
