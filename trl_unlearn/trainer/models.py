"""Loading the model to unlearn and adding a PEFT adapter to it."""

from __future__ import annotations

import logging

from accelerate.utils import is_peft_model

from .._trl_compat import create_model_from_path
from ..checks import check_model_path
from .unlearning_config import UnlearningConfig

logger = logging.getLogger(__name__)


def load_model(model, args: UnlearningConfig):
    """The model itself, or the model at a local path / Hub id loaded with ``args.model_init_kwargs``."""
    if not isinstance(model, str):
        if args.model_init_kwargs:
            logger.warning("`model_init_kwargs` are ignored because the model is already instantiated.")
        return model
    check_model_path(model, "model")
    init_kwargs = dict(args.model_init_kwargs or {})
    if args.distributed_state.distributed_type in ["MULTI_GPU", "DEEPSPEED"] and "quantization_config" not in init_kwargs:
        init_kwargs["device_map"] = None  # distributed training places the model itself ("auto" fails)
    init_kwargs.setdefault("trust_remote_code", args.trust_remote_code)
    return create_model_from_path(model, **init_kwargs)


def wrap_peft(model, peft_config, args: UnlearningConfig):
    """``model`` with a new PEFT adapter from ``peft_config``."""
    from peft import PeftConfig, get_peft_model

    if not isinstance(peft_config, PeftConfig):
        raise TypeError(f"`peft_config` must be a peft.PeftConfig, got {type(peft_config).__name__}.")
    if is_peft_model(model):
        raise ValueError(
            "The model already is a PeftModel and a `peft_config` was passed too. Merge and unload the existing "
            "adapter first (`model.merge_and_unload()`), or pass the PeftModel without `peft_config`."
        )
    kwargs = {}
    if args.deepspeed_plugin is not None and args.deepspeed_plugin.zero_stage == 3:
        kwargs["autocast_adapter_dtype"] = False
    model = get_peft_model(model, peft_config, **kwargs)
    if args.activation_checkpointing:
        model.enable_input_require_grads()
    return model
