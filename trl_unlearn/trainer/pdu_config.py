from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig

DUAL_UPDATE_UPON = ("step", "epoch")


@dataclass
class PDUConfig(UnlearningConfig):
    r"""
    Configuration for `PDUTrainer` (primal-dual unlearning, Entesari et al., arXiv 2506.05314).

    Forget loss: logit-margin flattening, ``(max_v ℓ_v − mean_v ℓ_v)²`` averaged over forget
    completion positions. The retain loss is a constraint ``L_retain ≤ ε``: the loss is the
    Lagrangian ``γ·L_forget + λ·(L_retain − ε)``, and the dual variable λ (starting at
    `retain_loss_weight`) follows projected gradient ascent
    ``λ ← max(0, λ + η·(L_retain − ε))`` after every optimizer step (or every epoch, on the mean
    retain loss over the epoch's batches), once `dual_warmup_epochs` epochs are done.

    Parameters
    ----------
    retain_loss_eps : float
        ε, the retain-loss level the constraint allows. Required: choose it a little above the
        retain loss of the model before unlearning.
    primal_dual : bool, defaults to True
        Update λ; with False, λ stays at `retain_loss_weight` (a fixed-weight objective).
    dual_step_size : float, defaults to 1.0
        η, the step of the dual ascent.
    dual_update_upon : str, defaults to "step"
        ``"step"``: update after every optimizer step with that step's retain loss; ``"epoch"``:
        after every epoch with the mean retain loss over the epoch's batches (one extra pass).
    dual_warmup_epochs : int, defaults to 5
        Epochs before λ starts moving (updates start once this many epochs are complete).

    Notes
    -----
    Defaults follow open-unlearning's PDU configuration: η = 1, per-step updates, 5 warm-up
    epochs, γ = 1, λ₀ = α = 1, retain loss ``"nll"``. Its TOFU recipe uses λ₀ = 100, η = 5, ε = 0.3.
    """

    retain_loss_eps: float | None = field(
        default=None, metadata={"help": "ε: retain-loss level allowed by the constraint (required)."}
    )
    primal_dual: bool = field(default=True, metadata={"help": "Update the dual variable (the retain weight)."})
    dual_step_size: float = field(default=1.0, metadata={"help": "η: step size of the dual ascent."})
    dual_update_upon: str = field(
        default="step", metadata={"help": "Update the dual variable every 'step' or every 'epoch'.",
                                  "choices": list(DUAL_UPDATE_UPON)}
    )
    dual_warmup_epochs: int = field(default=5, metadata={"help": "Epochs before the dual variable starts moving."})

    def __post_init__(self):
        if self.retain_loss_eps is None:
            raise ValueError(
                "PDU needs `retain_loss_eps` (ε): the retain loss the constraint allows. Choose it a little above the "
                "retain loss of the model before unlearning (open-unlearning's TOFU recipe: 0.3)."
            )
        if self.dual_update_upon not in DUAL_UPDATE_UPON:
            raise ValueError(f"`dual_update_upon` must be one of {DUAL_UPDATE_UPON}, got {self.dual_update_upon!r}.")
        if self.dual_step_size < 0 or self.dual_warmup_epochs < 0:
            raise ValueError("`dual_step_size` and `dual_warmup_epochs` must be non-negative.")
        if self.retain_loss_type == "none":
            raise ValueError("PDU constrains the retain loss: `retain_loss_type` cannot be 'none'.")
        super().__post_init__()

    @property
    def uses_retain(self) -> bool:
        """PDU always uses the retain set: its weight is the dual variable, which may start at 0."""
        return self.retain_loss_type != "none"
