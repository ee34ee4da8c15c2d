from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class SimNPOConfig(UnlearningConfig):
    r"""
    Configuration for `SimNPOTrainer` (SimNPO, arXiv 2410.07163): reference-free, length-normalised NPO.

    ``L_forget = −(2/β)·log σ(β·(NLL(y|x)/|y| − δ))``. Defaults follow open-unlearning:
    β = 4.5, δ = 0, γ = 0.125, α = 1 (retain `"nll"`).

    Parameters
    ----------
    beta : float
        Inverse temperature β.
    delta : float
        Reward margin δ.
    """

    beta: float = field(default=4.5, metadata={"help": "Inverse temperature β of the SimNPO loss."})
    delta: float = field(default=0.0, metadata={"help": "Reward margin δ of the SimNPO loss."})
    forget_loss_weight: float = field(default=0.125, metadata={"help": "γ: weight of the forget loss."})

    def __post_init__(self):
        if self.beta <= 0:
            raise ValueError(f"`beta` must be positive, got {self.beta}.")
        super().__post_init__()
