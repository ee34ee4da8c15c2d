from __future__ import annotations

from dataclasses import dataclass, field

from .alternate_config import AlternateAnswerConfig


@dataclass
class IdkDPOConfig(AlternateAnswerConfig):
    r"""
    Configuration for `IdkDPOTrainer`: DPO with an "I don't know" answer preferred over the forget answer.

    ``L_forget = −(2/β)·log σ(β·[(log π_θ(y_idk) − log π_ref(y_idk)) − (log π_θ(y) − log π_ref(y))])``
    with sequence-summed completion log-probabilities, averaged over forget examples.

    Parameters
    ----------
    beta : float, defaults to 0.1
        Inverse temperature β.

    Notes
    -----
    Defaults follow open-unlearning's DPO configuration (its TOFU IDK experiment): β = 0.1,
    γ = 1, α = 1, retain loss ``"nll"``, learning rate 1e-5, weight decay 0.01, 10 epochs with one
    warm-up epoch.
    """

    beta: float = field(default=0.1, metadata={"help": "Inverse temperature β of the DPO loss."})

    def __post_init__(self):
        if self.beta <= 0:
            raise ValueError(f"`beta` must be positive, got {self.beta}.")
        super().__post_init__()
