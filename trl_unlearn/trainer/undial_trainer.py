from __future__ import annotations

from .. import losses
from . import _papers
from .undial_config import UNDIALConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


class UNDIALTrainer(UnlearningTrainer):
    r"""
    UNDIAL, self-distillation with adjusted logits ([Dong et al., 2024](https://arxiv.org/abs/2402.10052)).

    At every forget completion position ``t`` the target is
    ``q_t = softmax(ℓ_ref,t − β·onehot(y_t))``, the reference model's distribution with the true
    token's logit lowered by β; the loss is ``−Σ_v q_t(v)·log π_θ(v | x, y_<t)`` averaged over the
    completion tokens of the batch.

    It needs the reference's full next-token distributions: an explicit `ref_model`, the LoRA
    adapter-disabled model, or a frozen copy, not precomputed log-probs. Prompt and padding
    positions carry no loss (open-unlearning averages over them too; see the docs).
    """

    config_class = UNDIALConfig
    _name = "UNDIAL"
    _paper = _papers.UNDIAL
    forget_reference = "logits"

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        labels = inputs["forget_labels"]
        mask = labels[:, 1:] != -100
        targets = labels[:, 1:][mask]
        reference = self.reference_logits(model, inputs, "forget")[:, :-1][mask]
        target_probs = losses.undial_targets(reference, targets, self.args.beta)
        del reference
        logits, log_probs, _ = self.policy_forward(model, inputs, "forget")
        per_position = losses.soft_cross_entropy(logits[:, :-1][mask], target_probs)
        return ForgetTerm(values=losses.sum_over_examples(per_position, mask), reduction="tokens", metrics={
            "logps/forget_policy": log_probs.detach().sum(-1).mean(),
            "undial/target_true_token_prob": target_probs.gather(-1, targets.unsqueeze(-1)).mean(),
        })
