"""Model-side evaluation engine: teacher-forced scoring and gradient norms.

Shared by the TOFU and MUSE evaluators; designed for speed and batch-size invariance. Every
function computes each distinct input once, longest first and, under ``torch.distributed``, split
across processes (:func:`~trl_unlearn.evaluation.batching.map_distinct`).

* **Scoring** (:func:`score_examples`): right-padded batches of similar length, one forward pass
  each, giving per labelled token its log-probability (:func:`trl_unlearn.ops.gather_log_probs`,
  the code the trainers use), the greedy prediction and, on request, the Min-k%++ moments of
  ``log p`` under the model's next-token distribution. With ``position_chunk_size`` the decoder
  runs once and the LM head is applied to the labelled positions a chunk at a time (MUSE's
  2048-token texts never hold a ``[batch, length, vocab]`` tensor); ``None`` uses the model's own
  logits. Fast path: examples that share a prompt (TOFU asks up to 7 answers per question) run
  the prompt once and score every answer on its KV cache.
* **Gradient norms** (:func:`gradient_norms`): per-example parameter-gradient norms for the
  gradnorm membership-inference attack, without touching ``param.grad``.

Generation lives in :mod:`trl_unlearn.evaluation.generation`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..ops import IGNORE_INDEX, attention_mask_for, gather_log_probs, token_log_probs
from . import metrics as M
from .batching import (
    collective_mode,
    inference_context,
    is_sharded_model,
    length_batches,
    map_distinct,
    pad_batch,
    progress_bar,
    progress_bar_iter,
)
from .prompts import EncodedExample

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SequenceScores:
    """Per-labelled-token statistics of one teacher-forced sequence.

    Attributes
    ----------
    log_probs : np.ndarray
        ``[T]`` float32 ``log π(y_t | s_t)`` of every labelled token, EOS included.
    predictions : np.ndarray
        ``[T]`` int64 argmax of the model's next-token distribution at each labelled position.
    targets : np.ndarray
        ``[T]`` int64 labelled token ids.
    vocab_mean, vocab_var : np.ndarray or None
        ``[T]`` float32 ``E_z[log π(z|s_t)]`` and ``Var_z[log π(z|s_t)]`` under ``π(·|s_t)``
        (Min-k%++ normalisers); ``None`` unless requested.
    """

    log_probs: np.ndarray
    predictions: np.ndarray
    targets: np.ndarray
    vocab_mean: np.ndarray | None = None
    vocab_var: np.ndarray | None = None

    @property
    def num_tokens(self) -> int:
        """Number of labelled tokens ``T``."""
        return int(self.log_probs.shape[0])

    @property
    def avg_loss(self) -> float:
        """Mean token NLL over all labelled tokens (OU's ``avg_loss``); ``nan`` without tokens."""
        if self.num_tokens == 0:
            return float("nan")
        return float(-np.sum(self.log_probs, dtype=np.float64) / self.num_tokens)

    @property
    def prob(self) -> float:
        """``exp(-avg_loss)`` (OU's ``prob``)."""
        return M.probability(self.avg_loss)

    def without_last(self) -> SequenceScores:
        """The statistics minus the last labelled token (the EOS), as OU's memorisation and
        Min-k metrics use them."""
        cut = slice(0, max(self.num_tokens - 1, 0))
        return SequenceScores(
            self.log_probs[cut],
            self.predictions[cut],
            self.targets[cut],
            None if self.vocab_mean is None else self.vocab_mean[cut],
            None if self.vocab_var is None else self.vocab_var[cut],
        )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def vocab_log_prob_moments(logits: torch.Tensor, chunk_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``log p(z)`` under ``p = softmax(logits)``, row by row.

    Parameters
    ----------
    logits : torch.Tensor
        ``[N, V]`` next-token logits.
    chunk_size : int
        Rows converted to float32 log-probabilities at a time (bounds the ``[chunk, V]``
        temporaries).

    Returns
    -------
    mean, var : torch.Tensor
        ``[N]`` float32 ``Σ_z p log p`` and ``Σ_z p (log p - mean)^2``.
    """
    means, variances = [], []
    for start in range(0, logits.shape[0], chunk_size):
        log_p = torch.log_softmax(logits[start : start + chunk_size].float(), dim=-1)
        p = log_p.exp()
        mean = (p * log_p).sum(-1)
        means.append(mean)
        # two-pass form: same value as E[(log p)^2] - mean^2 without the cancellation
        variances.append((p * (log_p - mean.unsqueeze(-1)).square()).sum(-1))
    if not means:
        empty = logits.new_zeros((0,), dtype=torch.float32)
        return empty, empty
    return torch.cat(means), torch.cat(variances)


def model_device(model) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-less module)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# forward passes: full logits, or the decoder's hidden states and the LM head
# --------------------------------------------------------------------------------------------
#: Config attributes that put a transformation between the LM head and the logits (Gemma-2
#: soft-capping, Cohere/Granite scaling, ...). A model with one of them set to a non-neutral
#: value is scored through its full forward pass instead.
LOGIT_TRANSFORM_ATTRIBUTES = (
    "final_logit_softcapping",
    "logit_scale",
    "logits_scaling",
    "lm_head_multiplier",
    "output_multiplier_scale",
)

_PROBED: dict[int, tuple] = {}  # id(model) -> (weakref to the model, split reproduces its logits)


def _neutral(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1))


def split_causal_lm(model, probe_ids: Sequence[int] | None = None):
    """``(decoder, lm_head)`` of a causal LM whose logits are ``lm_head(decoder(...)[0])``, or ``None``.

    Uses ``model.get_decoder()`` and ``model.get_output_embeddings()`` (PEFT models forward both
    to the base model, LoRA layers included). Models with a logit transformation in their config
    (:data:`LOGIT_TRANSFORM_ATTRIBUTES`) and PEFT prompt-learning models are refused. With
    ``probe_ids``, the split is checked against the model's own forward pass on those tokens,
    once per model object (the verdict is cached; the modules are looked up on every call).
    """
    config = getattr(model, "config", None)
    if not all(_neutral(getattr(config, a, None)) for a in LOGIT_TRANSFORM_ATTRIBUTES):
        return None
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        return None
    try:
        decoder, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError, TypeError):
        return None
    if decoder is None or head is None or decoder is model:
        return None
    split = (decoder, head)
    if probe_ids is None:
        return split
    cached = _PROBED.get(id(model))
    if cached is not None and cached[0]() is model:
        return split if cached[1] else None
    ok = _probe_split(model, split, probe_ids)
    if not ok:
        logger.info("%s: the LM-head split does not reproduce the logits; scoring with full logits", type(model).__name__)
    _PROBED[id(model)] = (weakref.ref(model), ok)
    return split if ok else None


def _hidden_states(decoder, **inputs) -> torch.Tensor:
    out = decoder(**inputs)
    hidden = getattr(out, "last_hidden_state", None)
    return hidden if hidden is not None else out[0]


def _probe_split(model, split, probe_ids: Sequence[int]) -> bool:
    decoder, head = split
    ids = torch.tensor([list(probe_ids)[:16]], dtype=torch.long, device=model_device(model))
    if ids.shape[1] == 0:
        return False
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "use_cache": False}
    try:
        with inference_context(model):
            full = model(**inputs).logits
            mine = head(_hidden_states(decoder, **inputs))
    except Exception as err:  # noqa: BLE001 - any failure means "do not use the split"
        logger.info("LM head split failed (%s); scoring with full logits", err)
        return False
    return mine.shape == full.shape and torch.allclose(mine.float(), full.float(), rtol=1e-3, atol=1e-3)


def _accepts_logits_to_keep(model) -> bool:
    import inspect

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def supports_compact_decoding(model) -> bool:
    """Whether the engine's own decoding loop (and shared-prompt scoring) can drive ``model``: a
    ``transformers`` decoder-only LM that uses the default dynamic KV cache; otherwise
    ``model.generate`` is used."""
    from transformers import PreTrainedModel

    base = model
    get_base = getattr(model, "get_base_model", None)  # PEFT
    if callable(get_base):
        if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
            return False
        base = get_base()
    if not isinstance(base, PreTrainedModel) or getattr(base.config, "is_encoder_decoder", False):
        return False
    supports = getattr(base, "_supports_default_dynamic_cache", None)
    return bool(supports()) if callable(supports) else False


def _forward(model, split, *, last_only: bool = False, **inputs) -> torch.Tensor:
    """Per-position outputs of one forward pass: the logits, or with ``split`` the decoder's
    hidden states (the LM head is applied later, to the positions that need it)."""
    if split is not None:
        hidden = _hidden_states(split[0], **inputs)
        return hidden[:, -1] if last_only else hidden
    if last_only and _accepts_logits_to_keep(model):
        inputs["logits_to_keep"] = 1
    logits = model(**inputs).logits
    return logits[:, -1] if last_only else logits


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def _row_scores(outputs, targets, mask, head, wants, position_chunk_size, vocab_chunk_size) -> list[SequenceScores]:
    """Per-row :class:`SequenceScores` from position-aligned outputs (logits, or hidden states for
    ``head``), targets and a bool mask of the labelled positions, ``position_chunk_size`` positions
    (``None``: all) at a time."""
    out = []
    for row, wants_vocab in enumerate(wants):
        positions = mask[row].nonzero().squeeze(-1)
        parts: dict[str, list[torch.Tensor]] = {"lp": [], "pred": [], "mean": [], "var": []}
        for at in positions.split(position_chunk_size or max(positions.numel(), 1)) if positions.numel() else ():
            logits = outputs[row, at] if head is None else head(outputs[row, at])  # [chunk, vocab]
            parts["lp"].append(gather_log_probs(logits.unsqueeze(0), targets[row, at].unsqueeze(0))[0])
            parts["pred"].append(logits.argmax(dim=-1))
            if wants_vocab:
                mean, var = vocab_log_prob_moments(logits, vocab_chunk_size)
                parts["mean"].append(mean)
                parts["var"].append(var)
            del logits

        def cat(name, dtype):
            chunks = parts[name]
            return torch.cat(chunks).float().cpu().numpy().astype(dtype) if chunks else np.zeros(0, dtype=dtype)

        out.append(
            SequenceScores(
                log_probs=cat("lp", np.float32),
                predictions=torch.cat(parts["pred"]).cpu().numpy().astype(np.int64) if parts["pred"] else np.zeros(0, np.int64),
                targets=targets[row, positions].cpu().numpy().astype(np.int64),
                vocab_mean=cat("mean", np.float32) if wants_vocab else None,
                vocab_var=cat("var", np.float32) if wants_vocab else None,
            )
        )
    return out


def _score_batch(model, split, examples, wants, pad_token_id, masked_token_id, chunks) -> list[SequenceScores]:
    """One right-padded teacher-forced pass (positions ``0..L-1``; ``masked_token_id`` hidden as a key)."""
    device = model_device(model)
    input_ids, padding_mask = pad_batch([e.input_ids for e in examples], pad_token_id, "right")
    labels, _ = pad_batch([e.labels for e in examples], IGNORE_INDEX, "right")
    attention_mask = attention_mask_for(input_ids, padding_mask, masked_token_id)
    outputs = _forward(model, split, input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), use_cache=False)
    targets = labels[:, 1:].to(device)  # the output at t predicts the label at t + 1
    return _row_scores(outputs[:, :-1], targets, targets != IGNORE_INDEX, split and split[1], wants, *chunks)


def prompt_length(example: EncodedExample) -> int | None:
    """Length of the unlabelled prompt when ``example`` is "prompt masked, the rest labelled".

    Returns ``None`` for other label layouts (no prompt, holes in the labels, labels that are not
    the input tokens), which the shared-prompt scoring path does not handle.
    """
    labels, ids = example.labels, example.input_ids
    start = next((i for i, t in enumerate(labels) if t != IGNORE_INDEX), None)
    if not start or len(labels) != len(ids):
        return None
    if any(labels[i] != ids[i] for i in range(start, len(ids))):
        return None
    return start


def _prompt_groups(examples: Sequence[EncodedExample], batch_size: int) -> list[list[list[int]]]:
    """Batches of prompt groups: each group = indices of examples sharing the same prompt tokens.

    Groups are ordered by prompt length (longest first), split into chunks of at most
    ``batch_size`` examples, and packed until a batch holds ``batch_size`` examples.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(example.input_ids[: prompt_length(example)], []).append(i)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[0]))
    chunks = [m[i : i + batch_size] for _, m in ordered for i in range(0, len(m), batch_size)]
    batches: list[list[list[int]]] = []
    current: list[list[int]] = []
    size = 0
    for members in chunks:
        if current and size + len(members) > batch_size:
            batches.append(current)
            current, size = [], 0
        current.append(members)
        size += len(members)
    if current:
        batches.append(current)
    return batches


def _score_shared_prompt_batch(model, split, groups, wants, pad_token_id, masked_token_id, chunks) -> list[SequenceScores]:
    """Score groups of answers that share a prompt: the prompt once, then all answers on its KV cache.

    Prompts are left-padded (their last position predicts every answer's first token), answers
    right-padded after them with position ids continuing each prompt. Position ids count every
    real token (as an unpadded forward pass does), also the ones hidden as attention keys by
    ``masked_token_id``.
    """
    from transformers import DynamicCache

    device = model_device(model)
    cut = [prompt_length(g[0]) for g in groups]
    prompt_ids, prompt_padding = pad_batch([g[0].input_ids[:n] for g, n in zip(groups, cut)], pad_token_id, "left")
    prompt_mask = attention_mask_for(prompt_ids, prompt_padding, masked_token_id).to(device)
    prompt_padding = prompt_padding.to(device)
    cache = DynamicCache(config=getattr(model, "config", None))
    first = _forward(model, split, last_only=True, input_ids=prompt_ids.to(device), attention_mask=prompt_mask,
                     position_ids=(prompt_padding.cumsum(-1) - 1).clamp(min=0), cache=cache, use_cache=True)  # fmt: skip
    owner = torch.tensor([g for g, group in enumerate(groups) for _ in group], device=device)
    answer_ids, answer_padding = pad_batch([e.input_ids[n:] for group, n in zip(groups, cut) for e in group], pad_token_id)
    answer_mask = attention_mask_for(answer_ids, answer_padding, masked_token_id).to(device)
    answer_ids, answer_padding = answer_ids.to(device), answer_padding.to(device)
    cache.batch_select_indices(owner)
    offsets = torch.tensor(cut, device=device)[owner].unsqueeze(-1)
    rest = _forward(model, split, input_ids=answer_ids, attention_mask=torch.cat([prompt_mask[owner], answer_mask], dim=1),
                    position_ids=offsets + torch.arange(answer_ids.shape[1], device=device), cache=cache, use_cache=True)  # fmt: skip
    outputs = torch.cat([first[owner].unsqueeze(1), rest[:, :-1]], dim=1)  # position j predicts answer token j
    return _row_scores(outputs, answer_ids, answer_padding.bool(), split and split[1], wants, *chunks)


def score_examples(
    model,
    examples: Sequence[EncodedExample],
    *,
    batch_size: int = 16,
    pad_token_id: int = 0,
    vocab_stats: bool | Sequence[bool] = False,
    vocab_chunk_size: int = 512,
    position_chunk_size: int | None = None,
    share_prompts: bool = True,
    masked_token_id: int | None = None,
    distributed: str | None = None,
    progress: bool = False,
) -> list[SequenceScores]:
    """Teacher-forced scores of ``examples``, each distinct one computed once.

    Parameters
    ----------
    model : PreTrainedModel
        A causal LM (put it in eval mode first; this function does not change its mode).
    examples : sequence of EncodedExample
        What to score; duplicates (same ``input_ids`` and ``labels``) share one computation.
    batch_size : int
        Sequences per forward pass (after sorting by length).
    pad_token_id : int
        Padding id (masked out, its value does not matter).
    vocab_stats : bool or sequence of bool
        Compute the Min-k%++ moments for all examples or per example.
    vocab_chunk_size : int
        Positions per chunk of the vocabulary-moment computation.
    position_chunk_size : int, optional
        Apply the LM head to at most this many labelled positions at a time, after one decoder
        pass per batch (see :func:`split_causal_lm`), so no ``[batch, length, vocab]`` logits
        tensor exists (long texts). ``None``: the model's own forward pass and full logits.
        Same numbers either way (to float rounding).
    share_prompts : bool
        Run each distinct prompt once and score all of its answers on its KV cache (TOFU scores
        up to 7 answers per question: answer, paraphrase, 5 perturbed), for ``transformers``
        decoder-only models and "prompt masked, answer labelled" examples; other examples take
        one full forward pass each. Same numbers either way (to float rounding).
    masked_token_id : int, optional
        A token id hidden as an attention key wherever it occurs (see
        :func:`trl_unlearn.ops.key_masked_token_id`); ``None`` hides only the padding.
    distributed : {"shard", "main"}, optional
        Split the work across the ``torch.distributed`` processes (every rank must call this),
        see :func:`~trl_unlearn.evaluation.batching.distributed_map`; ``None`` computes everything here.
        A sharded model (FSDP, DeepSpeed ZeRO-3) is run in lock-step instead: every rank takes part
        in every forward pass (:func:`~trl_unlearn.evaluation.batching.collective_mode`).
    progress : bool
        Show a progress bar over the batches.

    Returns
    -------
    list of SequenceScores
        One per input example, in input order.
    """
    if not examples:
        return []
    if batch_size < 1 or vocab_chunk_size < 1 or (position_chunk_size is not None and position_chunk_size < 1):
        raise ValueError(
            f"batch_size, vocab_chunk_size and position_chunk_size must be >= 1, got {batch_size}, "
            f"{vocab_chunk_size} and {position_chunk_size}"
        )
    wants = [bool(vocab_stats)] * len(examples) if isinstance(vocab_stats, bool) else [bool(v) for v in vocab_stats]
    if len(wants) != len(examples):
        raise ValueError("vocab_stats must be a bool or one bool per example")
    wanted_by_key: dict = {}
    for example, want in zip(examples, wants):  # a copy asking for the moments makes the one computation do it
        wanted_by_key[example.key] = wanted_by_key.get(example.key, False) or want
    split = None
    if position_chunk_size is not None:
        split = split_causal_lm(model, probe_ids=max((e.input_ids for e in examples), key=len))
    share = share_prompts and supports_compact_decoding(model)
    chunks = (position_chunk_size if split is not None else None, vocab_chunk_size)

    def run(indices: list[int]) -> list[SequenceScores]:
        unique = [examples[i] for i in indices]
        unique_wants = [wanted_by_key[e.key] for e in unique]
        shared = [i for i, e in enumerate(unique) if share and prompt_length(e)]
        full = sorted(set(range(len(unique))) - set(shared))
        work = [[[shared[j] for j in members] for members in batch] for batch in _prompt_groups([unique[i] for i in shared], batch_size)]
        work += [[full[j] for j in batch] for batch in length_batches([len(unique[i].input_ids) for i in full], batch_size)]
        results: list[SequenceScores | None] = [None] * len(unique)
        with progress_bar(len(work), "scoring", progress) as bar:
            for batch in work:
                if isinstance(batch[0], list):  # groups sharing a prompt
                    flat = [i for members in batch for i in members]
                    groups = [[unique[i] for i in members] for members in batch]
                    scored = _score_shared_prompt_batch(
                        model, split, groups, [unique_wants[i] for i in flat], pad_token_id, masked_token_id, chunks
                    )
                else:
                    flat = batch
                    scored = _score_batch(
                        model, split, [unique[i] for i in flat], [unique_wants[i] for i in flat], pad_token_id,
                        masked_token_id, chunks,
                    )  # fmt: skip
                for i, s in zip(flat, scored):
                    results[i] = s
                bar.update()
        return results

    with inference_context(model):
        return map_distinct(run, [e.key for e in examples], [len(e.input_ids) for e in examples],
                        collective_mode(distributed, model))


# --------------------------------------------------------------------------------------------
# gradient norms (gradnorm MIA)
# --------------------------------------------------------------------------------------------
def _example_gradient_norm(model, split, params, example: EncodedExample, p, position_chunk_size, masked_token_id) -> float:
    from torch.utils.checkpoint import checkpoint

    device = model_device(model)
    ids = torch.tensor([example.input_ids], device=device)
    attention_mask = attention_mask_for(ids, torch.ones_like(ids), masked_token_id)
    targets = torch.tensor([example.labels], device=device)[0, 1:]  # the output at t predicts the label at t + 1
    positions = (targets != IGNORE_INDEX).nonzero().squeeze(-1)[:-1]  # EOS dropped
    if not positions.numel():
        return float("nan")
    with torch.enable_grad():
        if split is None:
            logits = model(input_ids=ids, attention_mask=attention_mask, use_cache=False).logits
            log_probs, mask = token_log_probs(logits, torch.tensor([example.labels], device=device))
            total = log_probs[0][mask[0]][:-1].sum()
        else:
            hidden = _hidden_states(split[0], input_ids=ids, attention_mask=attention_mask, use_cache=False)[0]

            def chunk_sum(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return gather_log_probs(split[1](h).unsqueeze(0), t.unsqueeze(0)).sum()

            if positions.numel() <= position_chunk_size:  # one chunk: nothing to gain from recomputation
                total = chunk_sum(hidden[positions], targets[positions])
            else:
                total = torch.stack([
                    checkpoint(chunk_sum, hidden[at], targets[at], use_reentrant=False)
                    for at in positions.split(position_chunk_size)
                ]).sum()  # fmt: skip
        grads = torch.autograd.grad(-total / positions.numel(), params, allow_unused=True)
    norms = [float(g.detach().float().norm(p=p)) for g in grads if g is not None]
    return M.gradnorm_score(norms) if norms else float("nan")


def gradient_norms(
    model,
    examples: Sequence[EncodedExample],
    p: float = 2.0,
    *,
    position_chunk_size: int = 512,
    masked_token_id: int | None = None,
    distributed: str | None = None,
    progress: bool = False,
) -> list[float]:
    """Mean over parameter tensors of ``‖∂L/∂θ‖_p`` per example, ``L`` = mean NLL without EOS.

    Each distinct example is run alone (no padding, exact). Gradients are taken with
    :func:`torch.autograd.grad`, so ``param.grad`` (e.g. a training step's accumulated
    gradients) is left untouched. Only parameters with ``requires_grad`` count (the adapters of a
    PEFT model). Where the model splits into decoder and LM head (:func:`split_causal_lm`), the
    head runs on the labelled positions only, ``position_chunk_size`` at a time under activation
    checkpointing, so no ``[length, vocab]`` logits tensor is kept for the backward pass (MUSE's
    2048-token texts); otherwise the full logits are used. ``distributed`` and ``progress`` as in
    :func:`score_examples`.
    """
    if p not in (1, 2, float("inf")):
        raise ValueError(f"p must be 1, 2 or inf, got {p}")
    if position_chunk_size < 1:
        raise ValueError(f"position_chunk_size must be >= 1, got {position_chunk_size}")
    params = [t for t in model.parameters() if t.requires_grad]
    if not params:
        raise ValueError(
            "gradient norms need trainable parameters but none has requires_grad=True; "
            "call `model.requires_grad_(True)` or drop 'mia_gradnorm' from the metrics"
        )
    if is_sharded_model(model):
        raise ValueError(
            "mia_gradnorm is not supported on a sharded (FSDP / DeepSpeed ZeRO-3) model: its per-example gradients "
            "would be reduced across ranks. Drop 'mia_gradnorm' from the metrics, or evaluate the saved model on one "
            "process."
        )
    if not examples:
        return []
    split = split_causal_lm(model, probe_ids=max((e.input_ids for e in examples), key=len))

    def run(indices: list[int]) -> list[float]:
        return [
            _example_gradient_norm(model, split, params, examples[i], p, position_chunk_size, masked_token_id)
            for i in progress_bar_iter(indices, "gradient norms", progress)
        ]

    return map_distinct(run, [e.key for e in examples], [len(e.input_ids) for e in examples],
                        collective_mode(distributed, model))
