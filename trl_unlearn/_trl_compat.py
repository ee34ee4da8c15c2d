"""The one place where trl-unlearn imports TRL's private names.

TRL has no public trainer base class: its own trainers subclass ``_BaseTrainer`` and
``_BaseConfig``. Everything private we rely on is imported here, so that a TRL upgrade touches
one file. ``pyproject.toml`` pins the TRL minor version these names were checked against.
"""

from trl.models.utils import prepare_deepspeed, prepare_fsdp
from trl.trainer.base_config import _BaseConfig
from trl.trainer.base_trainer import _BaseTrainer
from trl.trainer.utils import create_model_from_path, disable_dropout_in_model, get_config_model_id, hash_module

BaseConfig = _BaseConfig
BaseTrainer = _BaseTrainer

__all__ = [
    "BaseConfig",
    "BaseTrainer",
    "create_model_from_path",
    "disable_dropout_in_model",
    "get_config_model_id",
    "hash_module",
    "prepare_deepspeed",
    "prepare_fsdp",
]
