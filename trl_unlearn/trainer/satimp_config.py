from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class SatImpConfig(UnlearningConfig):
    r"""
    Configuration for `SatImpTrainer` (saturation-importance token reweighting, Yang et al., arXiv 2505.11953).

    ``L_forget = mean_t( p_t^β1 · (1 − p_t)^β2 · log p_t )`` over the forget completion tokens,
    with the weight detached.

    Parameters
    ----------
    beta1 : float, defaults to 5.0
        Exponent of ``p`` (importance: favour tokens the model is sure of).
    beta2 : float, defaults to 1.0
        Exponent of ``1 − p`` (saturation: spare tokens that are already near certain).

    Notes
    -----
    Defaults follow open-unlearning's SatImp configuration: β1 = 5, β2 = 1, **γ = 0.1**, α = 1,
    retain loss ``"nll"``, learning rate 1e-5, 5 epochs. (Open-unlearning's SatImp README describes
    γ = 1, α = 0.1; its configuration file, which is what runs, sets γ = 0.1, α = 1.)
    """

    beta1: float = field(default=5.0, metadata={"help": "Exponent β1 of p in the token weight p^β1·(1−p)^β2."})
    beta2: float = field(default=1.0, metadata={"help": "Exponent β2 of (1−p) in the token weight p^β1·(1−p)^β2."})
    forget_loss_weight: float = field(default=0.1, metadata={"help": "γ: weight of the forget loss."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Total number of training epochs."})

    def __post_init__(self):
        if self.beta1 < 0 or self.beta2 < 0:
            raise ValueError(f"`beta1` and `beta2` must be non-negative, got {self.beta1}, {self.beta2}.")
        super().__post_init__()
