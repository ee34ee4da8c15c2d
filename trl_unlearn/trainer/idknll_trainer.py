from __future__ import annotations

from .. import losses
from . import _papers
from .alternate_trainer import AlternateAnswerTrainer
from .idknll_config import IdkNLLConfig
from .unlearning_trainer import ForgetTerm


class IdkNLLTrainer(AlternateAnswerTrainer):
    r"""
    "I don't know" fine-tuning (the IDK baseline of [TOFU](https://arxiv.org/abs/2401.06121)).

    ``L_forget`` is the mean token cross-entropy of the "I don't know" answers to the forget
    questions (the forget answers themselves are not used); the total adds α times the retain
    loss. Reference-free. The answers come from the `alternate_column` or are drawn from the
    refusal list; see `IdkNLLConfig`.
    """

    config_class = IdkNLLConfig
    _name = "IdkNLL"
    _paper = _papers.TOFU
    forget_reference = "none"

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        _, log_probs, mask = self.policy_forward(model, inputs, "forget_alternate")
        return ForgetTerm(values=losses.token_nll_sums(log_probs, mask), reduction="tokens", part="forget_alternate",
                          metrics={"logps/alternate_policy": log_probs.detach().sum(-1).mean()})
