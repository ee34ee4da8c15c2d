from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class GradAscentConfig(UnlearningConfig):
    r"""
    Configuration for `GradAscentTrainer`: maximise the forget set's token cross-entropy.

    Defaults follow open-unlearning: γ = 1, α = 0 (no retain term). The loss is unbounded below:
    long runs collapse the model, which is why NPO and DiPO exist.
    """

    retain_loss_weight: float = field(default=0.0, metadata={"help": "α: weight of the retain loss."})
    retain_loss_type: str = field(
        default="none", metadata={"help": "Retain loss: 'nll', 'kl' or 'none'.", "choices": ["nll", "kl", "none"]}
    )
