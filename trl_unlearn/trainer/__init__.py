"""Unlearning trainers and their configurations (one file per config and per trainer)."""

from .dipo_config import DiPOConfig
from .dipo_trainer import DiPOTrainer
from .grad_ascent_config import GradAscentConfig
from .grad_ascent_trainer import GradAscentTrainer
from .grad_diff_config import GradDiffConfig
from .grad_diff_trainer import GradDiffTrainer
from .npo_config import NPOConfig
from .npo_trainer import NPOTrainer
from .simnpo_config import SimNPOConfig
from .simnpo_trainer import SimNPOTrainer
from .unlearning_config import UnlearningConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer

__all__ = [
    "DiPOConfig",
    "DiPOTrainer",
    "ForgetTerm",
    "GradAscentConfig",
    "GradAscentTrainer",
    "GradDiffConfig",
    "GradDiffTrainer",
    "NPOConfig",
    "NPOTrainer",
    "SimNPOConfig",
    "SimNPOTrainer",
    "UnlearningConfig",
    "UnlearningTrainer",
]

# Method name -> (trainer, config), used by the CLI.
METHODS = {
    "npo": (NPOTrainer, NPOConfig),
    "dipo": (DiPOTrainer, DiPOConfig),
    "simnpo": (SimNPOTrainer, SimNPOConfig),
    "gradascent": (GradAscentTrainer, GradAscentConfig),
    "graddiff": (GradDiffTrainer, GradDiffConfig),
}
