"""Checks of user input that run before work starts, each with an error that names the fix.

One helper per class of mistake, called from every place where that mistake can be made:

- numbers: :func:`check_finite_fields` (every float field of a config), :func:`check_positive`;
- paths: :func:`check_output_dir` (before training or evaluating), :func:`check_model_path`
  (a local folder that does not exist is not a Hub id);
- checkpoints: :func:`resolve_resume_checkpoint` (incomplete checkpoints are skipped or refused);
- models: :func:`check_vocabulary` (tokenizer / reference model against the model),
  :func:`check_finite_weights` (nothing non-finite is ever saved);
- the Hub: :func:`check_hub_push` (offline mode, no token);
- files: :func:`json_lines_error` (the file and the line of a malformed JSON-lines file).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "HubAccessError",
    "check_finite_fields",
    "check_finite_weights",
    "check_hub_push",
    "check_model_path",
    "check_output_dir",
    "check_positive",
    "check_vocabulary",
    "checkpoint_missing_files",
    "json_lines_error",
    "load_json_dataset",
    "resolve_resume_checkpoint",
    "vocabulary_sizes",
]


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def check_finite_fields(config: Any) -> None:
    """Reject a NaN or infinite value in any float field of a dataclass config.

    Raises
    ------
    ValueError
        Naming the first non-finite field.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"`{f.name}` must be a finite number, got {value}. Set it to a real value.")


def check_positive(name: str, value: Any, *, allow_none: bool = False, integer: bool = True) -> None:
    """Require ``value`` to be a positive (integer, by default) number, or ``None`` when allowed.

    Raises
    ------
    ValueError
        When it is zero, negative, non-finite, a bool, or not a number.
    """
    if value is None and allow_none:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not (math.isfinite(value) and value > 0):
        what = "a positive integer" if integer else "a positive number"
        none = " (or None)" if allow_none else ""
        raise ValueError(f"`{name}` must be {what}{none}, got {value!r}.")


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------
def check_output_dir(path: str | os.PathLike, what: str = "output_dir") -> None:
    """Make sure results can be written to the folder ``path`` before the work that produces them.

    Raises
    ------
    ValueError
        ``path`` exists and is a file, or no folder can be created or written there.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"`{what}` {str(path)!r} is a file, not a folder: pass a folder path or move the file away.")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"`{what}` {str(path)!r} cannot be created: {str(existing)!r} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"`{what}` {str(path)!r} is not writable ({str(existing)!r} denies writing): choose another folder.")


def _looks_local(name: str) -> bool:
    """A string that can only be a filesystem path (a Hub id is ``name`` or ``namespace/name``)."""
    return (
        name.startswith(("/", "./", "../", "~", "\\"))
        or name in (".", "..")
        or name.count("/") > 1
        or bool(re.match(r"^[A-Za-z]:[\\/]", name))
    )


def check_model_path(name: str, what: str = "model_name_or_path") -> None:
    """Report a missing local model folder as such (not as an invalid Hub repo id).

    Raises
    ------
    FileNotFoundError
        ``name`` can only be a local path and nothing exists there.
    """
    if isinstance(name, str) and _looks_local(name) and not os.path.exists(os.path.expanduser(name)):
        raise FileNotFoundError(
            f"`{what}` {name!r} is a local path, but nothing exists there. Check the path (a checkpoint folder with "
            "config.json), or pass a Hub id such as 'namespace/model'."
        )


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)


def checkpoint_missing_files(folder: str | os.PathLike, *, optimizer_state: bool = True) -> list[str]:
    """What a checkpoint folder lacks to be resumed from (empty when complete).

    A checkpoint is complete with ``trainer_state.json`` (written last by the Trainer), model or
    adapter weights and, when ``optimizer_state``, ``optimizer.pt`` and ``scheduler.pt``.
    """
    folder = Path(folder)
    names = set(os.listdir(folder)) if folder.is_dir() else set()
    missing = [] if "trainer_state.json" in names else ["trainer_state.json"]
    has_subdir_weights = any((folder / n).is_dir() and any((folder / n / w).is_file() for w in _WEIGHT_FILES) for n in names)
    if not names & set(_WEIGHT_FILES) and not has_subdir_weights:
        missing.append("model weights (model.safetensors or adapter_model.safetensors)")
    if optimizer_state:
        missing += [name for name in ("optimizer.pt", "scheduler.pt") if name not in names]
    return missing


def _as_resume_value(value: Any) -> str | bool | None:
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "none", ""):
        return {"true": True, "false": None, "none": None, "": None}[value.strip().lower()]
    return None if value is False else value


def resolve_resume_checkpoint(value: Any, output_dir: str | os.PathLike, *, optimizer_state: bool = True) -> str | None:
    """The checkpoint folder to resume from, for ``Trainer.train(resume_from_checkpoint=value)``.

    Parameters
    ----------
    value : str, bool or None
        A checkpoint folder, ``True`` (or ``"true"``, as the CLI passes it) for the latest complete
        checkpoint in ``output_dir``, ``None``/``False`` for none.
    output_dir : str or os.PathLike
        Where the checkpoints of ``True`` are looked for.
    optimizer_state : bool
        Whether ``optimizer.pt`` / ``scheduler.pt`` are required (not with DeepSpeed/FSDP, which
        store them their own way).

    Returns
    -------
    str or None
        The folder; incomplete checkpoints newer than it are skipped with a warning naming them.

    Raises
    ------
    FileNotFoundError
        The given folder does not exist.
    ValueError
        The given folder is incomplete, or ``True`` finds no complete checkpoint.
    """
    value = _as_resume_value(value)
    if value is None:
        return None
    if value is True:
        root = Path(output_dir)
        found = sorted(
            (int(m.group(1)), root / name)
            for name in (os.listdir(root) if root.is_dir() else [])
            if (m := _CHECKPOINT_RE.match(name)) and (root / name).is_dir()
        )
        skipped = []
        for _, folder in reversed(found):
            missing = checkpoint_missing_files(folder, optimizer_state=optimizer_state)
            if not missing:
                if skipped:
                    logger.warning("Resuming from %s, the latest complete checkpoint.", folder)
                return str(folder)
            logger.warning("Skipping the incomplete checkpoint %s (missing %s).", folder, ", ".join(missing))
            skipped.append(folder.name)
        detail = f" ({', '.join(skipped)} are incomplete)" if skipped else ""
        raise ValueError(
            f"`resume_from_checkpoint=True` found no complete checkpoint in {str(root)!r}{detail}. Start without "
            "`--resume_from_checkpoint`, or pass the path of a complete checkpoint folder."
        )
    folder = Path(os.fspath(value))
    if not folder.is_dir():
        raise FileNotFoundError(f"`resume_from_checkpoint` {str(folder)!r} is not a folder: pass a checkpoint-N folder or `true`.")
    missing = checkpoint_missing_files(folder, optimizer_state=optimizer_state)
    if missing:
        raise ValueError(
            f"The checkpoint {str(folder)!r} is incomplete (missing {', '.join(missing)}; a save was probably "
            "interrupted). Resume from an earlier checkpoint, or pass `--resume_from_checkpoint true` to use the "
            "latest complete one."
        )
    return str(folder)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def vocabulary_sizes(model) -> tuple[int | None, int | None]:
    """``(input embedding rows, output logits size)`` of a causal LM (``None`` where unknown)."""
    sizes = []
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        size = getattr(module, "num_embeddings", None) or getattr(module, "out_features", None)
        if size is None:
            size = getattr(getattr(model, "config", None), "vocab_size", None)
        sizes.append(size)
    return sizes[0], sizes[1]


def check_vocabulary(model, tokenizer=None, *, other=None, what: str = "model", other_what: str = "reference model") -> None:
    """The tokenizer's ids must fit the model's embeddings; ``other`` must score the same vocabulary.

    Raises
    ------
    ValueError
        With both sizes, instead of an ``IndexError`` or a shape mismatch deep inside torch.
    """
    rows, out = vocabulary_sizes(model)
    if tokenizer is not None and rows is not None and len(tokenizer) > rows:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the {what} has {rows} embedding rows: they belong to "
            f"different models. Pass the {what}'s own tokenizer (or call `model.resize_token_embeddings(len(tokenizer))` "
            "after adding tokens)."
        )
    if other is not None:
        other_out = vocabulary_sizes(other)[1]
        if out is not None and other_out is not None and out != other_out:
            raise ValueError(
                f"The {other_what} scores {other_out} tokens but the {what} scores {out}: they do not share a "
                f"vocabulary. Use a {other_what} of the same model family and tokenizer."
            )


def check_finite_weights(model, step: int, accelerator=None) -> None:
    """Refuse to save a model with NaN/inf weights (the loss check sees only the loss before an update).

    Raises
    ------
    FloatingPointError
        Naming the step, the first non-finite parameter and the fix; on every process alike
        (each checks its own shard of a sharded model).
    """
    import torch

    bad = None
    for name, param in model.named_parameters():
        param = param.detach()
        param = param.to_local() if hasattr(param, "to_local") else param  # FSDP2: this rank's shard
        if param.numel() and not torch.isfinite(param).all():
            bad = name
            break
    if accelerator is not None and accelerator.num_processes > 1:
        flag = torch.tensor([0.0 if bad is None else 1.0], device=accelerator.device)
        if accelerator.gather(flag).sum().item() > 0 and bad is None:
            bad = "(on another process)"
    if bad is not None:
        raise FloatingPointError(
            f"The model's weights are not finite after step {step} (first: {bad}); it is not saved. Lower the "
            "learning rate or `max_grad_norm`, use bf16/fp32 instead of fp16, and resume from an earlier checkpoint."
        )


# --------------------------------------------------------------------------------------------
# The Hub
# --------------------------------------------------------------------------------------------
class HubAccessError(RuntimeError):
    """The Hub cannot be written to: offline mode, or no token."""


def check_hub_push(token: str | bool | None = None) -> None:
    """Fail early, and say why, when a push to the Hub cannot work.

    Raises
    ------
    HubAccessError
        ``HF_HUB_OFFLINE`` is set, or ``token`` is ``False`` / no token is stored or in ``HF_TOKEN``.
    """
    from huggingface_hub import constants, get_token

    if constants.is_offline_mode():
        raise HubAccessError(
            "The Hub is in offline mode (HF_HUB_OFFLINE=1), so nothing can be pushed. Unset HF_HUB_OFFLINE to push, "
            "or leave `push_to_hub` off and push the saved folder later."
        )
    if token is False or (token in (None, True) and get_token() is None):
        raise HubAccessError(
            "No Hugging Face token found, and pushing needs one with write access. Run `hf auth login`, set the "
            "HF_TOKEN environment variable, or pass `hub_token` / `token=`."
        )


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def json_lines_error(path: str | os.PathLike) -> str | None:
    """Where a JSON / JSON-lines file is malformed: ``"<file>, line N: <reason>"``, or ``None``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return f"{path}, line {err.lineno}: {err.msg}"
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            return f"{path}, line {number}: {err.msg} (column {err.colno})"
        if not isinstance(row, dict):
            return f"{path}, line {number}: expected a JSON object per line, got {type(row).__name__}"
    return None


def load_json_dataset(path: str | os.PathLike):
    """``datasets.load_dataset("json", ...)`` of one file; a malformed file is reported by file and line.

    Raises
    ------
    ValueError
        Naming the file and the first malformed line (instead of a ``DatasetGenerationError``).
    """
    import datasets

    try:
        return datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as err:
        where = json_lines_error(path)
        if where is None:
            raise
        raise ValueError(
            f"Malformed JSON data in {where}. Each line must be one JSON object (or the file one JSON array): fix "
            "or remove that line."
        ) from err
