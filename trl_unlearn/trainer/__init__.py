"""Unlearning trainers and their configurations (one file per config and per trainer)."""

from .altpo_config import AltPOConfig
from .altpo_trainer import AltPOTrainer
from .ceu_config import CEUConfig
from .ceu_trainer import CEUTrainer
from .dipo_config import DiPOConfig
from .dipo_trainer import DiPOTrainer
from .grad_ascent_config import GradAscentConfig
from .grad_ascent_trainer import GradAscentTrainer
from .grad_diff_config import GradDiffConfig
from .grad_diff_trainer import GradDiffTrainer
from .idkdpo_config import IdkDPOConfig
from .idkdpo_trainer import IdkDPOTrainer
from .idknll_config import IdkNLLConfig
from .idknll_trainer import IdkNLLTrainer
from .npo_config import NPOConfig
from .npo_trainer import NPOTrainer
from .pdu_config import PDUConfig
from .pdu_trainer import PDUTrainer
from .rmu_config import RMUConfig
from .rmu_trainer import RMUTrainer
from .satimp_config import SatImpConfig
from .satimp_trainer import SatImpTrainer
from .simnpo_config import SimNPOConfig
from .simnpo_trainer import SimNPOTrainer
from .undial_config import UNDIALConfig
from .undial_trainer import UNDIALTrainer
from .unlearning_config import UnlearningConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer
from .wga_config import WGAConfig
from .wga_trainer import WGATrainer

__all__ = [
    "AltPOConfig",
    "AltPOTrainer",
    "CEUConfig",
    "CEUTrainer",
    "DiPOConfig",
    "DiPOTrainer",
    "ForgetTerm",
    "GradAscentConfig",
    "GradAscentTrainer",
    "GradDiffConfig",
    "GradDiffTrainer",
    "IdkDPOConfig",
    "IdkDPOTrainer",
    "IdkNLLConfig",
    "IdkNLLTrainer",
    "NPOConfig",
    "NPOTrainer",
    "PDUConfig",
    "PDUTrainer",
    "RMUConfig",
    "RMUTrainer",
    "SatImpConfig",
    "SatImpTrainer",
    "SimNPOConfig",
    "SimNPOTrainer",
    "UNDIALConfig",
    "UNDIALTrainer",
    "UnlearningConfig",
    "UnlearningTrainer",
    "WGAConfig",
    "WGATrainer",
]

# Method name -> (trainer, config), used by the CLI.
METHODS = {
    "npo": (NPOTrainer, NPOConfig),
    "dipo": (DiPOTrainer, DiPOConfig),
    "simnpo": (SimNPOTrainer, SimNPOConfig),
    "gradascent": (GradAscentTrainer, GradAscentConfig),
    "graddiff": (GradDiffTrainer, GradDiffConfig),
    "idkdpo": (IdkDPOTrainer, IdkDPOConfig),
    "altpo": (AltPOTrainer, AltPOConfig),
    "idknll": (IdkNLLTrainer, IdkNLLConfig),
    "undial": (UNDIALTrainer, UNDIALConfig),
    "wga": (WGATrainer, WGAConfig),
    "satimp": (SatImpTrainer, SatImpConfig),
    "ceu": (CEUTrainer, CEUConfig),
    "rmu": (RMUTrainer, RMUConfig),
    "pdu": (PDUTrainer, PDUConfig),
}
