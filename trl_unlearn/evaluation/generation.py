"""Batched greedy generation: :func:`generate_greedy`.

Distinct prompts, sorted by length, *left*-padded, greedy, with position ids derived from the
attention mask as ``generate`` does (:func:`generation_position_ids`). A row leaves the running
batch (and its KV cache) once it has produced an EOS or completed one of ``stop_strings``
(:class:`StopOnStrings`), and the batch ends when every row has; texts are cut at the first
EOS / stop string and stripped, as open-unlearning does. Models the compact loop cannot drive go
through ``model.generate`` with the same stopping criterion, and give the same output.

``generate(stop_strings=..., tokenizer=...)`` is not used: ``transformers``' criterion maps every
vocabulary entry to a string and raises ``ValueError`` for tokenizers whose tokens cannot be
prefixed (word-level vocabularies); decoding the generated tail works for every tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria

from ..ops import attention_mask_for
from .batching import collective_mode, inference_context, length_batches, map_distinct, pad_batch, progress_bar
from .engine import _accepts_logits_to_keep, model_device, supports_compact_decoding
from .prompts import decode_text


class StopOnStrings(StoppingCriteria):
    """Per-row stopping once the text decoded from the generated tokens contains a stop string.

    A ``transformers.StoppingCriteria`` (one bool per row), used by the compact loop and passed
    to ``model.generate``. Only the last few generated tokens are decoded (the longest stop
    string's token count plus two).

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerBase
        Decodes the generated tokens.
    stop_strings : sequence of str
        Non-empty stop strings.
    prompt_width : int
        Width of the (padded) prompt before the generated tokens.
    """

    def __init__(self, tokenizer, stop_strings: Sequence[str], prompt_width: int):
        self.tokenizer = tokenizer
        self.stop_strings = list(stop_strings)
        self.prompt_width = prompt_width
        self.lookback = max(len(tokenizer.encode(s, add_special_tokens=False)) for s in self.stop_strings) + 2

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        tail = input_ids[:, self.prompt_width :][:, -self.lookback :]
        texts = self.tokenizer.batch_decode(tail, skip_special_tokens=True)
        done = [any(s in text for s in self.stop_strings) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


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



def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """Text before the earliest occurrence of any stop string, stripped of surrounding space."""
    end = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1:
                end = min(end, at)
    return text[:end].strip()


def eos_ids_of(model, tokenizer) -> list[int]:
    """EOS ids generation stops at: the model's ``generation_config`` ones and the tokenizer's."""
    ids: list[int] = []
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if config_eos is not None:
        ids.extend([config_eos] if isinstance(config_eos, int) else list(config_eos))
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(int(i) for i in ids))


def generation_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded prompt batch as ``generate`` derives them: ``cumsum - 1`` of
    the attention mask, 1 on hidden positions (open-unlearning's ``transformers`` 4.45; a hidden
    position's own id only matters when it is the prompt's last token)."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)


def _greedy_compact(model, tokenizer, input_ids, attention_mask, max_new_tokens, stop_strings, eos_ids, pad_token_id):
    """Greedy decoding that drops finished rows from the batch (and the KV cache) at once.

    Same tokens as ``model.generate(do_sample=False)`` with :class:`StopOnStrings`: positions from the
    attention mask (so tokens hidden by ``masked_token_id`` shift the positions after them, as in
    open-unlearning's generation), the same stop-string criterion, but a row that has ended stops
    costing compute, so a batch costs the tokens actually generated rather than ``batch x longest``.
    """
    from transformers import DynamicCache

    device = input_ids.device
    stop = StopOnStrings(tokenizer, stop_strings, input_ids.shape[1]) if stop_strings else None
    eos = torch.tensor(eos_ids, device=device)
    cache = DynamicCache(config=getattr(model, "config", None))
    extra = {"logits_to_keep": 1} if _accepts_logits_to_keep(model) else {}
    generated: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    active = list(range(input_ids.shape[0]))  # original row of each batch row
    sequences = input_ids
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=generation_position_ids(attention_mask),
                cache=cache, use_cache=True, **extra)  # fmt: skip
    next_position = attention_mask.sum(-1, keepdim=True)  # the number of visible tokens before it
    for step in range(1, max_new_tokens + 1):
        tokens = out.logits[:, -1, :].argmax(dim=-1)
        for row, token in zip(active, tokens.tolist()):
            generated[row].append(token)
        sequences = torch.cat([sequences, tokens.unsqueeze(-1)], dim=1)
        done = torch.isin(tokens, eos)
        if stop is not None:
            done |= stop(sequences, None)
        keep = (~done).nonzero().squeeze(-1)
        if step == max_new_tokens or keep.numel() == 0:
            break
        if keep.numel() < len(active):
            cache.batch_select_indices(keep)
            attention_mask, next_position, tokens, sequences = (t[keep] for t in (attention_mask, next_position, tokens, sequences))
            active = [active[j] for j in keep.tolist()]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=1)
        out = model(input_ids=tokens.unsqueeze(-1), attention_mask=attention_mask, position_ids=next_position,
                    cache=cache, use_cache=True, **extra)  # fmt: skip
        next_position = next_position + 1
    return generated


def _greedy_generate(model, tokenizer, input_ids, attention_mask, max_new_tokens, stop_strings, eos_ids, pad_token_id):
    """One ``model.generate`` call (greedy, per-row stop strings); the general fallback."""
    from transformers import StoppingCriteriaList

    criteria = StoppingCriteriaList([StopOnStrings(tokenizer, stop_strings, input_ids.shape[1])] if stop_strings else [])
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
    return output[:, input_ids.shape[1] :].tolist()


def _finish(tokenizer, rows: Sequence[Sequence[int]], stop_strings: Sequence[str], eos_ids: list[int]) -> list[Generation]:
    """Generated ids -> :class:`Generation`: ids up to the first EOS, text cut at EOS/stop strings."""
    eos_text = [tokenizer.decode([tokenizer.eos_token_id])] if tokenizer.eos_token_id is not None else []
    generations = []
    for row in rows:
        ids = list(row)
        end = next((j + 1 for j, token in enumerate(ids) if token in eos_ids), len(ids))
        ids = ids[:end]
        text = decode_text(tokenizer, ids)
        generations.append(Generation(text=cut_at_stops(text, eos_text + list(stop_strings)), token_ids=tuple(ids)))
    return generations


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
    distributed: str | None = None,
    progress: bool = False,
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
        Prompts decoded together (after sorting by length).
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
    distributed : {"shard", "main"}, optional
        Split the prompts across the ``torch.distributed`` processes (see :func:`~trl_unlearn.evaluation.batching.distributed_map`);
        a sharded model generates in lock-step on every rank (:func:`~trl_unlearn.evaluation.batching.collective_mode`).
    progress : bool
        Show a progress bar over the batches.

    Returns
    -------
    list of Generation
        One per prompt, in input order.
    """
    if not prompts:
        return []
    keys = [tuple(int(t) for t in p) for p in prompts]
    if any(len(k) == 0 for k in keys):
        raise ValueError("cannot generate from an empty prompt")
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size and max_new_tokens must be >= 1, got {batch_size} and {max_new_tokens}")
    eos_ids = list(eos_token_ids) if eos_token_ids is not None else eos_ids_of(model, tokenizer)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    stops = [s for s in stop_strings if s]
    decode = _greedy_compact if compact and supports_compact_decoding(model) else _greedy_generate
    device = model_device(model)

    def run(indices: list[int]) -> list[Generation]:
        unique = [keys[i] for i in indices]
        results: list[Generation | None] = [None] * len(unique)
        batches = length_batches([len(p) for p in unique], batch_size)
        with progress_bar(len(batches), "generating", progress) as bar:
            for batch in batches:
                input_ids, padding_mask = pad_batch([unique[i] for i in batch], pad_token_id, "left")
                attention_mask = attention_mask_for(input_ids, padding_mask, masked_token_id)
                rows = decode(
                    model, tokenizer, input_ids.to(device), attention_mask.to(device), max_new_tokens, stops, eos_ids, pad_token_id
                )
                for i, g in zip(batch, _finish(tokenizer, rows, stops, eos_ids)):
                    results[i] = g
                bar.update()
        return results

    with inference_context(model):
        return map_distinct(run, keys, [len(k) for k in keys], collective_mode(distributed, model))

