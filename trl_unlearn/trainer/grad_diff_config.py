from __future__ import annotations

from dataclasses import dataclass

from .unlearning_config import UnlearningConfig


@dataclass
class GradDiffConfig(UnlearningConfig):
    r"""
    Configuration for `GradDiffTrainer`: gradient ascent on the forget set plus descent on the retain set.

    Defaults follow open-unlearning: γ = 1, α = 1, retain loss `"nll"`.
    """
