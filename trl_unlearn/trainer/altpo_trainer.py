from __future__ import annotations

from . import _papers
from .altpo_config import AltPOConfig
from .idkdpo_trainer import IdkDPOTrainer


class AltPOTrainer(IdkDPOTrainer):
    r"""
    Alternate preference optimization ([Mekala et al., 2024](https://arxiv.org/abs/2409.13474)).

    The DPO objective of `IdkDPOTrainer` with a plausible alternate answer (the forget data's
    `alternate_column`) preferred over the forget answer, as open-unlearning runs AltPO. Make the
    alternates with the model itself with :func:`trl_unlearn.alternates.generate_alternates`.
    """

    config_class = AltPOConfig
    _name = "AltPO"
    _paper = _papers.ALTPO
    draws_refusals = False
