from __future__ import annotations

from .. import losses
from . import _papers
from .satimp_config import SatImpConfig
from .wga_trainer import WGATrainer


class SatImpTrainer(WGATrainer):
    r"""
    SatImp token reweighting ([Yang et al., 2025](https://arxiv.org/abs/2505.11953)).

    ``L_forget = mean_t(p_t^β1 · (1 − p_t)^β2 · log p_t)`` over the forget completion tokens, the
    weight detached. Reference-free; see `SatImpConfig`.
    """

    config_class = SatImpConfig
    _name = "SatImp"
    _paper = _papers.SATIMP

    def token_weights(self, log_probs):
        return losses.satimp_weights(log_probs, self.args.beta1, self.args.beta2)
