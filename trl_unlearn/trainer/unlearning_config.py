from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._trl_compat import BaseConfig
from ..checks import check_finite_fields, check_positive
from ..ops import ATTENTION_MASK_MODES, check_attention_mask_mode

RETAIN_LOSS_TYPES = ("nll", "kl", "none")


@dataclass
class UnlearningConfig(BaseConfig):
    r"""
    Configuration shared by every trl-unlearn trainer.

    Subclasses `transformers.TrainingArguments` (through TRL's trainer configuration), so every
    `TrainingArguments` field works. Defaults follow the TOFU reference setup: AdamW,
    learning rate 1e-5, weight decay 0.01, 10 epochs, linear warm-up for the first epoch then
    linear decay. The total loss is ``forget_loss_weight · L_forget + retain_loss_weight · L_retain``.

    Parameters
    ----------
    model_init_kwargs : dict, optional
        Keyword arguments for `AutoModelForCausalLM.from_pretrained` when `model` (or `ref_model`)
        is given as a string.
    trust_remote_code : bool, defaults to False
        Allow models/tokenizers that ship custom code. Off by default.
    disable_dropout : bool, defaults to True
        Disable dropout in the policy (and reference) model.

    max_length : int or None, defaults to 2048
        Maximum prompt + completion tokens. Longer completions are truncated (with a warning),
        a prompt that does not fit raises, raw text is chunked to this length (MUSE uses 2048).
    system_prompt : str, optional
        System message prepended when question/answer or conversational data is rendered with
        the chat template (open-unlearning uses "You are a helpful assistant.").
    chat_template_kwargs : dict, optional
        Extra keyword arguments for `apply_chat_template` (e.g. `{"date_string": "10 Apr 2025"}`).
    dataset_num_proc : int, optional
        Processes used to tokenize the datasets.
    pad_to_multiple_of : int, optional
        Pad batches to a multiple of this length.
    pairing_seed : int, optional
        Seed of the forget/retain pairing (one retain example drawn uniformly per forget example,
        re-drawn every epoch). Defaults to `seed`.
    attention_mask_mode : str, defaults to "padding"
        `"padding"`: only padding is hidden from attention, as in `transformers`/TRL training and
        in ordinary inference. `"open_unlearning"`: every pad-id token (the EOS when the
        tokenizer has no pad token) is hidden as an attention key, also the turn ends inside a
        chat sequence, as open-unlearning's collator does; use it to reproduce open-unlearning's
        training recipes. The evaluators default to `"open_unlearning"` (comparable with
        open-unlearning's numbers); see the TOFU docs.

    forget_loss_weight : float, defaults to 1.0
        γ, the weight of the forget loss.
    retain_loss_weight : float, defaults to 1.0
        α, the weight of the retain loss.
    retain_loss_type : str, defaults to "nll"
        `"nll"` (mean token cross-entropy on retain completions), `"kl"` (KL(π_ref ‖ π_θ) over retain
        completion tokens) or `"none"`.
    precompute_ref_log_probs : bool, defaults to False
        Compute the forget set's reference log-probabilities once before training and hold no
        reference model at all (sequence-level objectives only).
    precompute_ref_batch_size : int, optional
        Batch size of that pre-computation (defaults to `per_device_eval_batch_size`).
    warmup_epochs : float, defaults to 1.0
        Linear warm-up length in epochs (used when `warmup_steps` is 0).

    Notes
    -----
    Every float field must be finite, batch sizes positive, and ``num_train_epochs`` or
    ``max_steps`` positive. ``hub_token`` is never pickled (``training_args.bin`` holds ``None``).
    """

    _VALID_DICT_FIELDS = BaseConfig._VALID_DICT_FIELDS + ["model_init_kwargs", "chat_template_kwargs"]
    # Fields of this class that describe every method (shown on the model card, with the fields a method's
    # config adds; see `method_hyperparameters`).
    _method_fields: ClassVar[tuple[str, ...]] = ("forget_loss_weight", "retain_loss_weight", "retain_loss_type")
    # Values `retain_loss_type` accepts; a method with its own retain loss (RMU) extends it.
    _retain_loss_types: ClassVar[tuple[str, ...]] = RETAIN_LOSS_TYPES

    # TrainingArguments defaults overridden for unlearning (TOFU reference setup)
    learning_rate: float = field(default=1e-5, metadata={"help": "The initial learning rate for AdamW."})
    weight_decay: float = field(default=0.01, metadata={"help": "Weight decay for AdamW."})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Total number of training epochs."})
    lr_scheduler_type: str = field(
        default="linear", metadata={"help": "Learning-rate schedule (linear decay after the warm-up by default)."}
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "Use bf16 mixed precision. If not set, it is enabled when a CUDA device with bf16 support is "
            "present (and fp16 is not set), and disabled on CPU."
        },
    )

    # Model
    model_init_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Keyword arguments for `AutoModelForCausalLM.from_pretrained` when the model is a string."},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow models and tokenizers that ship custom Python code."}
    )
    disable_dropout: bool = field(default=True, metadata={"help": "Disable dropout in the model."})

    # Data
    max_length: int | None = field(
        default=2048,
        metadata={"help": "Maximum prompt + completion tokens; raw text is chunked to this length."},
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "System message for chat-rendered question/answer or conversational data."}
    )
    chat_template_kwargs: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "Extra keyword arguments for `apply_chat_template`, e.g. date_string."}
    )
    dataset_num_proc: int | None = field(default=None, metadata={"help": "Processes used to tokenize datasets."})
    pad_to_multiple_of: int | None = field(default=None, metadata={"help": "Pad batches to a multiple of this."})
    pairing_seed: int | None = field(
        default=None, metadata={"help": "Seed of the forget/retain pairing; defaults to `seed`."}
    )
    attention_mask_mode: str = field(
        default="padding",
        metadata={
            "help": "'padding': hide only padding from attention (transformers/TRL behaviour). 'open_unlearning': "
            "also hide every pad-id token inside sequences (EOS-closed chat turns when pad = eos), as "
            "open-unlearning trains.",
            "choices": list(ATTENTION_MASK_MODES),
        },
    )

    # Objective
    forget_loss_weight: float = field(default=1.0, metadata={"help": "γ: weight of the forget loss."})
    retain_loss_weight: float = field(default=1.0, metadata={"help": "α: weight of the retain loss."})
    retain_loss_type: str = field(
        default="nll",
        metadata={"help": "Retain loss: 'nll', 'kl' or 'none'.", "choices": list(RETAIN_LOSS_TYPES)},
    )
    precompute_ref_log_probs: bool = field(
        default=False,
        metadata={"help": "Precompute the forget set's reference log-probs and hold no reference model."},
    )
    precompute_ref_batch_size: int | None = field(
        default=None, metadata={"help": "Batch size for precomputing reference log-probs."}
    )
    warmup_epochs: float = field(
        default=1.0, metadata={"help": "Linear warm-up length in epochs (used when `warmup_steps` is 0)."}
    )

    def __post_init__(self):
        check_finite_fields(self)
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            check_positive(name, getattr(self, name))
        for name in ("max_length", "pad_to_multiple_of", "precompute_ref_batch_size", "dataset_num_proc"):
            check_positive(name, getattr(self, name), allow_none=True)
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError(
                f"`num_train_epochs`={self.num_train_epochs} with no `max_steps`: there is nothing to train. Set "
                "`num_train_epochs` > 0 or `max_steps` > 0."
            )
        if self.bf16 is None:
            import torch

            self.bf16 = bool(not self.fp16 and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        if self.retain_loss_type not in self._retain_loss_types:
            raise ValueError(
                f"`retain_loss_type` must be one of {self._retain_loss_types}, got {self.retain_loss_type!r}."
            )
        check_attention_mask_mode(self.attention_mask_mode)
        if self.forget_loss_weight < 0 or self.retain_loss_weight < 0:
            raise ValueError("`forget_loss_weight` and `retain_loss_weight` must be non-negative.")
        if self.warmup_epochs < 0:
            raise ValueError("`warmup_epochs` must be non-negative.")
        if not self.warmup_steps and self.warmup_epochs and self.num_train_epochs > 0 and self.max_steps <= 0:
            # TrainingArguments reads a float in (0, 1) as a ratio of the total steps.
            ratio = self.warmup_epochs / self.num_train_epochs
            self.warmup_steps = ratio if ratio < 1 else 0.999999
        if self.pairing_seed is None:
            self.pairing_seed = self.seed
        super().__post_init__()

    # Tokens (``hub_token``) are never pickled: the Trainer writes this object to
    # ``training_args.bin`` in the output folder and every checkpoint, and pushes that file.
    # Copies made in memory keep them.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in state:
            if name.endswith("_token") and isinstance(state[name], str):
                state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __copy__(self):
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo):
        import copy

        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        return clone

    @property
    def uses_retain(self) -> bool:
        """Whether the retain set contributes to the loss."""
        return self.retain_loss_type != "none" and self.retain_loss_weight > 0

    def method_hyperparameters(self) -> dict[str, Any]:
        """The method's own hyper-parameters (the ones a model card should list).

        The fields a method's config declares beyond :class:`UnlearningConfig` (its overrides of
        training defaults such as ``learning_rate`` excepted), then the loss weights and retain loss.
        """
        shared = {f.name for f in dataclasses.fields(UnlearningConfig)}
        own = [f.name for f in dataclasses.fields(self) if f.name not in shared]
        return {name: getattr(self, name) for name in (*own, *UnlearningConfig._method_fields)}
