"""Unlearning trainers and their configurations (one file per config and per trainer)."""

from .npo_config import NPOConfig
from .npo_trainer import NPOTrainer
from .unlearning_config import UnlearningConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer

__all__ = ["ForgetTerm", "NPOConfig", "NPOTrainer", "UnlearningConfig", "UnlearningTrainer"]
