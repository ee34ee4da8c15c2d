from __future__ import annotations

from .grad_ascent_trainer import GradAscentTrainer
from .grad_diff_config import GradDiffConfig


class GradDiffTrainer(GradAscentTrainer):
    r"""
    Gradient difference: gradient ascent on the forget set plus the retain loss (NLL by default).

    ``L = γ·(−mean_token_CE(forget)) + α·L_retain``; reference-free unless `retain_loss_type="kl"`.
    """

    config_class = GradDiffConfig
    _name = "GradDiff"
