from __future__ import annotations

from .. import losses
from . import _papers
from .alternate_trainer import AlternateAnswerTrainer
from .idkdpo_config import IdkDPOConfig
from .unlearning_trainer import ForgetTerm


class IdkDPOTrainer(AlternateAnswerTrainer):
    r"""
    DPO towards "I don't know" (IdkDPO, as in open-unlearning's TOFU IDK experiment).

    ``L_forget = −(2/β)·log σ(β·[(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))])``
    with ``y_w`` the "I don't know" answer, ``y_l`` the forget answer and completion log-probs
    summed over tokens; averaged over forget examples. Works with every reference mode, including
    `precompute_ref_log_probs` (both answers' reference log-probs are stored). Logged:
    `logps/chosen_policy`, `logps/rejected_policy`, `rewards/margin`.
    """

    config_class = IdkDPOConfig
    _name = "IdkDPO"
    _paper = _papers.TOFU
    forget_reference = "logps"

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        chosen_ref = self.reference_sequence_logps(model, inputs, "forget_alternate")
        rejected_ref = self.reference_sequence_logps(model, inputs, "forget")
        chosen = self.policy_forward(model, inputs, "forget_alternate")[1].sum(-1)
        rejected = self.policy_forward(model, inputs, "forget")[1].sum(-1)
        values = losses.dpo_loss(chosen, chosen_ref, rejected, rejected_ref, self.args.beta)
        margin = ((chosen - chosen_ref) - (rejected - rejected_ref)).detach()
        return ForgetTerm(values=values, reduction="examples", metrics={
            "logps/chosen_policy": chosen.detach().mean(),
            "logps/rejected_policy": rejected.detach().mean(),
            "logps/forget_policy": rejected.detach().mean(),
            "rewards/margin": margin.mean(),
        })
