"""Model-side evaluation engine: batched teacher-forced scoring and batched greedy generation.

Shared by the TOFU and MUSE evaluators. The design goals are speed and batch-size invariance:

* **Scoring** (:func:`score_examples`): every distinct ``(input_ids, labels)`` is scored once
  (de-duplication); each distinct prompt is run once and all answers that share it are scored
  on its KV cache (TOFU asks up to 7 answers per question); batches are formed by length, never
  padded to a fixed maximum, and one pass yields everything the metrics need per labelled token:
  its log-probability (through :mod:`trl_unlearn.ops`, the code the trainers use), the greedy
  prediction (exact memorisation, extraction strength) and, on request, the mean and variance
  of ``log p`` under the model's next-token distribution (Min-k%++), computed in chunks.
* **Generation** (:func:`generate_greedy`): distinct prompts, sorted by length, *left*-padded
  with a correct attention mask and position ids, greedy; a row leaves the running batch (and
  its KV cache) as soon as it has produced an EOS or a stop string, and the batch ends when every
  row has; texts are cut at the first EOS / stop string and stripped, as open-unlearning does.
  Models the compact loop cannot drive go through ``model.generate``, with the same output.
* **Gradient norms** (:func:`gradient_norms`): per-example parameter-gradient norms for the
  gradnorm membership-inference attack, without touching ``param.grad``.
* **Multi-process** (:func:`distributed_map`): work split across ranks and gathered, so every
  rank returns the same results; or computed on the main process and broadcast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..ops import IGNORE_INDEX, attention_mask_for, score_sequences
from .prompts import EncodedExample, decode_text

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# results
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
        return float(math.exp(-self.avg_loss))

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


@dataclass(frozen=True)
class Generation:
    """One greedy generation.

    Attributes
    ----------
    text : str
        Decoded without special tokens, cut at the first EOS / stop string, stripped.
    token_ids : tuple of int
        The generated token ids (padding after the end removed).
    """

    text: str
    token_ids: tuple[int, ...]


# --------------------------------------------------------------------------------------------
# small pure helpers
# --------------------------------------------------------------------------------------------
def unique_in_order(keys: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """Positions of the first occurrence of each distinct key, and each key's slot among them.

    Returns
    -------
    first : list of int
        Indices into ``keys`` of the distinct keys, in first-seen order.
    slot : list of int
        For every input key, the index of its distinct key in ``first``.
    """
    seen: dict[Hashable, int] = {}
    first: list[int] = []
    slot: list[int] = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        slot.append(seen[key])
    return first, slot


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices into batches of similar length (longest first, so memory peaks early).

    Sorting is stable, so equal-length items keep their order and the batching is deterministic.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_value: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad integer sequences to the longest one; returns ``(ids, attention_mask)``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_value, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        n = len(seq)
        if n == 0:
            continue
        span = slice(width - n, width) if side == "left" else slice(0, n)
        ids[row, span] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """Text before the earliest occurrence of any stop string, stripped of surrounding space."""
    end = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1:
                end = min(end, at)
    return text[:end].strip()


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


def _row_scores(logits, log_probs, targets, mask, need_vocab, chunk_size: int) -> list[SequenceScores]:
    """Per-row :class:`SequenceScores` from position-aligned logits, log-probs, targets and a bool mask."""
    out = []
    for row, wants_vocab in enumerate(need_vocab):
        where = mask[row]
        scored_logits = logits[row][where]  # [labelled tokens, vocab]
        mean = var = None
        if wants_vocab:
            mean_t, var_t = vocab_log_prob_moments(scored_logits, chunk_size)
            mean, var = mean_t.cpu().numpy(), var_t.cpu().numpy()
        out.append(
            SequenceScores(
                log_probs=log_probs[row][where].float().cpu().numpy(),
                predictions=scored_logits.argmax(dim=-1).cpu().numpy().astype(np.int64),
                targets=targets[row][where].cpu().numpy().astype(np.int64),
                vocab_mean=mean,
                vocab_var=var,
            )
        )
    return out


def model_device(model) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-less module)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def _score_batch(
    model,
    examples: Sequence[EncodedExample],
    need_vocab: Sequence[bool],
    pad_token_id: int,
    chunk_size: int,
    masked_token_id: int | None = None,
) -> list[SequenceScores]:
    device = model_device(model)
    input_ids, padding_mask = pad_batch([e.input_ids for e in examples], pad_token_id, "right")
    labels, _ = pad_batch([e.labels for e in examples], IGNORE_INDEX, "right")
    attention_mask = attention_mask_for(input_ids, padding_mask, masked_token_id)
    input_ids, attention_mask, labels = input_ids.to(device), attention_mask.to(device), labels.to(device)
    log_probs, mask, logits = score_sequences(model, input_ids, attention_mask, labels)
    shifted_logits = logits[:, :-1, :]
    targets = labels[:, 1:]
    return _row_scores(shifted_logits, log_probs, targets, mask, need_vocab, chunk_size)


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


def _score_shared_prompt_batch(
    model,
    groups: Sequence[Sequence[EncodedExample]],
    need_vocab: Sequence[bool],
    pad_token_id: int,
    chunk_size: int,
    masked_token_id: int | None = None,
) -> list[SequenceScores]:
    """Score groups of answers that share a prompt: the prompt once, then all answers on its KV cache.

    Prompts are left-padded (their last position predicts every answer's first token), answers
    right-padded after them with position ids continuing each prompt; the log-probabilities go
    through :func:`trl_unlearn.ops.gather_log_probs` as everywhere else. Position ids count
    every real token (as an unpadded forward pass does), also the ones hidden as attention keys
    by ``masked_token_id``.
    """
    from transformers import DynamicCache

    from ..ops import gather_log_probs

    device = model_device(model)
    cut = [prompt_length(g[0]) for g in groups]
    prompt_ids, prompt_padding = pad_batch([g[0].input_ids[:n] for g, n in zip(groups, cut)], pad_token_id, "left")
    prompt_mask = attention_mask_for(prompt_ids, prompt_padding, masked_token_id)
    prompt_ids, prompt_mask, prompt_padding = prompt_ids.to(device), prompt_mask.to(device), prompt_padding.to(device)
    cache = DynamicCache(config=getattr(model, "config", None))
    extra = {"logits_to_keep": 1} if _accepts_logits_to_keep(model) else {}
    first = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=(prompt_padding.cumsum(-1) - 1).clamp(min=0),
                  cache=cache, use_cache=True, **extra).logits[:, -1, :]  # fmt: skip
    owner = torch.tensor([g for g, group in enumerate(groups) for _ in group], device=device)
    answers = [e.input_ids[n:] for group, n in zip(groups, cut) for e in group]
    answer_ids, answer_padding = pad_batch(answers, pad_token_id, "right")
    answer_mask = attention_mask_for(answer_ids, answer_padding, masked_token_id)
    answer_ids, answer_mask, answer_padding = answer_ids.to(device), answer_mask.to(device), answer_padding.to(device)
    cache.batch_select_indices(owner)
    offsets = torch.tensor(cut, device=device)[owner].unsqueeze(-1)
    rest = model(
        input_ids=answer_ids,
        attention_mask=torch.cat([prompt_mask[owner], answer_mask], dim=1),
        position_ids=offsets + torch.arange(answer_ids.shape[1], device=device),
        cache=cache,
        use_cache=True,
    ).logits
    logits = torch.cat([first[owner].unsqueeze(1), rest[:, :-1]], dim=1)  # position j predicts answer token j
    log_probs = gather_log_probs(logits, answer_ids)
    return _row_scores(logits, log_probs, answer_ids, answer_padding.bool(), need_vocab, chunk_size)


def score_examples(
    model,
    examples: Sequence[EncodedExample],
    *,
    batch_size: int = 16,
    pad_token_id: int = 0,
    vocab_stats: bool | Sequence[bool] = False,
    vocab_chunk_size: int = 512,
    share_prompts: bool = True,
    masked_token_id: int | None = None,
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
    share_prompts : bool
        Run each distinct prompt once and score all of its answers on its KV cache (TOFU scores
        up to 7 answers per question: answer, paraphrase, 5 perturbed), for ``transformers``
        decoder-only models and "prompt masked, answer labelled" examples; other examples take
        one full forward pass each. Same numbers either way (to float rounding).
    masked_token_id : int, optional
        A token id hidden as an attention key wherever it occurs (see
        :func:`trl_unlearn.ops.key_masked_token_id`); ``None`` hides only the padding.

    Returns
    -------
    list of SequenceScores
        One per input example, in input order.
    """
    if not examples:
        return []
    wants = [bool(vocab_stats)] * len(examples) if isinstance(vocab_stats, bool) else [bool(v) for v in vocab_stats]
    if len(wants) != len(examples):
        raise ValueError("vocab_stats must be a bool or one bool per example")
    first, slot = unique_in_order([e.key for e in examples])
    unique = [examples[i] for i in first]
    unique_wants = [False] * len(unique)
    for i, s in enumerate(slot):
        unique_wants[s] = unique_wants[s] or wants[i]
    results: list[SequenceScores | None] = [None] * len(unique)
    shared = [i for i, e in enumerate(unique) if prompt_length(e)] if share_prompts and supports_compact_decoding(model) else []
    full = sorted(set(range(len(unique))) - set(shared))
    with torch.inference_mode():
        for batch_groups in _prompt_groups([unique[i] for i in shared], batch_size):
            groups = [[unique[shared[j]] for j in members] for members in batch_groups]
            flat = [shared[j] for members in batch_groups for j in members]
            scored = _score_shared_prompt_batch(
                model, groups, [unique_wants[i] for i in flat], pad_token_id, vocab_chunk_size, masked_token_id
            )
            for i, s in zip(flat, scored):
                results[i] = s
        for batch in length_batches([len(unique[i].input_ids) for i in full], batch_size):
            indices = [full[j] for j in batch]
            scored = _score_batch(
                model,
                [unique[i] for i in indices],
                [unique_wants[i] for i in indices],
                pad_token_id,
                vocab_chunk_size,
                masked_token_id,
            )
            for i, s in zip(indices, scored):
                results[i] = s
    return [results[s] for s in slot]


# --------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------
def eos_ids_of(model, tokenizer) -> list[int]:
    """EOS ids generation stops at: the model's ``generation_config`` ones and the tokenizer's."""
    ids: list[int] = []
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if config_eos is not None:
        ids.extend([config_eos] if isinstance(config_eos, int) else list(config_eos))
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(int(i) for i in ids))


def _stop_string_criteria(tokenizer, stop_strings: Sequence[str], prompt_width: int):
    """Build the per-row stop-string criterion (a ``transformers.StoppingCriteria``)."""
    from transformers import StoppingCriteria

    class _StopStringCriteria(StoppingCriteria):
        """Per-row stopping on stop strings, judged on the decoded tail of the generated tokens.

        Returns a bool per row (``transformers`` >= 4.39 semantics); a stop string that is missed
        only costs time, since the final text is cut at the earliest stop string anyway.
        """

        def __init__(self, tokenizer, stop_strings: Sequence[str], prompt_width: int):
            self.tokenizer = tokenizer
            self.stop_strings = [s for s in stop_strings if s]
            self.prompt_width = prompt_width
            longest = max(len(tokenizer.encode(s, add_special_tokens=False)) for s in self.stop_strings)
            self.lookback = longest + 2

        def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
            tail = input_ids[:, self.prompt_width :][:, -self.lookback :]
            texts = self.tokenizer.batch_decode(tail, skip_special_tokens=True)
            done = [any(s in t for s in self.stop_strings) for t in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return _StopStringCriteria(tokenizer, stop_strings, prompt_width)


def _finish(tokenizer, rows: Sequence[Sequence[int]], stop_strings: Sequence[str], eos_ids: list[int]) -> list[Generation]:
    """Generated ids -> :class:`Generation`: ids up to the first EOS, text cut at EOS/stop strings."""
    eos_text = [tokenizer.decode([tokenizer.eos_token_id])] if tokenizer.eos_token_id is not None else []
    generations = []
    for row in rows:
        ids = list(row)
        for j, token in enumerate(ids):
            if token in eos_ids:
                ids = ids[: j + 1]
                break
        text = decode_text(tokenizer, ids)
        generations.append(Generation(text=cut_at_stops(text, eos_text + list(stop_strings)), token_ids=tuple(ids)))
    return generations


def supports_compact_decoding(model) -> bool:
    """Whether :func:`_greedy_compact` can drive ``model`` (a ``transformers`` decoder-only LM
    that uses the default dynamic KV cache); otherwise ``model.generate`` is used."""
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


def _greedy_compact(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_strings: Sequence[str],
    eos_ids: list[int],
    pad_token_id: int,
    masked_token_id: int | None = None,
) -> list[list[int]]:
    """Greedy decoding that drops finished rows from the batch (and the KV cache) at once.

    Same tokens as ``model.generate(do_sample=False)``: left padding, position ids from the
    attention mask (``cumsum - 1``, so tokens hidden by ``masked_token_id`` shift the positions
    after them, as in open-unlearning's generation), but a row that has produced an EOS or a
    stop string stops costing compute, so a batch costs the tokens actually generated rather
    than ``batch x longest``.
    """
    from transformers import DynamicCache

    device = model_device(model)
    input_ids, padding_mask = pad_batch(prompts, pad_token_id, "left")
    attention_mask = attention_mask_for(input_ids, padding_mask, masked_token_id)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    position_ids = generation_position_ids(attention_mask)
    cache = DynamicCache(config=getattr(model, "config", None))
    extra = {"logits_to_keep": 1} if _accepts_logits_to_keep(model) else {}
    stops = [s for s in stop_strings if s]
    lookback = max((len(tokenizer.encode(s, add_special_tokens=False)) for s in stops), default=0) + 2
    eos = set(eos_ids)
    generated: list[list[int]] = [[] for _ in prompts]
    active = list(range(len(prompts)))  # original row of each batch row
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                cache=cache, use_cache=True, **extra)  # fmt: skip
    next_position = attention_mask.sum(-1, keepdim=True)  # the number of visible tokens before it
    while True:
        tokens = out.logits[:, -1, :].argmax(dim=-1)
        keep = []
        for j, token in enumerate(tokens.tolist()):
            row = generated[active[j]]
            row.append(token)
            done = token in eos or len(row) >= max_new_tokens
            if not done and stops:
                tail = tokenizer.decode(row[-lookback:], skip_special_tokens=True)
                done = any(s in tail for s in stops)
            if not done:
                keep.append(j)
        if not keep:
            return generated
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            attention_mask, next_position, tokens = attention_mask[index], next_position[index], tokens[index]
            active = [active[j] for j in keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=1)
        out = model(input_ids=tokens.unsqueeze(-1), attention_mask=attention_mask, position_ids=next_position,
                    cache=cache, use_cache=True, **extra)  # fmt: skip
        next_position = next_position + 1


def generation_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded prompt batch as ``generate`` derives them: ``cumsum - 1`` of
    the attention mask, 1 on hidden positions (open-unlearning's ``transformers`` 4.45; a hidden
    position's own id only matters when it is the prompt's last token)."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)


def _accepts_logits_to_keep(model) -> bool:
    import inspect

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _generate_batch(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_strings: Sequence[str],
    eos_ids: list[int],
    pad_token_id: int,
    compact: bool = True,
    masked_token_id: int | None = None,
) -> list[Generation]:
    if compact and supports_compact_decoding(model):
        rows = _greedy_compact(
            model, tokenizer, prompts, max_new_tokens, stop_strings, eos_ids, pad_token_id, masked_token_id
        )
        return _finish(tokenizer, rows, stop_strings, eos_ids)
    return _generate_batch_hf(
        model, tokenizer, prompts, max_new_tokens, stop_strings, eos_ids, pad_token_id, masked_token_id
    )


def _generate_batch_hf(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_strings: Sequence[str],
    eos_ids: list[int],
    pad_token_id: int,
    masked_token_id: int | None = None,
) -> list[Generation]:
    """One ``model.generate`` call (greedy, per-row stop strings); the general fallback."""
    from transformers import StoppingCriteriaList

    device = model_device(model)
    input_ids, padding_mask = pad_batch(prompts, pad_token_id, "left")
    attention_mask = attention_mask_for(input_ids, padding_mask, masked_token_id)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    criteria = StoppingCriteriaList()
    if any(stop_strings):
        criteria.append(_stop_string_criteria(tokenizer, stop_strings, input_ids.shape[1]))
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        do_sample=False,
        num_beams=1,
        temperature=None,
        top_p=None,
        top_k=None,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_ids,
        pad_token_id=pad_token_id,
        stopping_criteria=criteria,
        use_cache=True,
    )
    return _finish(tokenizer, output[:, input_ids.shape[1] :].tolist(), stop_strings, eos_ids)


def generate_greedy(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 200,
    stop_strings: Sequence[str] = (),
    batch_size: int = 16,
    eos_token_ids: Sequence[int] | None = None,
    compact: bool = True,
    masked_token_id: int | None = None,
) -> list[Generation]:
    """Greedy continuations of tokenised prompts, each distinct prompt generated once.

    Parameters
    ----------
    model : PreTrainedModel
        A causal LM supporting ``generate``.
    tokenizer : PreTrainedTokenizerBase
        Decodes the generations; its EOS (and the model's generation-config EOS ids) end a row.
    prompts : sequence of sequence of int
        Prompt token ids (no padding).
    max_new_tokens : int
        Generation budget per prompt (TOFU: 200; MUSE: 128 verbatim, 32 knowledge).
    stop_strings : sequence of str
        Strings that end a row and where its text is cut (MUSE: ``"\\n\\n"``, ``"\\nQuestion"``,
        ``"Question:"``).
    batch_size : int
        Prompts per ``generate`` call (after sorting by length).
    eos_token_ids : sequence of int, optional
        Override the EOS ids.
    compact : bool
        Drop finished rows from the running batch (own decoding loop over the KV cache, for
        ``transformers`` decoder-only models); ``False`` or an unsupported model uses
        ``model.generate``, where finished rows keep being padded until the whole batch ends.
        Both give the same tokens.
    masked_token_id : int, optional
        A token id hidden as an attention key wherever it occurs in a prompt (see
        :func:`trl_unlearn.ops.key_masked_token_id`); ``None`` hides only the padding.

    Returns
    -------
    list of Generation
        One per prompt, in input order.
    """
    if not prompts:
        return []
    eos_ids = list(eos_token_ids) if eos_token_ids is not None else eos_ids_of(model, tokenizer)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    keys = [tuple(int(t) for t in p) for p in prompts]
    if any(len(k) == 0 for k in keys):
        raise ValueError("cannot generate from an empty prompt")
    first, slot = unique_in_order(keys)
    unique = [keys[i] for i in first]
    results: list[Generation | None] = [None] * len(unique)
    with torch.inference_mode():
        for batch in length_batches([len(p) for p in unique], batch_size):
            gens = _generate_batch(
                model,
                tokenizer,
                [unique[i] for i in batch],
                max_new_tokens,
                stop_strings,
                eos_ids,
                pad_token_id,
                compact,
                masked_token_id,
            )
            for i, g in zip(batch, gens):
                results[i] = g
    return [results[s] for s in slot]


# --------------------------------------------------------------------------------------------
# gradient norms (gradnorm MIA)
# --------------------------------------------------------------------------------------------
def gradient_norms(
    model,
    examples: Sequence[EncodedExample],
    p: float = 2.0,
    *,
    position_chunk_size: int = 512,
    masked_token_id: int | None = None,
) -> list[float]:
    """Mean over parameter tensors of ``‖∂L/∂θ‖_p`` per example, ``L`` = mean NLL without EOS.

    Each distinct example is run alone (no padding, exact). Gradients are taken with
    :func:`torch.autograd.grad`, so ``param.grad`` (e.g. a training step's accumulated
    gradients) is left untouched. Only parameters with ``requires_grad`` count (the adapters of a
    PEFT model). Where the model splits into decoder and LM head (:func:`split_causal_lm`), the
    head runs on the labelled positions only, ``position_chunk_size`` at a time under activation
    checkpointing, so no ``[length, vocab]`` logits tensor is kept for the backward pass (MUSE's
    2048-token texts); otherwise the full logits are used.
    """
    from torch.utils.checkpoint import checkpoint

    from ..ops import gather_log_probs

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
    device = model_device(model)
    first, slot = unique_in_order([e.key for e in examples])
    split = split_causal_lm(model, probe_ids=max((examples[i].input_ids for i in first), key=len)) if first else None

    def chunk_log_prob_sum(hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return gather_log_probs(split[1](hidden).unsqueeze(0), targets.unsqueeze(0)).sum()

    values: list[float] = []
    for i in first:
        example = examples[i]
        ids = torch.tensor([example.input_ids], device=device)
        labels = torch.tensor([example.labels], device=device)
        attention_mask = attention_mask_for(ids, torch.ones_like(ids), masked_token_id)
        with torch.enable_grad():
            if split is None:
                log_probs, mask, _ = score_sequences(model, ids, attention_mask, labels)
                picked = log_probs[0][mask[0]][:-1]
                count = picked.numel()
                total = picked.sum() if count else None
            else:
                targets = labels[0, 1:]  # the hidden state at t predicts the label at t + 1
                positions = (targets != IGNORE_INDEX).nonzero().squeeze(-1)[:-1]  # EOS dropped
                count = positions.numel()
                total = None
                if count:
                    hidden = _hidden_states(split[0], ids, attention_mask)[0]
                    if count <= position_chunk_size:  # one chunk: nothing to gain from recomputation
                        total = chunk_log_prob_sum(hidden[positions], targets[positions])
                    else:
                        parts = [
                            checkpoint(chunk_log_prob_sum, hidden[at], targets[at], use_reentrant=False)
                            for at in positions.split(position_chunk_size)
                        ]
                        total = torch.stack(parts).sum()
            if not count:
                values.append(float("nan"))
                continue
            loss = -total / count
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        norms = [g.detach().float().norm(p=p) for g in grads if g is not None]
        values.append(float(torch.stack(norms).mean()) if norms else float("nan"))
    return [values[s] for s in slot]


# --------------------------------------------------------------------------------------------
# multi-process
# --------------------------------------------------------------------------------------------
def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def distributed_map(fn: Callable[[list], list], items: Sequence, mode: str = "shard") -> list:
    """Apply a list-to-list ``fn`` to ``items`` across the processes of ``torch.distributed``.

    Parameters
    ----------
    fn : callable
        Maps a list of items to a list of results of the same length (pure per item).
    items : sequence
        The work, identical on every rank.
    mode : {"shard", "main"}
        ``"shard"``: rank ``r`` computes ``items[r::world]`` and the results are all-gathered.
        ``"main"``: rank 0 computes everything and broadcasts. Every rank must call this with
        the same items (collective call); both modes return the full result list everywhere.
        Models whose forward is itself collective (FSDP, DeepSpeed ZeRO-3) are not supported.

    Returns
    -------
    list
        ``fn(items)`` as computed on one process.
    """
    rank, world = _dist_info()
    if world == 1:
        return list(fn(list(items)))
    if mode == "shard":
        mine = list(fn(list(items[rank::world])))
        gathered: list = [None] * world
        torch.distributed.all_gather_object(gathered, mine)
        out: list = [None] * len(items)
        for r, part in enumerate(gathered):
            out[r::world] = part
        return out
    if mode == "main":
        box = [list(fn(list(items)))] if rank == 0 else [None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
    raise ValueError(f"mode must be 'shard' or 'main', got {mode!r}")


# --------------------------------------------------------------------------------------------
# long-sequence scoring (MUSE raw text): logits a chunk of positions at a time
#
# Added for the MUSE evaluator; nothing above depends on it. `score_examples` keeps a full
# `[batch, length, vocab]` logits tensor per batch (and float32 temporaries of it); for
# 2048-token texts that dominates memory. `score_examples_chunked` returns the same
# `SequenceScores` while never holding more than `[position_chunk_size, vocab]` logits: it runs
# the model's decoder once per batch and applies the LM head to the hidden states of the
# labelled positions chunk by chunk, reusing `ops.gather_log_probs` and
# `vocab_log_prob_moments` for the numbers.
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
    import weakref

    try:
        _PROBED[id(model)] = (weakref.ref(model), ok)
    except TypeError:  # pragma: no cover - modules are weak-referenceable
        pass
    return split if ok else None


def _hidden_states(decoder, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    hidden = getattr(out, "last_hidden_state", None)
    return hidden if hidden is not None else out[0]


def _probe_split(model, split, probe_ids: Sequence[int]) -> bool:
    from ..ops import forward_logits

    decoder, head = split
    ids = torch.tensor([list(probe_ids)[:16]], dtype=torch.long, device=model_device(model))
    if ids.shape[1] == 0:
        return False
    mask = torch.ones_like(ids)
    try:
        with torch.inference_mode():
            full = forward_logits(model, ids, mask)
            mine = head(_hidden_states(decoder, ids, mask))
    except Exception as err:  # noqa: BLE001 - any failure means "do not use the split"
        logger.info("LM head split failed (%s); scoring with full logits", err)
        return False
    return mine.shape == full.shape and torch.allclose(mine.float(), full.float(), rtol=1e-3, atol=1e-3)


def _score_batch_chunked(
    split,
    model,
    examples: Sequence[EncodedExample],
    need_vocab: Sequence[bool],
    pad_token_id: int,
    vocab_chunk_size: int,
    position_chunk_size: int,
    masked_token_id: int | None = None,
) -> list[SequenceScores]:
    from ..ops import gather_log_probs

    decoder, head = split
    device = model_device(model)
    input_ids, padding_mask = pad_batch([e.input_ids for e in examples], pad_token_id, "right")
    attention_mask = attention_mask_for(input_ids, padding_mask, masked_token_id)
    labels, _ = pad_batch([e.labels for e in examples], IGNORE_INDEX, "right")
    input_ids, attention_mask, labels = input_ids.to(device), attention_mask.to(device), labels.to(device)
    hidden = _hidden_states(decoder, input_ids, attention_mask)  # [batch, length, hidden]
    targets = labels[:, 1:]  # the hidden state at t predicts the label at t + 1
    out = []
    for row, wants_vocab in enumerate(need_vocab):
        positions = (targets[row] != IGNORE_INDEX).nonzero().squeeze(-1)
        log_probs, predictions, means, variances = [], [], [], []
        for start in range(0, positions.numel(), position_chunk_size):
            at = positions[start : start + position_chunk_size]
            logits = head(hidden[row, at])  # [chunk, vocab]
            chunk_targets = targets[row, at]
            log_probs.append(gather_log_probs(logits.unsqueeze(0), chunk_targets.unsqueeze(0))[0])
            predictions.append(logits.argmax(dim=-1))
            if wants_vocab:
                mean, var = vocab_log_prob_moments(logits, vocab_chunk_size)
                means.append(mean)
                variances.append(var)
            del logits

        def cat(parts, dtype):
            return torch.cat(parts).cpu().numpy().astype(dtype) if parts else np.zeros(0, dtype=dtype)

        out.append(
            SequenceScores(
                log_probs=cat(log_probs, np.float32),
                predictions=cat(predictions, np.int64),
                targets=targets[row, positions].cpu().numpy().astype(np.int64),
                vocab_mean=cat(means, np.float32) if wants_vocab else None,
                vocab_var=cat(variances, np.float32) if wants_vocab else None,
            )
        )
    return out


def score_examples_chunked(
    model,
    examples: Sequence[EncodedExample],
    *,
    batch_size: int = 4,
    pad_token_id: int = 0,
    vocab_stats: bool | Sequence[bool] = False,
    vocab_chunk_size: int = 512,
    position_chunk_size: int = 512,
    masked_token_id: int | None = None,
) -> list[SequenceScores]:
    """:func:`score_examples` for long sequences: logits computed ``position_chunk_size`` positions at a time.

    Same inputs, outputs, de-duplication and length bucketing as :func:`score_examples`; the
    model's decoder runs once per batch and its LM head is applied only to the hidden states of
    labelled positions, one chunk at a time, so peak memory is the ``[batch, length, hidden]``
    hidden states plus one ``[position_chunk_size, vocab]`` logits block, never a
    ``[batch, length, vocab]`` tensor. Models whose logits are not ``lm_head(hidden)``
    (:func:`split_causal_lm` returns ``None``) fall back to :func:`score_examples`' full-logits
    path.

    Parameters
    ----------
    model : PreTrainedModel
        A causal LM in eval mode.
    examples : sequence of EncodedExample
        What to score (raw-text examples label every token after the first).
    batch_size : int
        Sequences per decoder pass.
    pad_token_id : int
        Padding id.
    vocab_stats : bool or sequence of bool
        Min-k%++ moments for all examples or per example.
    vocab_chunk_size : int
        Positions per chunk of the vocabulary-moment computation.
    position_chunk_size : int
        Positions whose logits exist at a time.
    masked_token_id : int, optional
        A token id hidden as an attention key wherever it occurs (see :func:`score_examples`).

    Returns
    -------
    list of SequenceScores
        One per input example, in input order.
    """
    if not examples:
        return []
    if position_chunk_size < 1:
        raise ValueError(f"position_chunk_size must be >= 1, got {position_chunk_size}")
    wants = [bool(vocab_stats)] * len(examples) if isinstance(vocab_stats, bool) else [bool(v) for v in vocab_stats]
    if len(wants) != len(examples):
        raise ValueError("vocab_stats must be a bool or one bool per example")
    first, slot = unique_in_order([e.key for e in examples])
    unique = [examples[i] for i in first]
    unique_wants = [False] * len(unique)
    for i, s in enumerate(slot):
        unique_wants[s] = unique_wants[s] or wants[i]
    split = split_causal_lm(model, probe_ids=max((e.input_ids for e in unique), key=len))
    results: list[SequenceScores | None] = [None] * len(unique)
    with torch.inference_mode():
        for batch in length_batches([len(e.input_ids) for e in unique], batch_size):
            batch_examples = [unique[i] for i in batch]
            batch_wants = [unique_wants[i] for i in batch]
            if split is None:
                scored = _score_batch(model, batch_examples, batch_wants, pad_token_id, vocab_chunk_size, masked_token_id)
            else:
                scored = _score_batch_chunked(
                    split,
                    model,
                    batch_examples,
                    batch_wants,
                    pad_token_id,
                    vocab_chunk_size,
                    position_chunk_size,
                    masked_token_id,
                )
            for i, s in zip(batch, scored):
                results[i] = s
    return [results[s] for s in slot]
