"""The options every benchmark evaluator takes: :class:`EvalOptions`.

Batch sizes, row limits, multi-process mode, chunk sizes, the attention-mask convention, the MIA
settings and progress bars mean the same for TOFU and MUSE, so they are one object. Each field is
also accepted as a keyword argument of the evaluators (``TOFUEvaluator(batch_size=32)``), and
read back as an attribute (``evaluator.batch_size``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..checks import check_positive
from ..ops import check_attention_mask_mode
from .batching import DISTRIBUTED_MODES

__all__ = ["EvalOptions", "take_reference"]

#: The names the reference argument had before it was one name for every benchmark.
LEGACY_REFERENCE_NAMES = ("retain_reference", "retrain_reference")


@dataclass
class EvalOptions:
    """How an evaluator runs (not what it computes: the numbers do not depend on these, except
    ``attention_mask_mode``, ``mia_k``, ``gradnorm_p`` and ``limit``).

    Parameters
    ----------
    batch_size : int, optional
        Sequences per scoring forward pass (default: TOFU 16, MUSE 8).
    generation_batch_size : int, optional
        Prompts decoded together (default: TOFU ``max(batch_size, 64)``, OU's ROUGE batch;
        MUSE ``batch_size``). Finished rows leave the batch, so wide batches pay off.
    limit : int, optional
        Use only the first ``limit`` rows of every evaluated split (smoke tests, benchmarks);
        forget quality against a full-split reference is then impossible.
    distributed : {"shard", "main"}
        Under ``torch.distributed``: split the work across ranks, or compute on rank 0 and
        broadcast. Every rank must call ``evaluate``. A sharded model (FSDP, DeepSpeed ZeRO-3)
        is evaluated in lock-step instead, every rank the same rows, whichever is chosen.
    vocab_chunk_size : int
        Positions per chunk of the Min-k%++ vocabulary statistics.
    position_chunk_size : int, optional
        Labelled positions whose logits exist at once while scoring (default: TOFU ``None``,
        full logits of its short answers; MUSE 512, for 2048-token texts); also the chunk of the
        gradnorm attack's LM head (512 when ``None``).
    share_prompts : bool, optional
        Run each question's prompt once and score its answers on the prompt's KV cache
        (default: TOFU ``True``; MUSE ``False``, its texts share no prompt). Same numbers.
    compact_generation : bool
        Drop finished rows from a generation batch; ``False`` uses ``model.generate``. Same
        generations either way.
    attention_mask_mode : {"open_unlearning", "padding"}
        ``"open_unlearning"`` (default): every token equal to the pad id (the EOS when the
        tokenizer has no pad token, as for SmolLM2 and OU's Llama models) is hidden as an
        attention key, also the turn ends inside a chat prompt, and generation positions skip
        them; this reproduces OU's per-example numbers. ``"padding"`` hides only the padding, as
        plain ``transformers`` inference does (not comparable with OU's logs).
    mia_k : float
        Fraction of tokens of the Min-k% / Min-k%++ attacks (OU: 0.4).
    gradnorm_p : float
        Norm of the gradnorm attack (OU: 2).
    progress : bool
        Show a progress bar per phase (scoring, generation, gradient norms).
    """

    batch_size: int | None = None
    generation_batch_size: int | None = None
    limit: int | None = None
    distributed: str = "shard"
    vocab_chunk_size: int = 512
    position_chunk_size: int | None = None
    share_prompts: bool | None = None
    compact_generation: bool = True
    attention_mask_mode: str = "open_unlearning"
    mia_k: float = 0.4
    gradnorm_p: float = 2.0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "generation_batch_size", "limit", "position_chunk_size"):
            check_positive(name, getattr(self, name), allow_none=True)
        check_positive("vocab_chunk_size", self.vocab_chunk_size)
        check_positive("gradnorm_p", self.gradnorm_p, integer=False)
        if not (isinstance(self.mia_k, (int, float)) and 0 < self.mia_k <= 1):
            raise ValueError(f"`mia_k` is the fraction of tokens of the Min-k% attacks and must be in (0, 1], got {self.mia_k!r}.")
        if self.distributed not in DISTRIBUTED_MODES:
            raise ValueError(f"distributed must be one of {DISTRIBUTED_MODES}, got {self.distributed!r}")
        check_attention_mask_mode(self.attention_mask_mode)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The option names (also the evaluators' keyword arguments)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def resolve(
        cls, options: EvalOptions | None, overrides: Mapping[str, Any], defaults: Mapping[str, Any], owner: str
    ) -> EvalOptions:
        """``options`` (or the defaults) with keyword ``overrides``, then the benchmark's
        ``defaults`` for the fields still ``None`` (``generation_batch_size`` may be a function of
        the options).

        Raises
        ------
        TypeError
            On a keyword that is no option (the message lists them), or ``options`` of another type.
        """
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"`options` must be an EvalOptions, got {type(options).__name__}.")
        unknown = sorted(set(overrides) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"{owner} got unexpected keyword arguments {unknown}; its options are {list(cls.field_names())}.")
        resolved = dataclasses.replace(options or cls(), **overrides)
        for name, default in defaults.items():
            if getattr(resolved, name) is None:
                value = default(resolved) if callable(default) else default
                resolved = dataclasses.replace(resolved, **{name: value})
        return resolved


def take_reference(reference: Any, aliases: dict[str, Any], where: str, stacklevel: int = 3) -> Any:
    """The ``reference`` argument, or its value under a former name (with a ``FutureWarning``).

    ``aliases`` is the caller's remaining keyword arguments; the former names are removed from it.

    Raises
    ------
    ValueError
        When ``reference`` and a former name are both given.
    """
    for old in LEGACY_REFERENCE_NAMES:
        if old not in aliases:
            continue
        value = aliases.pop(old)
        warnings.warn(
            f"`{old}=` of {where} is deprecated and will be removed: pass `reference=` (the retain model of TOFU, the "
            "retrain model of MUSE: one name for every benchmark).",
            FutureWarning,
            stacklevel=stacklevel,
        )
        if reference is not None and value is not None and value is not reference:
            raise ValueError(f"{where} got both `reference=` and `{old}=`; pass only `reference=`.")
        reference = value if reference is None else reference
    return reference
