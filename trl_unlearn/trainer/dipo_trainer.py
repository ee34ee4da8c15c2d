from __future__ import annotations

import logging

import torch

from .. import losses
from ..checks import vocabulary_sizes
from .dipo_config import DiPOConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer

logger = logging.getLogger(__name__)


class DiPOTrainer(UnlearningTrainer):
    r"""
    Trainer for Distribution Preference Optimization (arXiv [2510.04773](https://arxiv.org/abs/2510.04773)).

    DiPO turns each forget position into a preference between two next-token distributions built
    from the logits: the forgetting-promoting one (mass taken off the model's high-confidence
    tokens) is preferred over the memory-promoting one (mass added to them). With token-level DPO
    rewards the partition function cancels, giving the margin
    ``m = Σ_t [KL(p⁻‖π_θ) − KL(p⁺‖π_θ)] − [KL(p⁻‖π_ref) − KL(p⁺‖π_ref)]`` and the loss
    ``−(2/β)·log σ(β·m)``: ``(2/β)·log 2`` at π_θ = π_ref and bounded below.

    It needs the reference's full next-token distributions, so it supports an explicit
    `ref_model`, the LoRA adapter-disabled reference and the frozen copy, not precomputed log-probs.
    Only completion positions are kept, and the preference terms are computed in chunks of
    `dipo_chunk_size` positions, so a single ``[batch, length, vocab]`` reference tensor exists at
    a time.

    Logged per step: `dipo/margin`, `dipo/kl_policy`, `dipo/kl_reference`, `dipo/set_mass`.
    """

    config_class = DiPOConfig
    _name = "DiPO"
    _paper = {
        "title": "Distribution Preference Optimization: A Fine-grained Perspective for LLM Unlearning",
        "id": "2510.04773",
        "citation": (
            "@article{dipo2025,\n"
            "    title   = {{Distribution Preference Optimization: A Fine-grained Perspective for LLM Unlearning}},\n"
            "    author  = {Kai Qin and Jiaqi Wu and Jianxiang He and Haoyuan Sun and Yifei Zhao and Bin Liang and Yongzhe Chang and Tiantian Zhang and Houde Liu},\n"
            "    journal = {arXiv preprint arXiv:2510.04773},\n"
            "    year    = {2025}\n"
            "}"
        ),
    }
    forget_reference = "logits"
    dipo_chunk_size = 1024  # completion positions per chunk of the full-vocabulary computation
    _set_checked = False

    def _check_settings(self, model, args) -> None:
        """A ``top_k`` of the whole vocabulary makes p⁺ = p⁻: the gradient is zero."""
        vocabulary = vocabulary_sizes(model)[1]
        if args.probability_threshold is None and vocabulary is not None and args.top_k >= vocabulary:
            raise ValueError(
                f"DiPO's `top_k`={args.top_k} is at least the vocabulary size ({vocabulary}): every token is in the "
                "high-confidence set, both preference distributions are equal and nothing is unlearned. Use a "
                "`top_k` far below the vocabulary size (default 20)."
            )

    def _check_set_once(self, source_logits: torch.Tensor) -> None:
        """Warn once when the high-confidence set is the whole vocabulary at every position of a batch
        (a tiny `probability_threshold`): the preference pair is then equal and the gradient zero."""
        self._set_checked = True
        args = self.args
        with torch.no_grad():
            _, _, in_set = losses.preference_distributions(
                source_logits, args.strength, args.top_k, args.probability_threshold
            )
            full = in_set.all(-1)
        if full.numel() and bool(full.all()):
            logger.warning(
                "DiPO's high-confidence set holds all %d tokens at every one of the %d forget positions of the first "
                "batch (probability_threshold=%s, top_k=%s): p⁺ = p⁻, the forget gradient is zero and nothing is "
                "unlearned. Raise `probability_threshold` (e.g. 0.05) or use `top_k`.",
                in_set.shape[-1], full.numel(), args.probability_threshold, args.top_k,
            )

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        args = self.args
        labels = inputs["forget_labels"]
        mask = labels[:, 1:] != -100
        targets = labels[:, 1:][mask]
        reference_logits = self.reference_logits(model, inputs, "forget")[:, :-1][mask]  # [positions, vocab]
        policy_logits = self.logits(model, inputs, "forget")[:, :-1][mask]

        terms: dict[str, list[torch.Tensor]] = {
            "margin": [], "kl_policy": [], "kl_reference": [], "set_mass": [], "target_log_probs": []
        }
        for start in range(0, policy_logits.shape[0], self.dipo_chunk_size):
            chunk = slice(start, start + self.dipo_chunk_size)
            source = reference_logits[chunk] if args.logits_source == "reference" else policy_logits[chunk].detach()
            if not self._set_checked:
                self._check_set_once(source)
            out = losses.dipo_position_terms(
                source, policy_logits[chunk], reference_logits[chunk], args.strength, args.top_k,
                args.probability_threshold, targets=targets[chunk],
            )
            for key in terms:
                terms[key].append(out[key])
        del reference_logits
        # scatter the per-position terms back to examples and sum over each completion
        example_index = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1).expand_as(mask)[mask]
        per_example = {}
        for key, chunks in terms.items():
            values = torch.cat(chunks)
            per_example[key] = torch.zeros(mask.shape[0], dtype=values.dtype, device=values.device).index_add(
                0, example_index, values
            )
        num_tokens = mask.sum(-1).clamp(min=1).to(per_example["margin"].dtype)
        margin = per_example["margin"] / num_tokens if args.length_normalize else per_example["margin"]
        return ForgetTerm(
            values=losses.dipo_loss(margin, args.beta),
            reduction="examples",
            metrics={
                "dipo/margin": margin.detach().mean(),
                "dipo/kl_policy": per_example["kl_policy"].mean(),
                "dipo/kl_reference": per_example["kl_reference"].mean(),
                "dipo/set_mass": (per_example["set_mass"] / num_tokens).mean(),
                "logps/forget_policy": per_example["target_log_probs"].mean(),
            },
        )
