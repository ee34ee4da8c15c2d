"""Pure tensor helpers shared by the trainers and the evaluators.

Everything that turns logits into log-probabilities lives here, so that the number a trainer
optimises and the number an evaluator reports are computed by the same code.

Conventions
-----------
``labels`` follow the Hugging Face convention: same shape as ``input_ids``, ``-100``
(:data:`IGNORE_INDEX`) on positions that carry no loss (prompt, padding), and the logits at
position ``t`` predict the label at position ``t + 1``. All helpers shift internally.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100

#: How attention masks are built from token ids (trainers' and evaluators' ``attention_mask_mode``).
#: ``"open_unlearning"``: as open-unlearning's collator, every token equal to the pad id (the EOS
#: when the tokenizer has no pad token) is hidden as an attention key, also inside a sequence
#: (chat templates close each turn with the EOS). ``"padding"``: only padding is hidden.
ATTENTION_MASK_MODES = ("open_unlearning", "padding")


def check_attention_mask_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`ATTENTION_MASK_MODES`, else a ``ValueError`` naming them."""
    if mode not in ATTENTION_MASK_MODES:
        raise ValueError(
            f"attention_mask_mode must be one of {ATTENTION_MASK_MODES}, got {mode!r}: 'open_unlearning' hides every "
            "pad-id token as open-unlearning does (comparable with its logs), 'padding' hides only the padding"
        )
    return mode


def key_masked_token_id(tokenizer, mode: str) -> int | None:
    """The token id hidden as an attention key wherever it occurs, or ``None`` (padding only).

    In ``"open_unlearning"`` mode that is the pad id open-unlearning masks: the tokenizer's pad
    token, or its EOS when it has none (open-unlearning then uses the EOS as padding).
    """
    if check_attention_mask_mode(mode) == "padding":
        return None
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def attention_mask_for(input_ids: torch.Tensor, padding_mask: torch.Tensor, masked_token_id: int | None) -> torch.Tensor:
    """The attention mask of padded ``input_ids``: ``padding_mask``, and zero wherever the token
    is ``masked_token_id`` (see :func:`key_masked_token_id`; ``None`` leaves the padding mask).

    Positions (rotary / learned) are never derived from this mask when scoring: a hidden token
    keeps its place, as in open-unlearning, where the forward pass gets no position ids.
    """
    if masked_token_id is None:
        return padding_mask
    return padding_mask * (input_ids != masked_token_id).to(padding_mask.dtype)


def gather_log_probs(logits: torch.Tensor, targets: torch.Tensor, chunk_size: int = 8) -> torch.Tensor:
    """Log-softmax of ``logits`` evaluated at ``targets``: ``logits[..., target] - logsumexp(logits)``.

    Computed as ``-cross_entropy`` (PyTorch's fused log-softmax + NLL kernels, about twice as fast
    as an explicit ``logsumexp`` and gather, forward and backward) row-chunk by row-chunk, so at
    most ``chunk_size`` rows of ``[length, vocab]`` float32 temporaries exist at a time.

    Parameters
    ----------
    logits : torch.Tensor
        ``[batch, length, vocab]``.
    targets : torch.Tensor
        ``[batch, length]`` integer token ids; negative ids are allowed (their value is garbage
        and must be masked by the caller).
    chunk_size : int
        Number of batch rows processed at once.

    Returns
    -------
    torch.Tensor
        ``[batch, length]`` float32 log-probabilities.
    """
    safe_targets = targets.clamp(min=0)
    out = []
    for start in range(0, logits.shape[0], chunk_size):
        rows = logits[start : start + chunk_size]
        rows_t = safe_targets[start : start + chunk_size]
        nll = F.cross_entropy(rows.float().flatten(0, -2), rows_t.flatten(), reduction="none")
        out.append(-nll.view(rows_t.shape))
    return torch.cat(out, dim=0)


def token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labelled (scored) tokens.

    Parameters
    ----------
    logits : torch.Tensor
        ``[batch, length, vocab]`` unshifted logits.
    labels : torch.Tensor
        ``[batch, length]`` unshifted labels.

    Returns
    -------
    log_probs : torch.Tensor
        ``[batch, length - 1]`` log π(label_{t+1} | ≤ t), zero where masked.
    mask : torch.Tensor
        ``[batch, length - 1]`` boolean, true on scored positions.
    """
    shifted_labels = labels[:, 1:]  # the logits at t predict the label at t + 1
    mask = shifted_labels != IGNORE_INDEX
    log_probs = gather_log_probs(logits[:, :-1, :], shifted_labels)
    return log_probs.masked_fill(~mask, 0.0), mask


def sequence_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of completion-token log-probabilities per sequence.

    Returns
    -------
    sum_log_probs : torch.Tensor
        ``[batch]`` Σ_t log π(y_t | s_t) over scored tokens (``-NLL(y|x)``).
    num_tokens : torch.Tensor
        ``[batch]`` number of scored tokens (``|y|``), as float.
    """
    log_probs, mask = token_log_probs(logits, labels)
    return log_probs.sum(-1), mask.sum(-1).to(log_probs.dtype)
