"""Reference models when the policy is sharded (FSDP through ``accelerate``, DeepSpeed ZeRO-3).

How each reference mode (:data:`.reference.REFERENCE_MODES`) is held under sharding:

- ``"copy"`` and ``"model"``: the frozen copy / explicit ``ref_model`` is sharded like the policy
  (:func:`prepare_reference`), so no rank holds its full weights;
- ``"peft"``: the sharded policy with its adapter disabled (nothing to prepare);
- ``"precomputed"``: the log-probs are computed before training by a sharded model — the
  explicit ``ref_model``, or else a copy of the policy (the policy itself is sharded only when
  training starts) — each rank its share of the batches, gathered; that model is freed afterwards.

The placement itself is TRL's and accelerate's: ``prepare_deepspeed`` (an inference engine,
ZeRO-3 partitioned) for DeepSpeed; for FSDP2 accelerate's ``fsdp2_prepare_model``, which applies
the policy's own FSDP plugin (auto-wrap policy, mixed precision, CPU offload), so that each
decoder layer is gathered alone during the forward pass (TRL's ``prepare_fsdp`` shards FSDP2
models at the root only, gathering the whole model at once; it is used for FSDP1, where it
applies the auto-wrap policy).
"""

from __future__ import annotations

import copy

import torch
from accelerate.utils import DistributedType

from .._trl_compat import prepare_deepspeed, prepare_fsdp


def is_sharded_training(accelerator) -> bool:
    """Whether the policy is trained sharded: FSDP, or DeepSpeed (whose ZeRO-3 shards the parameters)."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def prepare_reference(model: torch.nn.Module, accelerator) -> torch.nn.Module:
    """``model`` (frozen, in eval mode) placed for inference beside the training policy.

    Sharded like the policy under FSDP / DeepSpeed (see the module docstring); otherwise moved to
    the device by ``accelerator.prepare_model(..., evaluation_mode=True)``.
    """
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return prepare_deepspeed(model, accelerator)
    if accelerator.distributed_type == DistributedType.FSDP:
        if accelerator.is_fsdp2:
            from accelerate.utils.fsdp_utils import fsdp2_prepare_model

            model = fsdp2_prepare_model(accelerator, model).eval()
            # accelerate keeps the final norm + LM head group gathered after a forward pass (a backward
            # pass follows it in training); a reference never runs one, so every group reshards
            model.set_reshard_after_forward(True)
            return model
        return prepare_fsdp(model, accelerator).eval()
    return accelerator.prepare_model(model, evaluation_mode=True)


def shard_for_precompute(reference: torch.nn.Module, policy: torch.nn.Module, accelerator) -> torch.nn.Module:
    """The sharded model that computes the precomputed reference log-probs under FSDP / DeepSpeed.

    ``reference`` (an explicit ``ref_model``) sharded by :func:`prepare_reference`, or, when it is
    the policy, a frozen copy of it sharded: the policy is sharded only when training starts,
    and its full weights may not fit one device. The caller frees it once done.
    """
    if reference is policy:
        reference = copy.deepcopy(policy).eval().requires_grad_(False)
    return prepare_reference(reference, accelerator)
