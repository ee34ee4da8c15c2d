from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class WGAConfig(UnlearningConfig):
    r"""
    Configuration for `WGATrainer` (weighted gradient ascent, Wang et al., arXiv 2502.19301).

    ``L_forget = mean_t( p_t^β · log p_t )`` over the forget completion tokens, where
    ``p_t = π_θ(y_t | x, y_<t)`` and the weight ``p_t^β`` is detached: tokens the model still
    predicts well are pushed hardest, tokens already forgotten barely move.

    Parameters
    ----------
    beta : float, defaults to 1.0
        Exponent β of the token weight (β = 0 is plain gradient ascent).

    Notes
    -----
    Defaults follow open-unlearning's WGA configuration: β = 1, γ = 1, α = 1, retain loss
    ``"nll"``, learning rate 1e-5, 5 epochs.
    """

    beta: float = field(default=1.0, metadata={"help": "Exponent β of the detached token weight p^β."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Total number of training epochs."})

    def __post_init__(self):
        if self.beta < 0:
            raise ValueError(f"`beta` must be non-negative, got {self.beta}.")
        super().__post_init__()
