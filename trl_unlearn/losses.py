"""Unlearning objectives as pure functions of log-probabilities.

Every function returns **per-example** (or per-token-sum) values; the trainers do the batch
reduction, so that gradient accumulation and multi-process training reduce exactly like one
big batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def npo_loss(policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """Negative Preference Optimization forget loss, per example.

    ``L = -(2/β) · log σ(-β · (log π_θ(y|x) - log π_ref(y|x)))`` with sequence-summed log-probs.

    Parameters
    ----------
    policy_logps, reference_logps : torch.Tensor
        ``[batch]`` summed completion log-probabilities under the policy and the reference.
    beta : float
        Inverse temperature β > 0.

    Returns
    -------
    torch.Tensor
        ``[batch]`` losses; at π_θ = π_ref each equals ``(2/β)·log 2``.
    """
    log_ratio = policy_logps - reference_logps
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio)


def simnpo_loss(policy_logps: torch.Tensor, num_tokens: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """SimNPO forget loss, per example (reference-free).

    ``L = -(2/β) · log σ(β · (NLL(y|x)/|y| - δ))`` where ``NLL = -Σ_t log π_θ``.

    Parameters
    ----------
    policy_logps : torch.Tensor
        ``[batch]`` summed completion log-probabilities.
    num_tokens : torch.Tensor
        ``[batch]`` completion lengths ``|y|`` (EOS included).
    beta, delta : float
        Temperature β > 0 and reward margin δ.
    """
    normalized_nll = -policy_logps / num_tokens
    return -(2.0 / beta) * F.logsigmoid(beta * (normalized_nll - delta))


def token_nll_sums(token_log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-example sum of token negative log-likelihoods over scored tokens (``[batch]``).

    Divided by the number of scored tokens in the (global) batch this is the mean token
    cross-entropy (``nll`` retain loss; its negation is gradient ascent).
    """
    return -(token_log_probs * mask).sum(-1)


def kl_divergence_per_token(reference_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """``KL(π_ref ‖ π_θ)`` at every position, over the full vocabulary.

    Parameters
    ----------
    reference_logits, policy_logits : torch.Tensor
        ``[batch, length, vocab]`` logits at the same positions.

    Returns
    -------
    torch.Tensor
        ``[batch, length]`` KL divergences (float32).
    """
    ref_logp = F.log_softmax(reference_logits.float(), dim=-1)
    pol_logp = F.log_softmax(policy_logits.float(), dim=-1)
    return (ref_logp.exp() * (ref_logp - pol_logp)).sum(-1)


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-example sum of ``values`` over positions where ``mask`` is true (``[batch]``)."""
    return (values * mask).sum(-1)


def preference_distributions(
    logits: torch.Tensor,
    strength: float,
    top_k: int | None = None,
    probability_threshold: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DiPO's pair of next-token distributions at every position (DiPO step 1).

    The high-confidence set S_t is the ``top_k`` logits (default) or, if
    ``probability_threshold`` is given, the tokens whose probability under ``softmax(logits)``
    exceeds it (the argmax is always included, so S_t is never empty).

    Parameters
    ----------
    logits : torch.Tensor
        ``[batch, length, vocab]`` source logits (reference or detached policy).
    strength : float
        λ > 0: the logit shift applied on S_t.
    top_k : int, optional
        Size of S_t.
    probability_threshold : float, optional
        Probability above which a token belongs to S_t (replaces ``top_k``).

    Returns
    -------
    log_p_minus : torch.Tensor
        log of the memory-promoting (dispreferred) distribution ``softmax(ℓ + λ·1_S)``.
    log_p_plus : torch.Tensor
        log of the forgetting-promoting (preferred) distribution ``softmax(ℓ − λ·1_S)``.
    in_set : torch.Tensor
        boolean ``[batch, length, vocab]`` membership of S_t.
    """
    logits = logits.float()
    if probability_threshold is not None:
        probs = logits.softmax(-1)
        in_set = probs > probability_threshold
        in_set.scatter_(-1, logits.argmax(-1, keepdim=True), True)
    else:
        if top_k is None or top_k < 1:
            raise ValueError("DiPO needs `top_k >= 1` or a `probability_threshold` to define the high-confidence set.")
        k = min(int(top_k), logits.shape[-1])
        in_set = torch.zeros_like(logits, dtype=torch.bool)
        in_set.scatter_(-1, logits.topk(k, dim=-1).indices, True)
    shift = in_set.to(logits.dtype) * strength
    return F.log_softmax(logits + shift, dim=-1), F.log_softmax(logits - shift, dim=-1), in_set


def dipo_position_terms(
    source_logits: torch.Tensor,
    policy_logits: torch.Tensor,
    reference_logits: torch.Tensor,
    strength: float,
    top_k: int | None = None,
    probability_threshold: float | None = None,
    targets: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Everything DiPO needs at a set of positions, from their logits.

    Computed in closed form from ``q = softmax(source_logits)`` without materialising the two
    preference distributions: with ``m = q(S)`` and ``D± = (1 − m) + e^{∓λ} m``,
    ``p⁺ − p⁻ = q ⊙ w`` where ``w = e^{−λ}/D⁺ − e^{λ}/D⁻`` on ``S`` and ``1/D⁺ − 1/D⁻`` off it, and
    ``Σ p± log p±`` follow from ``Σ q log q`` on and off ``S``. ``p⁺ − p⁻`` sums to zero, so the
    margin is ``Σ (p⁺ − p⁻)(ℓ_θ − ℓ_ref)`` on the raw logits: its gradient is ``p⁺ − p⁻`` itself,
    and it is exact to the precision of ``ℓ_θ − ℓ_ref``. The values equal the explicit
    construction of :func:`preference_distributions` (to float rounding).

    Parameters
    ----------
    source_logits : torch.Tensor
        ``[..., vocab]`` logits the preference pair is built from (reference, or detached policy).
    policy_logits : torch.Tensor
        ``[..., vocab]`` policy logits (carry the gradient).
    reference_logits : torch.Tensor
        ``[..., vocab]`` reference logits (may be the same tensor as ``source_logits``).
    strength, top_k, probability_threshold
        See :func:`preference_distributions`.
    targets : torch.Tensor, optional
        ``[...]`` token ids: also return the policy's log-probabilities of them.

    Returns
    -------
    dict of torch.Tensor, each ``[...]``
        ``margin`` (``kl_policy − kl_reference``, differentiable), ``kl_policy``
        (``KL(p⁻‖π_θ) − KL(p⁺‖π_θ)``), ``kl_reference`` (``KL(p⁻‖π_ref) − KL(p⁺‖π_ref)``),
        ``set_mass`` (policy probability mass on the high-confidence set) and, with ``targets``,
        ``target_log_probs`` (detached).
    """
    with torch.no_grad():
        source = _at_least_float32(source_logits)
        log_q = torch.log_softmax(source, dim=-1)
        q = log_q.exp()
        if probability_threshold is None:
            if top_k is None or top_k < 1:
                raise ValueError("DiPO needs `top_k >= 1` or a `probability_threshold` to define the high-confidence set.")
            index = source.topk(min(int(top_k), source.shape[-1]), dim=-1).indices
            q_set = q.gather(-1, index)
            q_log_q_set = _rowdot(q_set, log_q.gather(-1, index))
            q_off = q.scatter(-1, index, 0.0)
        else:
            in_set = q > probability_threshold
            in_set.scatter_(-1, source.argmax(-1, keepdim=True), True)
            q_set = q * in_set
            q_log_q_set = _rowdot(q_set, log_q)
            q_off = q.masked_fill(in_set, 0.0)
        # q(S) and q(V \ S) each summed directly: 1 - q(S) would lose the small mass off a confident set
        mass, rest = q_set.sum(-1), q_off.sum(-1)
        q_log_q_off = _rowdot(q_off, log_q)
        up, down = math.exp(strength), math.exp(-strength)
        d_minus, d_plus = rest + up * mass, rest + down * mass  # p⁻ = q·e^{+λ·1_S}/D⁻, p⁺ = q·e^{−λ·1_S}/D⁺
        off_weight = 1.0 / d_plus - 1.0 / d_minus
        on_weight = down / d_plus - up / d_minus
        weight = q_off.mul_(off_weight.unsqueeze(-1))  # p⁺ − p⁻ off the set (q_off is 0 on it) ...
        if probability_threshold is None:
            weight.scatter_(-1, index, q_set * on_weight.unsqueeze(-1))  # ... and on it
        else:
            weight += q_set * on_weight.unsqueeze(-1)
        # Σ p log p with log p± = log q ± λ·1_S − log D±
        neg_entropy_minus = (up * q_log_q_set + q_log_q_off + strength * up * mass) / d_minus - d_minus.log()
        neg_entropy_plus = (down * q_log_q_set + q_log_q_off - strength * down * mass) / d_plus - d_plus.log()
        if reference_logits is source_logits:
            reference_log_probs = log_q
        else:
            reference_log_probs = torch.log_softmax(_at_least_float32(reference_logits), dim=-1)
        kl_reference = neg_entropy_minus - neg_entropy_plus + _rowdot(weight, reference_log_probs)
    margin = _rowdot(weight, _at_least_float32(policy_logits) - _at_least_float32(reference_logits))
    with torch.no_grad():
        policy = _at_least_float32(policy_logits.detach())
        policy_log_z = policy.logsumexp(-1)
        if probability_threshold is None:
            set_logsumexp = policy.gather(-1, index).logsumexp(-1)
        else:
            set_logsumexp = policy.masked_fill(~in_set, float("-inf")).logsumexp(-1)
        out = {
            "margin": margin,
            "kl_policy": kl_reference + margin.detach(),
            "kl_reference": kl_reference,
            "set_mass": torch.exp(set_logsumexp - policy_log_z),
        }
        if targets is not None:
            out["target_log_probs"] = policy.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - policy_log_z
    return out


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum(-1)`` for ``[..., n]`` tensors as one batched matrix product (no ``[..., n]`` temporary)."""
    return torch.matmul(a.unsqueeze(-2), b.unsqueeze(-1)).squeeze(-1).squeeze(-1)


def dipo_loss(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """DiPO forget loss per example: ``-(2/β) · log σ(β · m)``."""
    return -(2.0 / beta) * F.logsigmoid(beta * margin)


# --------------------------------------------------------------------------------------------
# Token-weighted gradient ascent (WGA, SatImp), distribution targets (UNDIAL, CE-U), DPO,
# logit-margin flattening (PDU) and representation misdirection (RMU)
# --------------------------------------------------------------------------------------------
def sum_over_examples(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-example sums of per-position ``values`` given at the ``True`` positions of ``mask``.

    ``values`` is ``[num_true]`` (e.g. computed on ``logits[:, :-1][mask]``), ``mask`` is
    ``[batch, length]``; returns ``[batch]``.
    """
    example_index = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1).expand_as(mask)[mask]
    return torch.zeros(mask.shape[0], dtype=values.dtype, device=values.device).index_add(0, example_index, values)


def wga_weights(token_log_probs: torch.Tensor, beta: float) -> torch.Tensor:
    """WGA's token weights ``p^β`` (detached), from the tokens' log-probabilities ``log p``."""
    return (beta * token_log_probs.detach()).exp()


def satimp_weights(token_log_probs: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """SatImp's token weights ``p^β1 · (1 − p)^β2`` (detached)."""
    p = token_log_probs.detach().exp()
    return p.pow(beta1) * (1.0 - p).pow(beta2)


def weighted_log_prob_sums(token_log_probs: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-example ``Σ_t w_t · log p_t`` over scored tokens (``[batch]``).

    Divided by the number of scored tokens this is the weighted gradient-ascent loss
    ``−mean_t(w_t · CE_t)`` of WGA and SatImp (minimising it lowers ``log p``).
    """
    return (weights * token_log_probs * mask).sum(-1)


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``−Σ_v q(v) · log softmax(logits)(v)`` at every position (``[...]``, float32).

    Terms where ``q(v) = 0`` contribute nothing (also when ``log p(v)`` is ``−inf``).
    """
    log_p = F.log_softmax(logits.float(), dim=-1)
    return -(target_probs * log_p).nan_to_num(0.0).sum(-1)


def undial_targets(reference_logits: torch.Tensor, targets: torch.Tensor, beta: float) -> torch.Tensor:
    """UNDIAL's adjusted distribution ``softmax(ℓ_ref − β·onehot(y))`` (``[..., vocab]``, float32).

    Parameters
    ----------
    reference_logits : torch.Tensor
        ``[..., vocab]`` logits of the original (reference) model at the positions that predict ``targets``.
    targets : torch.Tensor
        ``[...]`` the true next tokens.
    beta : float
        How far the true token's logit is lowered.
    """
    adjusted = reference_logits.float().scatter_add(
        -1, targets.unsqueeze(-1), torch.full_like(targets.unsqueeze(-1), -float(beta), dtype=torch.float32)
    )
    return adjusted.softmax(-1)


def ceu_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CE-U's target: the model's own (detached) distribution with the true token removed.

    ``softmax(ℓ)`` after setting the true token's logit to ``−∞`` (``[..., vocab]``, float32).
    """
    masked = logits.detach().float().scatter(-1, targets.unsqueeze(-1), float("-inf"))
    return masked.softmax(-1)


def dpo_loss(
    chosen_logps: torch.Tensor,
    chosen_reference_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    rejected_reference_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO loss per example with open-unlearning's ``2/β`` scaling.

    ``L = −(2/β) · log σ(β · [(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))])``
    with sequence-summed log-probabilities; ``y_w`` is the preferred (alternate / "I don't know")
    answer and ``y_l`` the forget answer. At π_θ = π_ref it equals ``(2/β)·log 2``.
    """
    margin = (chosen_logps - chosen_reference_logps) - (rejected_logps - rejected_reference_logps)
    return -(2.0 / beta) * F.logsigmoid(beta * margin)


def logit_margin_flattening(logits: torch.Tensor) -> torch.Tensor:
    """PDU's forget loss at every position: ``(max_v ℓ_v − mean_v ℓ_v)²`` (``[...]``, float32).

    Zero exactly when all logits are equal, i.e. when the next-token distribution is uniform.
    """
    logits = logits.float()
    return (logits.max(-1).values - logits.mean(-1)).pow(2)


def activation_mse(activations: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RMU's per-example activation distance (``[batch]``).

    The mean over the ``mask`` positions of ``mean_d (a_d − t_d)²``.

    Parameters
    ----------
    activations : torch.Tensor
        ``[batch, length, dim]`` hidden states of the model.
    target : torch.Tensor
        Same shape (or broadcastable, e.g. ``[dim]``): the steering vector or the frozen model's states.
    mask : torch.Tensor
        ``[batch, length]`` boolean, the positions to compare.
    """
    per_position = (activations.float() - target.float()).pow(2).mean(-1)
    mask = mask.to(per_position.dtype)
    return (per_position * mask).sum(-1) / mask.sum(-1).clamp(min=1)
