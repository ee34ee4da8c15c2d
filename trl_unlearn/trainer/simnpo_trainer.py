from __future__ import annotations

from .. import losses
from .simnpo_config import SimNPOConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


class SimNPOTrainer(UnlearningTrainer):
    r"""
    SimNPO ([Fan et al., 2024](https://arxiv.org/abs/2410.07163)): NPO without a reference model.

    ``L_forget = −(2/β)·log σ(β·(NLL(y|x)/|y| − δ))`` with the length-normalised sequence NLL.
    It holds no reference model (``trainer.ref_model is None``) unless `retain_loss_type="kl"`.
    """

    config_class = SimNPOConfig
    _name = "SimNPO"
    _paper = {
        "title": "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning",
        "id": "2410.07163",
        "citation": (
            "@article{fan2024simplicity,\n"
            "    title   = {{Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning}},\n"
            "    author  = {Chongyu Fan and Jiancheng Liu and Licong Lin and Jinghan Jia and Ruiqi Zhang and Song Mei "
            "and Sijia Liu},\n"
            "    journal = {arXiv preprint arXiv:2410.07163},\n"
            "    year    = {2024}\n"
            "}"
        ),
    }
    forget_reference = "none"

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        _, log_probs, mask = self.policy_forward(model, inputs, "forget")
        policy_logps = log_probs.sum(-1)
        num_tokens = mask.sum(-1).to(policy_logps.dtype)
        values = losses.simnpo_loss(policy_logps, num_tokens, self.args.beta, self.args.delta)
        return ForgetTerm(values=values, reduction="examples",
                          metrics={"logps/forget_policy": policy_logps.detach().mean(),
                                   "logps/forget_policy_per_token": (policy_logps / num_tokens).detach().mean()})
