from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class CEUConfig(UnlearningConfig):
    r"""
    Configuration for `CEUTrainer` (cross-entropy unlearning, CE-U, arXiv 2503.01224).

    At every forget completion position the target is the model's own detached distribution with
    the true token removed (its logit set to −∞), and the loss is the cross-entropy to it,
    averaged over the scored positions. The first `ignore_first_n_answer_tokens` completion tokens
    are not scored.

    Parameters
    ----------
    ignore_first_n_answer_tokens : int, defaults to 1
        Completion tokens at the start of every answer that carry no loss.

    Notes
    -----
    Defaults follow open-unlearning's CE-U configuration: `ignore_first_n_answer_tokens=1`,
    γ = 1 and no retain term (open-unlearning's CE-U trains on the forget set only).
    """

    ignore_first_n_answer_tokens: int = field(
        default=1, metadata={"help": "Completion tokens at the start of every answer that carry no loss."}
    )
    retain_loss_weight: float = field(default=0.0, metadata={"help": "α: weight of the retain loss."})
    retain_loss_type: str = field(
        default="none", metadata={"help": "Retain loss: 'nll', 'kl' or 'none'.", "choices": ["nll", "kl", "none"]}
    )

    def __post_init__(self):
        if self.ignore_first_n_answer_tokens < 0:
            raise ValueError(
                f"`ignore_first_n_answer_tokens` must be non-negative, got {self.ignore_first_n_answer_tokens}."
            )
        super().__post_init__()
