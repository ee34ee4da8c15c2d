from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class UNDIALConfig(UnlearningConfig):
    r"""
    Configuration for `UNDIALTrainer` (self-distillation with adjusted logits, Dong et al., arXiv 2402.10052).

    At every forget completion position the target is the reference model's distribution with
    the true token's logit lowered by β, ``q = softmax(ℓ_ref − β·onehot(y_t))``, and the loss is
    the cross-entropy ``−Σ_v q(v) log π_θ(v)``, averaged over completion tokens.

    Parameters
    ----------
    beta : float, defaults to 10.0
        How far the true token's logit is lowered in the target.

    Notes
    -----
    Defaults follow open-unlearning's UNDIAL configuration: β = 10, γ = 1, **α = 0** (no retain
    term, as in the paper), learning rate 1e-4, 10 epochs.
    """

    beta: float = field(default=10.0, metadata={"help": "Logit penalty β on the true token in the target."})
    retain_loss_weight: float = field(default=0.0, metadata={"help": "α: weight of the retain loss."})
    learning_rate: float = field(default=1e-4, metadata={"help": "The initial learning rate for AdamW."})

    def __post_init__(self):
        if self.beta < 0:
            raise ValueError(f"`beta` must be non-negative, got {self.beta}.")
        super().__post_init__()
