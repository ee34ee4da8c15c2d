from __future__ import annotations

import torch

from .. import losses
from . import _papers
from .ceu_config import CEUConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


class CEUTrainer(UnlearningTrainer):
    r"""
    Cross-entropy unlearning, CE-U ([Yang, 2025](https://arxiv.org/abs/2503.01224)).

    At every scored forget completion position the target is the model's own detached
    distribution with the true token removed, ``q_t = softmax(ℓ_t with ℓ_t[y_t] = −∞)``, and the
    loss is ``−Σ_v q_t(v)·log π_θ(v | x, y_<t)`` averaged over the scored positions of the batch.
    The first `ignore_first_n_answer_tokens` completion tokens of every answer are not scored.
    Reference-free; see `CEUConfig`.
    """

    config_class = CEUConfig
    _name = "CE-U"
    _paper = _papers.CEU
    forget_reference = "none"

    def scored_forget_mask(self, labels: torch.Tensor) -> torch.Tensor:
        valid = labels != -100
        skipped = valid & (valid.cumsum(-1) <= self.args.ignore_first_n_answer_tokens)
        return (valid & ~skipped)[:, 1:]

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        labels = inputs["forget_labels"]
        mask = self.scored_forget_mask(labels)
        targets = labels[:, 1:][mask]
        logits, log_probs, _ = self.policy_forward(model, inputs, "forget")
        scored = logits[:, :-1][mask]
        per_position = losses.soft_cross_entropy(scored, losses.ceu_targets(scored, targets))
        return ForgetTerm(values=losses.sum_over_examples(per_position, mask), reduction="tokens",
                          metrics={"logps/forget_policy": log_probs.detach().sum(-1).mean()})
