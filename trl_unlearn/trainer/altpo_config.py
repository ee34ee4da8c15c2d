from __future__ import annotations

from dataclasses import dataclass, field

from .idkdpo_config import IdkDPOConfig


@dataclass
class AltPOConfig(IdkDPOConfig):
    r"""
    Configuration for `AltPOTrainer` (alternate preference optimization, Mekala et al., arXiv 2409.13474).

    The DPO objective of `IdkDPOConfig` with a plausible alternate answer (the `alternate_column`,
    e.g. made by :func:`trl_unlearn.alternates.generate_alternates`) preferred over the forget
    answer. `refusals` is not used: AltPO needs the column.

    Notes
    -----
    Defaults follow open-unlearning's AltPO recipe: its DPO configuration (β = 0.1, γ = 1, α = 1,
    retain ``"nll"``) run for **2 epochs** at learning rate 1e-5; its search space is β ∈ {0.05,
    0.1, 0.5}, learning rate ∈ {1e-5, 2e-5, 5e-5}, α ∈ {1, 2, 5}.
    """

    num_train_epochs: float = field(default=2.0, metadata={"help": "Total number of training epochs."})
