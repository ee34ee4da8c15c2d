from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig

LOGITS_SOURCES = ("reference", "policy")


@dataclass
class DiPOConfig(UnlearningConfig):
    r"""
    Configuration for `DiPOTrainer` (Distribution Preference Optimization, arXiv 2510.04773).

    At every completion position of a forget example, a pair of next-token distributions is built
    from logits ℓ_t: the memory-promoting ``p⁻ = softmax(ℓ + λ·1_S)`` and the forgetting-promoting
    ``p⁺ = softmax(ℓ − λ·1_S)``, where S is the high-confidence set. The margin
    ``m = Σ_t Σ_z (p⁺ − p⁻)(log π_θ − log π_ref)`` enters ``L_forget = −(2/β)·log σ(β·m)``.

    **DiPO-Forget** is DiPO with `retain_loss_weight=0` (or `retain_loss_type="none"`).

    Parameters
    ----------
    beta : float
        Inverse temperature β of the Bradley–Terry loss.
    top_k : int
        Size of the high-confidence set S_t (the top-k logits).
    strength : float
        λ > 0, the logit shift applied on S_t.
    logits_source : str
        Where ℓ_t comes from: `"reference"` (π_ref) or `"policy"` (the current model, detached).
    probability_threshold : float, optional
        If set, S_t is the tokens whose probability exceeds it (plus the argmax) instead of the top-k.
    length_normalize : bool
        Divide each example's margin by its number of completion tokens (default: sum, as NPO/TDPO).

    Notes
    -----
    The paper's constants are not published in a usable form; the defaults β = 0.1, `top_k` = 20,
    λ = 1.0 were chosen by measurement (`benchmarks/dipo_sweep.py`, tiny memorisation task): λ = 1
    kept the retain set best at every `top_k` tried (1, 5, 20), and `top_k` = 20 with λ = 1 gave
    the best forget drop per retain change (forget −4.9 nats/token, retain −0.009); λ = 3 and 5
    forgot more but cost 0.08–0.2 nats/token on the retain set.
    """

    beta: float = field(default=0.1, metadata={"help": "Inverse temperature β of the DiPO Bradley–Terry loss."})
    top_k: int = field(default=20, metadata={"help": "Size of the high-confidence set (top-k logits)."})
    strength: float = field(default=1.0, metadata={"help": "λ: logit shift applied on the high-confidence set."})
    logits_source: str = field(
        default="reference",
        metadata={"help": "Logits the preference pair is built from.", "choices": list(LOGITS_SOURCES)},
    )
    probability_threshold: float | None = field(
        default=None,
        metadata={"help": "If set, the high-confidence set is the tokens above this probability (plus the argmax)."},
    )
    length_normalize: bool = field(
        default=False, metadata={"help": "Divide each margin by the completion length instead of summing."}
    )

    def __post_init__(self):
        if self.beta <= 0:
            raise ValueError(f"`beta` must be positive, got {self.beta}.")
        if self.strength <= 0:
            raise ValueError(f"`strength` (λ) must be positive, got {self.strength}.")
        if self.probability_threshold is None and self.top_k < 1:
            raise ValueError(f"`top_k` must be at least 1, got {self.top_k}.")
        if self.probability_threshold is not None and not 0 < self.probability_threshold < 1:
            raise ValueError(f"`probability_threshold` must be in (0, 1), got {self.probability_threshold}.")
        if self.logits_source not in LOGITS_SOURCES:
            raise ValueError(f"`logits_source` must be one of {LOGITS_SOURCES}, got {self.logits_source!r}.")
        super().__post_init__()
