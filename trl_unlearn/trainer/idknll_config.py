from __future__ import annotations

from dataclasses import dataclass

from .alternate_config import AlternateAnswerConfig


@dataclass
class IdkNLLConfig(AlternateAnswerConfig):
    r"""
    Configuration for `IdkNLLTrainer`: fine-tune every forget question towards an "I don't know" answer.

    ``L_forget`` is the mean token cross-entropy of the alternate ("I don't know") answers; the
    total adds ``retain_loss_weight`` (α = 1) times the retain NLL. See `AlternateAnswerConfig`
    for where the answers come from.
    """
