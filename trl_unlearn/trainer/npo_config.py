from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class NPOConfig(UnlearningConfig):
    r"""
    Configuration for `NPOTrainer` (Negative Preference Optimization, arXiv 2404.05868).

    Inherits every field of `UnlearningConfig` and `transformers.TrainingArguments`. The forget loss
    is ``-(2/β) · log σ(-β · (log π_θ(y|x) − log π_ref(y|x)))`` with completion log-probabilities summed
    over tokens (EOS included); the total loss adds ``retain_loss_weight`` times the retain loss.

    Parameters
    ----------
    beta : float, defaults to 0.1
        Inverse temperature β of the NPO loss.

    Notes
    -----
    Defaults follow open-unlearning's NPO setup: β = 0.1, γ = 1, α = 1, retain loss ``"nll"``,
    learning rate 1e-5, weight decay 0.01, one warm-up epoch.
    """

    beta: float = field(default=0.1, metadata={"help": "Inverse temperature β of the NPO loss."})

    def __post_init__(self):
        if self.beta <= 0:
            raise ValueError(f"`beta` must be positive, got {self.beta}.")
        super().__post_init__()
