from __future__ import annotations

import contextlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from .. import losses
from .._trl_compat import (
    BaseTrainer,
    disable_dropout_in_model,
    get_config_model_id,
    hash_module,
)
from ..checks import (
    check_finite_weights,
    check_hub_push,
    check_output_dir,
    check_vocabulary,
    resolve_resume_checkpoint,
)
from ..data import (
    EpochSeededSampler,
    ForgetRetainCollator,
    ForgetRetainDataset,
    as_dataset,
    describe_dataset,
    prepare_dataset,
)
from ..ops import key_masked_token_id, sequence_log_probs, token_log_probs
from .card import ModelCardMixin
from .models import load_model, wrap_peft
from .reference import add_reference_log_probs, check_precompute, resolve_reference
from .sharding import is_sharded_training, prepare_reference, shard_for_precompute
from .unlearning_config import UnlearningConfig

logger = logging.getLogger(__name__)

#: File in every checkpoint holding a method's own training state (:meth:`UnlearningTrainer.method_state`).
METHOD_STATE_NAME = "unlearning_method_state.pt"


@dataclass
class ForgetTerm:
    """What a method's forget loss returns for one micro-batch.

    Attributes
    ----------
    values : torch.Tensor
        ``[batch]`` per-example contributions; their sum is divided by the number of forget
        examples (``reduction="examples"``) or forget completion tokens (``reduction="tokens"``)
        of the whole (accumulated, all-process) batch.
    reduction : str
        ``"examples"`` or ``"tokens"``.
    metrics : dict
        Per-step scalars to log (already batch means).
    part : str
        The batch part whose examples/tokens normalise ``values``: ``"forget"``, or
        ``"forget_alternate"`` for a loss on the alternate (e.g. "I don't know") answers.
    """

    values: torch.Tensor
    reduction: str = "examples"
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    part: str = "forget"


class UnlearningTrainer(ModelCardMixin, BaseTrainer):
    r"""
    Base trainer for unlearning: a forget set to remove, a retain set to keep.

    Subclasses implement :meth:`compute_forget_term` (and set their config class, name, paper and
    whether they need a reference model); everything else — data formats, forget/retain pairing,
    reference-model handling, loss reduction under gradient accumulation and multiple processes,
    logging — is shared.

    Parameters
    ----------
    model : str or PreTrainedModel or PeftModel
        Hub id / local path (loaded with `args.model_init_kwargs`) or an instantiated causal LM.
    args : UnlearningConfig, optional
        Configuration; defaults to the subclass's config with `output_dir="<model>-<method>"`.
    ref_model : str or PreTrainedModel, optional
        Explicit reference model π_ref. Without it the reference is, in this order: the base
        model with the trainer's own LoRA adapter disabled (when `peft_config` is given), the
        precomputed forget log-probs (`args.precompute_ref_log_probs`), or a frozen copy.
    processing_class : PreTrainedTokenizerBase, optional
        Tokenizer; loaded from the model's id when omitted.
    peft_config : peft.PeftConfig, optional
        Train a PEFT adapter (e.g. LoRA) instead of the full model.

    forget_dataset : datasets.Dataset
        Data to unlearn (prompt-completion, conversational, question/answer or text format).
    retain_dataset : datasets.Dataset, optional
        Data to keep; required when the retain loss is on.
    eval_forget_dataset, eval_retain_dataset : datasets.Dataset, optional
        Evaluation pairs for `trainer.evaluate()` (the retain part defaults to `retain_dataset`).
    data_collator : callable, optional
        Defaults to :class:`~trl_unlearn.data.ForgetRetainCollator`.

    callbacks, optimizers, compute_metrics
        As in `transformers.Trainer`.
    """

    config_class = UnlearningConfig
    _name = "Unlearning"
    _tag_names = ["trl", "trl-unlearn", "unlearning"]
    _paper: dict[str, str] = {}
    # Whether the forget loss needs π_ref: "none", "logps" (sequence log-probs) or "logits" (distributions)
    forget_reference: str = "logps"
    loss_is_scaled_for_ga = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_tag_names" not in cls.__dict__ and "_name" in cls.__dict__:  # the Hub tags: the base's plus the method's name ("CE-U" -> "ceu")
            cls._tag_names = [*UnlearningTrainer._tag_names, cls._name.lower().replace("-", "")]

    def __init__(
        self,
        model: str | PreTrainedModel,
        args: UnlearningConfig | None = None,
        forget_dataset=None,
        retain_dataset=None,
        ref_model: str | PreTrainedModel | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        eval_forget_dataset=None,
        eval_retain_dataset=None,
        data_collator: Callable | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple = (None, None),
        peft_config=None,
        compute_metrics: Callable | None = None,
    ):
        if args is None:
            model_id = model if isinstance(model, str) else get_config_model_id(model.config)
            args = self.config_class(output_dir=f"{str(model_id).rstrip('/').split('/')[-1]}-{self._name}")
        elif not isinstance(args, self.config_class):
            raise TypeError(
                f"`args` must be a {self.config_class.__name__}, got {type(args).__name__}: every trainer reads its "
                f"own method's settings. Pass `{self.config_class.__name__}(output_dir=..., ...)`."
            )
        if forget_dataset is None:
            raise ValueError("`forget_dataset` is required: it is the data the model must unlearn.")
        forget_dataset = as_dataset(forget_dataset, "forget")
        retain_dataset = None if retain_dataset is None else as_dataset(retain_dataset, "retain")
        check_output_dir(args.output_dir)
        if args.push_to_hub:
            check_hub_push(args.hub_token)
        if ref_model is not None and ref_model is model:
            raise ValueError(
                "`ref_model` is the same object as `model`: the reference must stay frozen while the model is "
                "trained. Omit `ref_model` (a frozen copy is made) or pass a separate copy."
            )
        if args.uses_retain and retain_dataset is None:
            raise ValueError(
                f"`retain_dataset` is required with retain_loss_type={args.retain_loss_type!r} and "
                f"retain_loss_weight={args.retain_loss_weight}. Pass a retain set, or set `retain_loss_type='none'` "
                "(or `retain_loss_weight=0`) to unlearn without one."
            )

        # Model (seeded first: PEFT initialises adapter weights randomly)
        set_seed(args.seed)
        model = load_model(model, args)
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(
                get_config_model_id(model.config), trust_remote_code=args.trust_remote_code
            )
        if not isinstance(processing_class, PreTrainedTokenizerBase):
            raise TypeError("`processing_class` must be a tokenizer (PreTrainedTokenizerBase).")
        check_vocabulary(model, processing_class)
        if processing_class.pad_token is None:
            processing_class.pad_token = processing_class.eos_token
        model.config.pad_token_id = processing_class.pad_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.pad_token_id = processing_class.pad_token_id

        # Reference model
        needs_reference, needs_distributions = self._needs_reference(args)
        check_precompute(self._name, args.precompute_ref_log_probs, needs_distributions, args.retain_loss_type == "kl")
        if isinstance(ref_model, str):
            ref_model = load_model(ref_model, args)
        if ref_model is not None:
            check_vocabulary(model, other=ref_model, other_what="ref_model")
        self._check_settings(model, args)
        ref_model, self.reference_mode = resolve_reference(
            self._name, model, ref_model, peft_config is not None, args.precompute_ref_log_probs, needs_reference
        )

        if peft_config is not None:
            model = wrap_peft(model, peft_config, args)

        # Data
        self.forget_data = self._prepare_forget_dataset(forget_dataset, processing_class, "forget", args)
        self.retain_data = (
            prepare_dataset(retain_dataset, processing_class, name="retain", **self._data_kwargs(args))
            if args.uses_retain
            else None
        )
        self.dataset_info = {
            "forget": describe_dataset(forget_dataset),
            "retain": describe_dataset(retain_dataset) if retain_dataset is not None else None,
        }
        train_dataset = ForgetRetainDataset(self.forget_data, self.retain_data, seed=args.pairing_seed)
        eval_dataset = None
        if eval_forget_dataset is not None:
            eval_retain = None
            if args.uses_retain:
                eval_retain = (
                    prepare_dataset(eval_retain_dataset, processing_class, name="eval_retain", **self._data_kwargs(args))
                    if eval_retain_dataset is not None
                    else self.retain_data
                )
            eval_forget = self._prepare_forget_dataset(eval_forget_dataset, processing_class, "eval_forget", args)
            eval_dataset = ForgetRetainDataset(eval_forget, eval_retain, seed=args.pairing_seed)
        #: Token id hidden from attention inside sequences (``args.attention_mask_mode``), or None.
        self.masked_token_id = key_masked_token_id(processing_class, args.attention_mask_mode)
        if data_collator is None:
            data_collator = ForgetRetainCollator(
                processing_class.pad_token_id, args.pad_to_multiple_of, self.masked_token_id
            )

        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        if args.disable_dropout:
            disable_dropout_in_model(self.model)
            if ref_model is not None:
                disable_dropout_in_model(ref_model)

        self.ref_model = None
        if ref_model is not None:
            ref_model.eval()
            ref_model.requires_grad_(False)
        if self.reference_mode == "precomputed":
            self._precompute_reference(self.model if ref_model is None else ref_model)
            del ref_model
        elif ref_model is not None:  # sharded like the policy under FSDP / DeepSpeed (see .sharding)
            self.ref_model = prepare_reference(ref_model, self.accelerator)

        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self.eval_results: list[dict[str, Any]] = []
        # Evaluation callbacks log through the trainer that runs them and record results for its card.
        for callback in self.callback_handler.callbacks:
            if getattr(callback, "trainer", False) is None:
                callback.trainer = self
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    # ----------------------------------------------------------------------------------------
    # Construction helpers
    # ----------------------------------------------------------------------------------------
    def _check_settings(self, model, args: UnlearningConfig) -> None:
        """Method-specific checks of the settings against the loaded model (none by default)."""

    def _needs_reference(self, args: UnlearningConfig) -> tuple[bool, bool]:
        """``(needs a reference, needs a live reference model)`` for these settings.

        A live model is needed for whole next-token distributions (``forget_reference="logits"``, the
        ``"kl"`` retain loss); sequence log-probs (``"logps"``) can be precomputed.
        """
        kl_retain = args.uses_retain and args.retain_loss_type == "kl"
        return self.forget_reference != "none" or kl_retain, self.forget_reference == "logits" or kl_retain

    def _prepare_forget_dataset(self, dataset, processing_class, name: str, args: UnlearningConfig):
        """Tokenize the forget (or eval forget) data; methods with a second answer per question extend it."""
        return prepare_dataset(dataset, processing_class, name=name, **self._data_kwargs(args))

    @staticmethod
    def _data_kwargs(args: UnlearningConfig) -> dict[str, Any]:
        return {
            "max_length": args.max_length,
            "system_prompt": args.system_prompt,
            "chat_template_kwargs": args.chat_template_kwargs,
            "num_proc": args.dataset_num_proc,
        }

    def _set_signature_columns_if_needed(self):
        # The batches are not model kwargs: keep every column the collator produces.
        if self._signature_columns is None:
            self._signature_columns = [
                f"{part}_{key}"
                for part in ("forget", "retain", "forget_alternate")
                for key in ("prompt_ids", "completion_ids", "ref_logps")
            ]

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if isinstance(dataset, ForgetRetainDataset):
            return EpochSeededSampler(dataset, seed=self.args.seed)
        return super()._get_train_sampler(train_dataset)

    # ----------------------------------------------------------------------------------------
    # Reference model
    # ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reference_model(self, model):
        """Context yielding the module that computes π_ref (a separate model or the adapter-disabled policy)."""
        if self.reference_mode == "peft":
            unwrapped = self.accelerator.unwrap_model(model)
            with unwrapped.disable_adapter():
                yield model
        elif self.ref_model is not None:
            yield self.ref_model
        else:
            raise RuntimeError(
                f"{self._name} has no live reference model (reference mode {self.reference_mode!r}); "
                "precomputed log-probs cover sequence-level losses only."
            )

    @staticmethod
    def logits(model, inputs: dict[str, torch.Tensor], part: str) -> torch.Tensor:
        """``model``'s logits for the ``forget``/``retain`` part of a batch."""
        return model(
            input_ids=inputs[f"{part}_input_ids"], attention_mask=inputs[f"{part}_attention_mask"], use_cache=False
        ).logits

    def reference_logits(self, model, inputs: dict[str, torch.Tensor], part: str) -> torch.Tensor:
        """π_ref logits for the ``forget``/``retain`` part of a batch (no gradient)."""
        with torch.no_grad(), self.reference_model(model) as ref:
            return self.logits(ref, inputs, part)

    def reference_sequence_logps(self, model, inputs: dict[str, torch.Tensor], part: str = "forget") -> torch.Tensor:
        """Summed ``part`` completion log-probs under π_ref, precomputed or live (``[batch]``)."""
        if f"{part}_ref_logps" in inputs:
            return inputs[f"{part}_ref_logps"]
        logits = self.reference_logits(model, inputs, part)
        return sequence_log_probs(logits, inputs[f"{part}_labels"])[0]

    def _precompute_reference(self, reference) -> None:
        """Store the forget (and eval forget) sets' reference log-probs as a ``ref_logps`` column.

        See :func:`.reference.add_reference_log_probs` (split across processes, cached by dataset
        fingerprint). An explicit reference model is moved to the training device for the
        computation and back afterwards (unless it was dispatched with a ``device_map``); under
        FSDP / DeepSpeed a sharded model computes them (:func:`.sharding.shard_for_precompute`).
        """
        datasets = {"train": self.train_dataset, "eval": self.eval_dataset}
        # hashing the weights costs minutes on a 7B model: only when a forget set can be cached
        cachable = any(paired is not None and paired.forget.cache_files for paired in datasets.values())
        model_hash = hash_module(reference) if cachable else None  # before sharding: shards cannot be hashed
        if is_sharded_training(self.accelerator):
            reference = shard_for_precompute(reference, self.model, self.accelerator)
        device = self.accelerator.device
        was_training = reference.training
        home = next(reference.parameters()).device
        movable = reference is not self.model and getattr(reference, "hf_device_map", None) is None and home != device
        if movable:
            reference.to(device)
        reference.eval()
        for name, paired in datasets.items():
            if paired is not None:
                paired.forget = add_reference_log_probs(
                    paired.forget, reference, device=device, model_hash=model_hash,
                    batch_size=self.args.precompute_ref_batch_size or self.args.per_device_eval_batch_size,
                    pad_token_id=self.processing_class.pad_token_id, masked_token_id=self.masked_token_id,
                    desc=f"reference log-probs, {name} forget set", progress=not self.args.disable_tqdm,
                )  # fmt: skip
        self.forget_data = self.train_dataset.forget
        reference.train(was_training)
        if movable:
            reference.to(home)

    # ----------------------------------------------------------------------------------------
    # Loss
    # ----------------------------------------------------------------------------------------
    def policy_forward(self, model, inputs: dict[str, torch.Tensor], part: str):
        """Policy logits and per-token log-probs of the ``part`` completions.

        Returns ``(logits, token_log_probs, mask)`` with shifted ``[batch, length-1]`` log-probs.
        """
        logits = self.logits(model, inputs, part)
        log_probs, mask = token_log_probs(logits, inputs[f"{part}_labels"])
        return logits, log_probs, mask

    def compute_forget_term(self, model, inputs: dict[str, torch.Tensor]) -> ForgetTerm:
        """The method's forget loss for one micro-batch; implemented by each trainer."""
        raise NotImplementedError

    #: How :meth:`compute_retain_values` is normalised: ``"tokens"`` (sums over completion tokens) or ``"examples"``.
    retain_reduction: str = "tokens"

    def scored_forget_mask(self, labels: torch.Tensor) -> torch.Tensor:
        """Shifted ``[batch, length-1]`` mask of the forget positions a ``"tokens"`` forget loss is averaged over
        (every completion token; a method that skips some positions overrides it)."""
        return labels[:, 1:] != -100

    def total_loss(self, forget_loss: torch.Tensor, retain_loss: torch.Tensor | None, inputs, counts, metrics):
        """Combine the reduced forget and retain losses: ``γ·L_forget + α·L_retain`` by default."""
        loss = self.args.forget_loss_weight * forget_loss
        if retain_loss is not None:
            loss = loss + self.args.retain_loss_weight * retain_loss
        return loss

    def compute_retain_values(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-example retain loss sums over completion tokens (``[batch]``), reduced per token."""
        logits, log_probs, mask = self.policy_forward(model, inputs, "retain")
        if self.args.retain_loss_type == "nll":
            return losses.token_nll_sums(log_probs, mask)
        ref_logits = self.reference_logits(model, inputs, "retain")
        kl = losses.kl_divergence_per_token(ref_logits[:, :-1], logits[:, :-1])
        return losses.masked_sum(kl, mask)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        """Global counts of forget/retain examples and completion tokens of one optimizer step.

        Summed over the gradient-accumulation micro-batches and gathered over processes, so that
        the loss of every micro-batch is normalised exactly like one big batch.
        """
        parts = ("forget", "retain", "forget_alternate")
        counts = torch.zeros(2 * len(parts), dtype=torch.float64)
        for batch in batch_samples:
            for i, part in enumerate(parts):
                labels = batch.get(f"{part}_labels")
                if labels is not None:
                    counts[2 * i] += labels.shape[0]
                    mask = self.scored_forget_mask(labels) if part == "forget" else labels[:, 1:] != -100
                    counts[2 * i + 1] += mask.sum().item()
        counts = counts.to(device)
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.gather(counts.unsqueeze(0)).sum(0)
        names = [f"{part}_{kind}" for part in parts for kind in ("examples", "tokens")]
        return {name: counts[i] for i, name in enumerate(names)}

    def _reduce(self, values: torch.Tensor, counts: dict | None, part: str, reduction: str, mask: torch.Tensor):
        """Reduce per-example sums to ``(loss, local_mean)``.

        ``loss`` is normalised by the global count of the optimizer step when ``counts`` is given
        (times the number of processes, since DDP averages gradients), else by the local count;
        ``local_mean`` is the micro-batch mean, for logging.
        """
        local = float(values.shape[0]) if reduction == "examples" else mask.sum().clamp(min=1).to(values.dtype)
        local_mean = values.sum() / local
        if counts is None:
            return local_mean, local_mean.detach()
        total = counts[f"{part}_{reduction}"].to(values.dtype) / self.accelerator.num_processes
        return values.sum() / total, local_mean.detach()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        counts = num_items_in_batch if isinstance(num_items_in_batch, dict) else None
        args = self.args
        metrics: dict[str, torch.Tensor] = {}

        term = self.compute_forget_term(model, inputs)
        labels = inputs[f"{term.part}_labels"]
        forget_mask = self.scored_forget_mask(labels) if term.part == "forget" else labels[:, 1:] != -100
        forget_loss, metrics["forget_loss"] = self._reduce(term.values, counts, term.part, term.reduction, forget_mask)
        metrics.update(term.metrics)
        retain_loss = None
        if args.uses_retain and "retain_input_ids" in inputs:
            values = self.compute_retain_values(model, inputs)
            retain_mask = inputs["retain_labels"][:, 1:] != -100
            retain_loss, metrics["retain_loss"] = self._reduce(values, counts, "retain", self.retain_reduction,
                                                               retain_mask)
        loss = self.total_loss(forget_loss, retain_loss, inputs, counts, metrics)

        if not torch.isfinite(loss.detach()).all():
            raise FloatingPointError(
                f"{self._name} loss is {loss.item()} at step {self.state.global_step} "
                f"(forget loss {metrics['forget_loss'].item():.4g}"
                + (f", retain loss {metrics['retain_loss'].item():.4g}" if "retain_loss" in metrics else "")
                + "). Lower the learning rate, use bf16/fp32 instead of fp16, or check the data for empty completions."
            )
        self._record(mode, metrics)
        return (loss, {"loss": loss}) if return_outputs else loss

    def _record(self, mode: str, metrics: dict[str, torch.Tensor]) -> None:
        """Average the micro-batch metrics over processes and keep them until the next log."""
        names = sorted(metrics)
        stacked = torch.stack([metrics[k].float().reshape(()) for k in names]).to(self.accelerator.device)
        gathered = self.accelerator.gather(stacked.unsqueeze(0)).mean(0)
        for name, value in zip(names, gathered.tolist()):
            self._metrics[mode][name].append(value)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {key: sum(val) / len(val) for key, val in self._metrics[mode].items() if val}
        if mode == "eval":
            metrics = {f"eval_{key}": val for key, val in metrics.items()}
        logs.update(metrics)
        super().log(logs, start_time)
        self._metrics[mode].clear()

    def _card_name(self) -> str:
        return Path(self.args.output_dir).name if self.args.hub_model_id is None else self.args.hub_model_id.split("/")[-1]

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Train (see :meth:`transformers.Trainer.train`).

        ``resume_from_checkpoint`` is a checkpoint folder or ``True`` (also ``"true"``, as the CLI
        passes it) for the latest *complete* checkpoint of ``args.output_dir``: checkpoints whose
        save was interrupted are skipped with a warning naming them, and a given folder that is
        incomplete (no ``trainer_state.json``, weights, ``optimizer.pt`` or ``scheduler.pt``) is
        refused instead of resuming with fresh optimizer state.
        """
        sharded = self.is_deepspeed_enabled or self.is_fsdp_enabled
        resume_from_checkpoint = resolve_resume_checkpoint(
            resume_from_checkpoint, self.args.output_dir, optimizer_state=not (sharded or self.args.save_only_model)
        )
        if isinstance(resume_from_checkpoint, str) and self.method_state():
            path = os.path.join(resume_from_checkpoint, METHOD_STATE_NAME)
            if os.path.isfile(path):
                self.load_method_state(torch.load(path, map_location="cpu", weights_only=True))
            else:
                logger.warning("%s has no %s: %s resumes with its state as initialised now, not as saved.",
                               resume_from_checkpoint, METHOD_STATE_NAME, self._name)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial,
                             ignore_keys_for_eval=ignore_keys_for_eval, **kwargs)

    def _save_checkpoint(self, model, trial):
        # Keep the model card next to every checkpoint (and in checkpoint pushes), as TRL's trainers do.
        check_finite_weights(self.model, self.state.global_step, self.accelerator)
        self.create_model_card(model_name=self._card_name())
        super()._save_checkpoint(model, trial)
        state = self.method_state()
        if state and self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            torch.save(state, os.path.join(folder, METHOD_STATE_NAME))

    def method_state(self) -> dict[str, Any]:
        """A method's own training state (tensors, numbers) saved with every checkpoint and restored on resume
        (e.g. RMU's steering vector, PDU's dual variable); empty by default."""
        return {}

    def load_method_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`method_state` saved (called when training resumes from a checkpoint)."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Save the model (see :meth:`transformers.Trainer.save_model`); a save to ``args.output_dir``
        also rewrites its model card, so results recorded after the last checkpoint (e.g. by
        :class:`~trl_unlearn.evaluation.callback.UnlearningEvalCallback` at the end of training)
        are on it.

        Raises
        ------
        FloatingPointError
            If a weight is NaN or infinite: such a model is never saved.
        """
        check_finite_weights(self.model, self.state.global_step, self.accelerator)
        super().save_model(output_dir, _internal_call)
        target = self.args.output_dir if output_dir is None else output_dir
        if not _internal_call and os.path.abspath(target) == os.path.abspath(self.args.output_dir):
            self.create_model_card(model_name=self._card_name())

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True, token: str | None = None,
                    revision: str | None = None, private: bool | None = None, **kwargs):
        """Push the output folder (see :meth:`transformers.Trainer.push_to_hub`).

        Raises
        ------
        trl_unlearn.checks.HubAccessError
            At once, when the Hub is in offline mode or no token is found.
        """
        check_hub_push(token if token is not None else self.args.hub_token)
        return super().push_to_hub(commit_message, blocking, token, revision, private, **kwargs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

