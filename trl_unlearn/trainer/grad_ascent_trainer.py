from __future__ import annotations

from .. import losses
from .grad_ascent_config import GradAscentConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


class GradAscentTrainer(UnlearningTrainer):
    r"""
    Gradient ascent on the forget set: ``L_forget = −mean_token_CE(forget)``.

    The simplest unlearning baseline (reference-free). Its loss is unbounded below, so it is
    usually run for few steps. `GradDiffTrainer` adds a retain term.
    """

    config_class = GradAscentConfig
    _name = "GradAscent"
    forget_reference = "none"

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        _, log_probs, mask = self.policy_forward(model, inputs, "forget")
        # sum of token log-probs = minus the summed token CE; normalised per token by the trainer
        values = -losses.token_nll_sums(log_probs, mask)
        return ForgetTerm(values=values, reduction="tokens",
                          metrics={"logps/forget_policy": log_probs.detach().sum(-1).mean()})
