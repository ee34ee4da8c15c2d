from __future__ import annotations

import torch
from transformers import TrainerCallback

from .. import losses
from . import _papers
from .pdu_config import PDUConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


class _DualAscentCallback(TrainerCallback):
    """Runs PDU's dual update after every optimizer step and at every epoch end."""

    def __init__(self, trainer: PDUTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._dual_step_end()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer._dual_epoch_end(state.epoch)


class PDUTrainer(UnlearningTrainer):
    r"""
    Primal-dual unlearning, PDU ([Entesari et al., 2025](https://arxiv.org/abs/2506.05314)).

    Forget loss: logit-margin flattening ``(max_v ℓ_v − mean_v ℓ_v)²`` averaged over the forget
    completion positions (it is zero when the next-token distribution is uniform). The retain loss
    is a constraint ``L_retain ≤ ε``; the loss is ``γ·L_forget + λ·(L_retain − ε)`` and the dual
    variable λ (:attr:`dual_variable`, starting at `retain_loss_weight`) is updated by projected
    ascent ``λ ← max(0, λ + η·(L_retain − ε))`` once `dual_warmup_epochs` epochs are complete:
    after every optimizer step with that step's retain loss, or at every epoch end with the mean
    retain loss over the epoch's batches. λ is logged every step (`pdu/dual_variable`, the value
    the step used), saved in checkpoints and restored on resume. Reference-free unless the retain
    loss is ``"kl"``.

    Attributes
    ----------
    dual_variable : float
        The current λ.
    """

    config_class = PDUConfig
    _name = "PDU"
    _paper = _papers.PDU
    forget_reference = "none"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dual_variable = float(self.args.retain_loss_weight)
        self.dual_updates_enabled = self.args.dual_warmup_epochs == 0
        self._step_retain_loss = 0.0
        if self.args.primal_dual:
            self.add_callback(_DualAscentCallback(self))

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        mask = inputs["forget_labels"][:, 1:] != -100
        logits, log_probs, _ = self.policy_forward(model, inputs, "forget")
        per_position = losses.logit_margin_flattening(logits[:, :-1][mask])
        return ForgetTerm(values=losses.sum_over_examples(per_position, mask), reduction="tokens",
                          metrics={"logps/forget_policy": log_probs.detach().sum(-1).mean()})

    def total_loss(self, forget_loss, retain_loss, inputs, counts, metrics):
        eps = self.args.retain_loss_eps
        if counts is not None:
            # this micro-batch's share of the step's retain tokens, so that ε is subtracted once per step
            local = (inputs["retain_labels"][:, 1:] != -100).sum()
            eps = eps * local / (counts["retain_tokens"] / self.accelerator.num_processes)
            if self.model.training:
                self._step_retain_loss = self._step_retain_loss + retain_loss.detach()
        metrics["pdu/dual_variable"] = torch.tensor(self.dual_variable, device=forget_loss.device)
        return self.args.forget_loss_weight * forget_loss + self.dual_variable * (retain_loss - eps)

    def _dual_update(self, retain_loss: float) -> None:
        self.dual_variable = max(0.0, self.dual_variable + self.args.dual_step_size * (retain_loss - self.args.retain_loss_eps))

    def _dual_step_end(self) -> None:
        value, self._step_retain_loss = self._step_retain_loss, 0.0
        if not (self.dual_updates_enabled and self.args.dual_update_upon == "step") or not torch.is_tensor(value):
            return
        value = value.reshape(1).float()
        if self.accelerator.num_processes > 1:
            value = self.accelerator.gather(value).mean()
        self._dual_update(value.item())

    def _dual_epoch_end(self, epoch: float) -> None:
        if epoch + 1e-6 >= self.args.dual_warmup_epochs:
            self.dual_updates_enabled = True
            if self.args.dual_update_upon == "epoch":
                self._dual_update(self.epoch_retain_loss())

    @torch.no_grad()
    def epoch_retain_loss(self) -> float:
        """Mean over the epoch's batches (in order, current forget/retain pairing) of the retain loss."""
        was_training = self.model.training
        self.model.eval()
        dataset, size, total, batches = self.train_dataset, self.args.per_device_train_batch_size, 0.0, 0
        for start in range(0, len(dataset), size):
            batch = self.data_collator([dataset[i] for i in range(start, min(start + size, len(dataset)))])
            batch = self._prepare_inputs(batch)
            values = self.compute_retain_values(self.model, batch)
            total += (values.sum() / (batch["retain_labels"][:, 1:] != -100).sum().clamp(min=1)).item()
            batches += 1
        self.model.train(was_training)
        return total / max(batches, 1)

    def method_state(self):
        return {"dual_variable": self.dual_variable, "dual_updates_enabled": self.dual_updates_enabled}

    def load_method_state(self, state) -> None:
        self.dual_variable = float(state["dual_variable"])
        self.dual_updates_enabled = bool(state["dual_updates_enabled"])
