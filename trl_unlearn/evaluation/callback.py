"""Benchmark evaluation during training: :class:`UnlearningEvalCallback`.

Runs an evaluator (e.g. :class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator`) on the
trainer's model every ``eval_steps`` optimizer steps and/or at the end of each epoch, and logs the
summary through the trainer, like TRL's own evaluation callbacks::

    evaluator = TOFUEvaluator("forget10", reference="retain90/TOFU_EVAL.json")
    trainer = NPOTrainer(...)
    trainer.add_callback(UnlearningEvalCallback(evaluator, eval_steps=50, trainer=trainer))
    trainer.train()      # logs eval_tofu_forget_quality, eval_tofu_model_utility, ...

With ``trainer=`` the metrics go through ``trainer.log`` and so reach every ``report_to``
integration and ``trainer.state.log_history``; without it they are appended to
``state.log_history`` only. Under ``torch.distributed`` every rank runs the evaluator (work is
sharded or done on rank 0, see the evaluator's ``distributed``; a sharded FSDP / ZeRO-3 model is
evaluated in lock-step, every rank the same rows; WMDP's lm-eval run is always on rank 0, its
results broadcast), so no rank waits on another.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from transformers import TrainerCallback

from .options import take_reference

logger = logging.getLogger(__name__)


_CONTROL_FLAGS = ("should_log", "should_evaluate", "should_save")


def _unwrap(model):
    """The bare model behind DDP / ``torch.compile`` wrappers (PEFT models are kept)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def evaluation_record(evaluator, summary: dict[str, float]) -> dict[str, Any]:
    """The record of one evaluation that ``trainer.eval_results`` keeps and the model card shows:
    ``{"benchmark", "dataset_id", "dataset_config", "summary"}``."""
    return {
        "benchmark": getattr(evaluator, "benchmark", "TOFU"),
        "dataset_id": getattr(evaluator, "dataset_id", "locuslab/TOFU"),
        "dataset_config": getattr(evaluator, "forget_split", None),
        "summary": dict(summary),
    }


def evaluation_records(evaluator, summary: dict[str, float]) -> list[dict[str, Any]]:
    """The records of one evaluation: the evaluator's own split by dataset when it has them
    (:meth:`~trl_unlearn.evaluation.wmdp_evaluator.WMDPEvaluator.evaluation_records`: WMDP's
    subsets and MMLU are different Hub datasets), else :func:`evaluation_record`."""
    own = getattr(evaluator, "evaluation_records", None)
    return own(summary) if callable(own) else [evaluation_record(evaluator, summary)]


class UnlearningEvalCallback(TrainerCallback):
    """Evaluate a benchmark periodically during training and log its summary.

    Parameters
    ----------
    evaluator : TOFUEvaluator, MUSEEvaluator, WMDPEvaluator or compatible
        Needs ``evaluate(model, tokenizer, reference)``, ``summarize(results, reference)`` and
        ``reference_results(tokenizer, reference)``; ``forget_split``, ``benchmark`` and
        ``dataset_id`` attributes are used if present.
    eval_steps : int, optional
        Evaluate every ``eval_steps`` optimizer steps.
    on_epoch_end : bool
        Evaluate at the end of every epoch (skipped if that step was just evaluated).
    reference : optional
        The retain (TOFU) / retrain (MUSE) reference for forget quality / privleak (path, results
        dict, or model); a model is evaluated once and its results reused. Defaults to the
        evaluator's own. ``retain_reference=`` is a deprecated alias.
    trainer : transformers.Trainer, optional
        Log through ``trainer.log`` and record summaries in ``trainer.eval_results`` (if the
        trainer has such a list).
    tokenizer : PreTrainedTokenizerBase, optional
        Defaults to the trainer's ``processing_class``.
    eval_on_start : bool
        Also evaluate before the first step (the "before unlearning" point of a curve).
    metric_key_prefix : str, optional
        Prefix of the logged keys (``eval_tofu`` -> ``eval_tofu_model_utility``); default
        ``"eval_" + evaluator.benchmark.lower()`` (``eval_tofu``, ``eval_muse``, ``eval_wmdp``).
    save_dir : str, optional
        If set, the main process writes ``<save_dir>/step-<N>/TOFU_EVAL.json`` and
        ``TOFU_SUMMARY.json`` after each evaluation.

    Attributes
    ----------
    history : list of dict
        ``{"step", "epoch", "summary"}`` for every evaluation.
    latest_results : dict or None
        Per-example results of the last evaluation.
    """

    def __init__(
        self,
        evaluator,
        eval_steps: int | None = None,
        on_epoch_end: bool = True,
        reference: Any = None,
        *,
        trainer=None,
        tokenizer=None,
        eval_on_start: bool = False,
        metric_key_prefix: str | None = None,
        save_dir: str | os.PathLike | None = None,
        **legacy: Any,
    ):
        reference = take_reference(reference, legacy, "UnlearningEvalCallback")
        if legacy:
            raise TypeError(f"UnlearningEvalCallback() got unexpected keyword arguments {sorted(legacy)}")
        if eval_steps is not None and eval_steps < 1:
            raise ValueError(f"eval_steps must be a positive number of steps or None, got {eval_steps}")
        if eval_steps is None and not on_epoch_end and not eval_on_start:
            raise ValueError("nothing to do: set eval_steps, on_epoch_end=True or eval_on_start=True")
        self.evaluator = evaluator
        self.eval_steps = eval_steps
        self.evaluate_on_epoch_end = on_epoch_end
        self.eval_on_start = eval_on_start
        self.reference = reference
        self.trainer = trainer
        self.tokenizer = tokenizer
        if metric_key_prefix is None:
            metric_key_prefix = "eval_" + str(getattr(evaluator, "benchmark", "TOFU")).lower()
        self.metric_key_prefix = metric_key_prefix
        self.save_dir = save_dir
        self.history: list[dict[str, Any]] = []
        self.latest_results: dict[str, Any] | None = None
        self._last_step: int | None = None
        self._reference: Any = None
        self._warned_no_trainer = False

    # ----------------------------------------------------------------- events
    def on_train_begin(self, args, state, control, **kwargs):
        if self.eval_on_start:
            self._run(args, state, control, kwargs)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.eval_steps and state.global_step > 0 and state.global_step % self.eval_steps == 0:
            self._run(args, state, control, kwargs)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.evaluate_on_epoch_end:
            self._run(args, state, control, kwargs)
        return control

    # ------------------------------------------------------------------ work
    def _tokenizer(self, kwargs):
        tokenizer = self.tokenizer or kwargs.get("processing_class") or kwargs.get("tokenizer")
        if tokenizer is None and self.trainer is not None:
            tokenizer = getattr(self.trainer, "processing_class", None)
        if tokenizer is None:
            raise ValueError("UnlearningEvalCallback needs a tokenizer: pass `tokenizer=` or give the trainer a processing_class")
        return getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the tokenizer

    def _reference_for(self, tokenizer):
        if self.reference is None:
            return None
        if self._reference is None:
            self._reference = self.evaluator.reference_results(tokenizer, self.reference)
        return self._reference

    def evaluate(self, model, tokenizer, progress: bool | None = None) -> tuple[dict[str, Any], dict[str, float]]:
        """Run the evaluator on ``model`` (eval mode, train mode restored); return results and summary.

        ``progress=False`` silences the evaluator's progress bars for this call (the callback
        passes ``not args.disable_tqdm``: no bars when the trainer shows none).
        """
        model = _unwrap(model)
        was_training = model.training
        options = getattr(self.evaluator, "options", None)
        saved = getattr(options, "progress", None)
        model.eval()
        try:
            if options is not None and progress is not None:
                options.progress = progress and saved
            reference = self._reference_for(tokenizer)
            results = self.evaluator.evaluate(model, tokenizer, reference)
        finally:
            model.train(was_training)
            if options is not None:
                options.progress = saved
        summary = self.evaluator.summarize(results, reference)
        return results, summary

    def _run(self, args, state, control, kwargs) -> None:
        if self._last_step == state.global_step:
            return
        self._last_step = state.global_step
        model = kwargs.get("model") or (self.trainer.model if self.trainer is not None else None)
        if model is None:
            raise ValueError("UnlearningEvalCallback got no model from the trainer")
        results, summary = self.evaluate(model, self._tokenizer(kwargs), progress=not getattr(args, "disable_tqdm", False))
        self.latest_results = results
        self.history.append({"step": state.global_step, "epoch": state.epoch, "summary": summary})
        logs = {f"{self.metric_key_prefix}_{k}": float(v) for k, v in summary.items() if v is not None}
        # `Trainer.log` resets `control.should_log`: keep the trainer's own pending decisions
        pending = {k: getattr(control, k) for k in _CONTROL_FLAGS}
        self._log(state, logs)
        for target in (control, getattr(self.trainer, "control", control)):
            for k, v in pending.items():
                setattr(target, k, getattr(target, k) or v)
        self._record_eval_results(summary)
        if self.save_dir is not None and state.is_world_process_zero:
            self._save(results, summary, state.global_step)

    def _log(self, state, logs: dict[str, float]) -> None:
        if self.trainer is not None:
            # The base implementation: subclasses (TRL-style trainers) merge their pending
            # training metrics into any `log` call, which would move them into this entry.
            from transformers import Trainer

            log = Trainer.log if isinstance(self.trainer, Trainer) else type(self.trainer).log
            log(self.trainer, dict(logs))
            return
        if not self._warned_no_trainer:
            logger.warning(
                "UnlearningEvalCallback has no trainer: metrics go to state.log_history only; pass "
                "`trainer=` to also send them to the report_to integrations"
            )
            self._warned_no_trainer = True
        entry = dict(logs)
        if state.epoch is not None:
            entry["epoch"] = state.epoch
        entry["step"] = state.global_step
        state.log_history.append(entry)

    def _record_eval_results(self, summary: dict[str, float]) -> None:
        eval_results = getattr(self.trainer, "eval_results", None) if self.trainer is not None else None
        if isinstance(eval_results, list):
            eval_results.extend(evaluation_records(self.evaluator, summary))

    def _save(self, results, summary, step: int) -> None:
        folder = os.path.join(os.fspath(self.save_dir), f"step-{step}")
        save = getattr(self.evaluator, "save", None)
        if callable(save):
            save(results, folder, summary)
            return
        from .tofu_summary import save_results, save_summary

        os.makedirs(folder, exist_ok=True)
        save_results(results, folder)
        save_summary(summary, folder)
