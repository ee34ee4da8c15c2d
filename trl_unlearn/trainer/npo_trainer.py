from __future__ import annotations

from .. import losses
from .npo_config import NPOConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


class NPOTrainer(UnlearningTrainer):
    r"""
    Trainer for Negative Preference Optimization ([Zhang et al., 2024](https://arxiv.org/abs/2404.05868)).

    NPO treats every forget completion as a dispreferred response with no preferred counterpart:
    ``L_forget = -(2/β) · log σ(-β · (log π_θ(y|x) − log π_ref(y|x)))``, averaged over forget examples,
    with completion log-probabilities summed over tokens (EOS included, prompt masked). Unlike
    gradient ascent the loss is bounded below, so training slows down instead of collapsing.

    Takes every argument of `UnlearningTrainer`; see `NPOConfig` for the hyper-parameters.

    Examples
    --------
    ```python
    from datasets import load_dataset
    from trl_unlearn import NPOConfig, NPOTrainer

    forget = load_dataset("locuslab/TOFU", "forget10", split="train")
    retain = load_dataset("locuslab/TOFU", "retain90", split="train")
    trainer = NPOTrainer(
        model="open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
        args=NPOConfig(output_dir="Llama-3.2-1B-NPO-forget10"),
        forget_dataset=forget,
        retain_dataset=retain,
    )
    trainer.train()
    ```
    """

    config_class = NPOConfig
    _name = "NPO"
    _paper = {
        "title": "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning",
        "id": "2404.05868",
        "citation": (
            "@inproceedings{zhang2024negative,\n"
            "    title     = {{Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning}},\n"
            "    author    = {Ruiqi Zhang and Licong Lin and Yu Bai and Song Mei},\n"
            "    booktitle = {First Conference on Language Modeling},\n"
            "    year      = {2024}\n"
            "}"
        ),
    }
    forget_reference = "logps"

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        reference_logps = self.reference_sequence_logps(model, inputs)
        _, log_probs, mask = self.policy_forward(model, inputs, "forget")
        policy_logps = log_probs.sum(-1)
        values = losses.npo_loss(policy_logps, reference_logps, self.args.beta)
        log_ratio = (policy_logps - reference_logps).detach()
        return ForgetTerm(
            values=values,
            reduction="examples",
            metrics={
                "logps/forget_policy": policy_logps.detach().mean(),
                "logps/forget_reference": reference_logps.detach().mean(),
                "log_ratio": log_ratio.mean(),
            },
        )
