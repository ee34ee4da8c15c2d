"""Reference log-probabilities computed once before training (``precompute_ref_log_probs=True``).

The forget set's summed completion log-probs under π_ref become a ``ref_logps`` column (and
``alternate_ref_logps`` for a second answer), so no reference model is held during training. As in
TRL's DPO, the batches are split across processes and gathered, and the column is cached next to
the dataset's own cache files under a fingerprint of (dataset, reference weights, settings): a
second run on the same data and reference reads it instead of recomputing it. In-memory datasets
(no cache files) are computed every time.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

import torch
from accelerate.utils import is_peft_model
from datasets import Dataset, concatenate_datasets, is_caching_enabled
from datasets.fingerprint import Hasher

from ..data import pad_prompt_completion
from ..evaluation.batching import distributed_map, is_sharded_model, progress_bar_iter
from ..ops import sequence_log_probs

logger = logging.getLogger(__name__)

#: How π_ref is computed (see :func:`resolve_reference`).
REFERENCE_MODES = ("none", "model", "peft", "precomputed", "copy")
#: completion column -> column of its reference log-probs
REFERENCE_COLUMNS = {"completion_ids": "ref_logps", "alternate_completion_ids": "alternate_ref_logps"}


@torch.no_grad()
def add_reference_log_probs(
    data: Dataset,
    reference: torch.nn.Module,
    *,
    batch_size: int,
    device: torch.device,
    pad_token_id: int,
    masked_token_id: int | None,
    model_hash: str | None = None,
    desc: str = "reference log-probs",
    progress: bool = True,
) -> Dataset:
    """``data`` (tokenised forget rows) with the reference log-prob column of every completion column.

    Parameters
    ----------
    data : datasets.Dataset
        Rows with ``prompt_ids`` and ``completion_ids`` (optionally ``alternate_completion_ids``).
    reference : torch.nn.Module
        The model computing π_ref, already on ``device`` and in eval mode. Under
        ``torch.distributed`` each rank computes its share of the batches; a sharded (FSDP,
        DeepSpeed ZeRO-3) model gets equal shares, so that every rank joins every forward pass.

    Batching
    --------
    batch_size : int
        Rows per forward pass.
    device : torch.device
        Where the batches go.
    pad_token_id, masked_token_id : int
        Padding id, and the id whose key positions are hidden (see :func:`trl_unlearn.ops.attention_mask_for`).

    Caching and progress
    --------------------
    model_hash : str, optional
        Fingerprint of the reference weights (TRL's ``hash_module``); ``None`` disables the cache.
    desc : str
        Progress-bar label.
    progress : bool
        Show a progress bar (main process only).

    Returns
    -------
    datasets.Dataset
        ``data`` with ``ref_logps`` (and ``alternate_ref_logps``) replaced or added.
    """
    columns = {c: out for c, out in REFERENCE_COLUMNS.items() if c in data.column_names}
    stale = [out for out in columns.values() if out in data.column_names]
    if stale:
        data = data.remove_columns(stale)
    cache_file = None
    if model_hash is not None and data.cache_files and is_caching_enabled():
        fingerprint = Hasher.hash((data._fingerprint, model_hash, sorted(columns), batch_size, pad_token_id,
                                   masked_token_id, torch.device(device).type))
        fingerprint = distributed_map(lambda _: [fingerprint], [None], "main")[0]  # one file for every rank
        cache_file = data._get_cache_file_path(fingerprint)
        if os.path.exists(cache_file):
            return concatenate_datasets([data, Dataset.from_file(cache_file)], axis=1)

    starts = list(range(0, len(data), batch_size))
    mode = "padded" if is_sharded_model(reference) else "shard"  # a sharded model needs every rank in every batch

    def log_probs(my_starts: list[int], completion_column: str) -> list[list[float]]:
        out = []
        for start in progress_bar_iter(my_starts, f"{desc} ({completion_column})", progress):
            rows = data[start : start + batch_size]
            batch = pad_prompt_completion(rows["prompt_ids"], rows[completion_column], pad_token_id,
                                          masked_token_id=masked_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
            out.append(sequence_log_probs(logits, batch["labels"])[0].float().cpu().tolist())
        return out

    values: dict[str, list[float]] = {}
    for completion_column, output_column in columns.items():
        parts = distributed_map(lambda s, c=completion_column: log_probs(s, c), starts, mode)
        values[output_column] = [v for part in parts for v in part]
    if cache_file is None:
        for name, column in values.items():
            data = data.add_column(name, column)
        return data
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not distributed or torch.distributed.get_rank() == 0:
        _write_cache(values, cache_file, data, fingerprint)
    if distributed:
        torch.distributed.barrier()
    return concatenate_datasets([data, Dataset.from_file(cache_file)], axis=1)


def _write_cache(values: dict[str, Any], cache_file: str, data: Dataset, fingerprint: str) -> None:
    """Write ``values`` (one list per column, a value per row of ``data``) as ``data``'s cache file."""
    data.map(
        lambda _, indices: {name: [column[i] for i in indices] for name, column in values.items()},
        with_indices=True,
        batched=True,
        remove_columns=data.column_names,
        new_fingerprint=fingerprint,
        cache_file_name=cache_file,
        desc="caching reference log-probs",
    )


def check_precompute(method: str, precompute: bool, needs_distributions: bool, kl_retain: bool) -> None:
    """Refuse ``precompute_ref_log_probs`` for a method that needs the reference's whole distributions."""
    if precompute and needs_distributions:
        raise ValueError(
            f"`precompute_ref_log_probs=True` stores sequence log-probs only, but {method} "
            f"{'with a KL retain loss ' if kl_retain else ''}needs the reference's full next-token distributions. "
            "Use a LoRA `peft_config` (adapter-disabled reference, no second copy), an explicit `ref_model`, or turn "
            "precomputation off."
        )


def resolve_reference(method: str, model, ref_model, has_peft_config: bool, precompute: bool, needs_reference: bool):
    """How π_ref is computed, and the model computing it (if one is held).

    Returns
    -------
    tuple
        ``(ref_model or None, mode)`` with mode one of :data:`REFERENCE_MODES`: ``"none"`` (the method
        needs no reference), ``"model"`` (the given ``ref_model``), ``"precomputed"`` (log-probs
        computed once, by ``ref_model`` when given, else by the policy before training), ``"peft"``
        (the policy with its adapter disabled) or ``"copy"`` (a frozen copy of the policy).
    """
    if not needs_reference:
        if ref_model is not None:
            logger.warning("%s is reference-free: the `ref_model` you passed is ignored.", method)
        return None, "none"
    if ref_model is not None:
        return ref_model, "precomputed" if precompute else "model"
    if has_peft_config:
        return None, "peft"
    if precompute:
        return None, "precomputed"
    if is_peft_model(model):
        logger.info("The model already carries a PEFT adapter: the reference is a frozen copy of the model with that "
                    "adapter (disabling it would not give the model before unlearning).")
    return copy.deepcopy(model), "copy"
