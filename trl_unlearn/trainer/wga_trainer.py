from __future__ import annotations

from .. import losses
from . import _papers
from .unlearning_trainer import ForgetTerm, UnlearningTrainer
from .wga_config import WGAConfig


class WGATrainer(UnlearningTrainer):
    r"""
    Weighted gradient ascent ([Wang et al., 2025](https://arxiv.org/abs/2502.19301)).

    ``L_forget = mean_t(p_t^β · log p_t)`` over the forget completion tokens of the batch, with the
    weight ``p_t^β`` detached; the total adds ``retain_loss_weight`` times the retain loss.
    Reference-free; see `WGAConfig`.
    """

    config_class = WGAConfig
    _name = "WGA"
    _paper = _papers.WGA
    forget_reference = "none"

    def token_weights(self, log_probs):
        """Detached per-token weights of the ascent (``p^β``)."""
        return losses.wga_weights(log_probs, self.args.beta)

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        _, log_probs, mask = self.policy_forward(model, inputs, "forget")
        weights = self.token_weights(log_probs)
        values = losses.weighted_log_prob_sums(log_probs, mask, weights)
        n_tokens = mask.sum().clamp(min=1)
        return ForgetTerm(values=values, reduction="tokens", metrics={
            "logps/forget_policy": log_probs.detach().sum(-1).mean(),
            "token_weight_mean": (weights * mask).sum() / n_tokens,
        })
